import ChorusCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A reply from a route: status and JSON body.
struct APIResponse: Sendable {
    var status: HTTPResponseStatus
    var body: [UInt8]
    var contentType = "application/json"
    var headers: [(String, String)] = []

    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> APIResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return APIResponse(status: status, body: Array(data) + [0x0A])
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> APIResponse {
        json(["error": message], status: status)
    }
}

/// A parsed request handed to the router.
struct APIRequest: Sendable {
    var method: HTTPMethod
    var path: String
    var query: [String: String]
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// The client HTTP API (DESIGN §9): HTTP/1.1 on SwiftNIO, JSON bodies. Binds to
/// loopback by default; when `token` is set every request needs
/// `Authorization: Bearer <token>`.
final class HTTPAPIServer: Sendable {
    typealias Router = @Sendable (APIRequest, EventLoop) -> EventLoopFuture<APIResponse>

    static func bind(
        on address: Endpoint, group: EventLoopGroup, token: String?, maxBodyBytes: Int, router: @escaping Router
    ) -> EventLoopFuture<Channel> {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // No outbound header validation: every response header is built here from
                // fixed names and values this agent generates (content types, lengths, the
                // base64 causal context), never from request bytes, and the validator's
                // pass over each response head was 1.5 % of a write's CPU.
                channel.pipeline.configureHTTPServerPipeline(
                    withErrorHandling: true, withOutboundHeaderValidation: false
                ).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(
                        RequestHandler(token: token, maxBodyBytes: maxBodyBytes, router: router))
                }
            }
            .bind(host: address.host, port: Int(address.port))
    }

    private final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
        // Confined to the channel's event loop.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let token: String?
        let maxBodyBytes: Int
        let router: Router
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []
        private var tooLarge = false

        init(token: String?, maxBodyBytes: Int, router: @escaping Router) {
            self.token = token
            self.maxBodyBytes = maxBodyBytes
            self.router = router
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
                tooLarge = false
            case .body(var buffer):
                if body.count + buffer.readableBytes > maxBodyBytes {
                    tooLarge = true
                } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                    body += bytes
                }
            case .end:
                guard let head else { return }
                self.head = nil
                respond(context: context, head: head)
            }
        }

        private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
            let keepAlive = head.isKeepAlive
            let channel = context.channel
            let write: @Sendable (APIResponse) -> Void = { response in
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: response.contentType)
                for (name, value) in response.headers { headers.add(name: name, value: value) }
                headers.add(name: "Content-Length", value: String(response.body.count))
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                channel.write(
                    HTTPServerResponsePart.head(
                        HTTPResponseHead(version: head.version, status: response.status, headers: headers)),
                    promise: nil)
                var buffer = channel.allocator.buffer(capacity: response.body.count)
                buffer.writeBytes(response.body)
                channel.write(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
                if keepAlive {
                    // No future for the common case: one fewer allocation and callback per request.
                    channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
                } else {
                    channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                        channel.close(promise: nil)
                    }
                }
            }
            if tooLarge {
                write(
                    .error(.payloadTooLarge, "request body exceeds \(maxBodyBytes - 1) bytes (store.max_value_bytes)"))
                return
            }
            if let token, head.headers.first(name: "Authorization") != "Bearer \(token)" {
                write(.error(.unauthorized, "missing or wrong bearer token"))
                return
            }
            let (path, query) = Self.split(head.uri)
            let request = APIRequest(method: head.method, path: path, query: query, headers: head.headers, body: body)
            router(request, context.eventLoop).hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let response): write(response)
                case .failure(let error): write(.error(.internalServerError, "\(error)"))
                }
            }
        }

        static func split(_ uri: String) -> (String, [String: String]) {
            guard let components = URLComponents(string: uri) else { return (uri, [:]) }
            var query: [String: String] = [:]
            for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
            // The path as sent: URLComponents repairs invalid percent escapes ("%zz" becomes
            // "%25zz"), which would make `/v1/kv/b/%zz` name the key "%zz" instead of being refused.
            guard uri.hasPrefix("/") else { return (components.percentEncodedPath, query) }
            return (String(uri.prefix { $0 != "?" && $0 != "#" }), query)
        }
    }
}
