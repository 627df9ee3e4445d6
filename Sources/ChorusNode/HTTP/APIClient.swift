import ChorusCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small blocking HTTP/1.1 client for the operator commands, which talk to
/// their local agent's API (`--http-addr`, `CHORUS_HTTP_ADDR`).
public struct APIClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
    }

    public var address: Endpoint
    public var token: String?
    public var timeout: TimeAmount

    public init(address: Endpoint, token: String? = nil, timeout: TimeAmount = .seconds(30)) {
        self.address = address
        self.token = token
        self.timeout = timeout
    }

    public func request(
        _ method: HTTPMethod, _ path: String, body: [UInt8] = [], headers extra: [(String, String)] = []
    )
        throws(Failure) -> Response
    {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let promise = loop.makePromise(of: Response.self)
        let address = self.address
        let timeout = self.timeout
        let connect = ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: address.host, port: Int(address.port))
        let token = self.token
        connect.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(Failure(description: "cannot reach the agent at \(address): \(error)"))
            case .success(let channel):
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: address.description)
                headers.add(name: "Content-Length", value: String(body.count))
                headers.add(name: "Connection", value: "close")
                if !body.isEmpty { headers.add(name: "Content-Type", value: "application/json") }
                if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
                for (name, value) in extra { headers.add(name: name, value: value) }
                channel.write(
                    HTTPClientRequestPart.head(
                        HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)),
                    promise: nil)
                var buffer = channel.allocator.buffer(capacity: body.count)
                buffer.writeBytes(body)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                let timer = loop.scheduleTask(in: timeout) {
                    promise.fail(Failure(description: "the agent at \(address) did not answer in time"))
                    channel.close(promise: nil)
                }
                promise.futureResult.whenComplete { _ in
                    timer.cancel()
                    channel.close(promise: nil)
                }
            }
        }
        do {
            return try promise.futureResult.wait()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(error)")
        }
    }

    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        // Confined to the channel's event loop.
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        private var status = 0
        private var headers: [(String, String)] = []
        private var body: [UInt8] = []

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
                headers = head.headers.map { ($0.name, $0.value) }
            case .body(var buffer): body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end: promise.succeed(Response(status: status, headers: headers, body: body))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(description: "the agent closed the connection without a complete answer"))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(Failure(description: "\(error)"))
            context.close(promise: nil)
        }
    }
}
