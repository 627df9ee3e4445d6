import ChorusCore
import ChorusCrypto
import Logging
import NIOCore
import NIOPosix

/// The agent-to-agent TCP channel on the gossip port: one sealed request frame,
/// one sealed reply frame, then close. Frames are `u32 length | sealed bytes`.
/// Used for push-pull sync, the fallback probe and keyring operations.
///
/// Persistent multiplexed connections arrive with the replication transport.
final class ClusterTCP: Sendable {
    /// Largest frame accepted: a push-pull of a few thousand members fits easily.
    static let maxFrameBytes = 16 << 20

    let group: EventLoopGroup
    let sealer: FrameSealer
    let localID: NodeID
    let logger: Logger

    init(group: EventLoopGroup, sealer: FrameSealer, localID: NodeID, logger: Logger) {
        self.group = group
        self.sealer = sealer
        self.localID = localID
        self.logger = logger
    }

    /// Answers requests until the channel is closed. `handle` runs on the channel's
    /// loop and returns the reply (nil: close without replying). `refused` reports
    /// a frame that could not be opened or parsed, with its reason label.
    func serve(
        on address: Endpoint,
        handle: @escaping @Sendable (ClusterFrame, SocketAddress?) -> EventLoopFuture<ClusterMessage?>,
        refused: @escaping @Sendable (String, SocketAddress?) -> Void
    ) -> EventLoopFuture<Channel> {
        let sealer = self.sealer
        let localID = self.localID
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        ServerHandler(sealer: sealer, localID: localID, handle: handle, refused: refused))
                }
            }
            .bind(host: address.host, port: Int(address.port))
    }

    /// Sends one request and waits for its reply, failing after `timeout`.
    func request(_ message: ClusterMessage, to address: Endpoint, timeout: TimeAmount)
        -> EventLoopFuture<ClusterMessage>
    {
        let loop = group.next()
        let promise = loop.makePromise(of: ClusterMessage.self)
        let frame = ClusterFrame(sender: localID, sentAt: WallClock.nanoseconds(), message: message)
        let sealed = sealer.seal(ClusterCodec.encode(frame))
        let sealer = self.sealer
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        ClientHandler(sealer: sealer, promise: promise))
                }
            }
            .connect(host: address.host, port: Int(address.port))
        let deadline = loop.scheduleTask(in: timeout) {
            promise.fail(ClusterTCPError.timedOut(address))
        }
        connect.whenComplete { result in
            switch result {
            case .success(let channel):
                var buffer = channel.allocator.buffer(capacity: sealed.count + 4)
                buffer.writeInteger(UInt32(sealed.count))
                buffer.writeBytes(sealed)
                channel.writeAndFlush(buffer, promise: nil)
                promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                promise.fail(ClusterTCPError.connectFailed(address, String(describing: error)))
            }
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        return promise.futureResult
    }
}

enum ClusterTCPError: Error, CustomStringConvertible {
    case timedOut(Endpoint)
    case connectFailed(Endpoint, String)
    case closedWithoutReply
    case unreadableReply(String)

    var description: String {
        switch self {
        case .timedOut(let address): "no reply from \(address) in time"
        case .connectFailed(let address, let reason): "cannot connect to \(address): \(reason)"
        case .closedWithoutReply:
            "the peer closed the connection without answering (does it hold one of our keys and the same cluster name?)"
        case .unreadableReply(let reason): "unreadable reply: \(reason)"
        }
    }
}

/// Splits `u32 length | payload` frames.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]

    struct FrameTooLarge: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= ClusterTCP.maxFrameBytes else { throw FrameTooLarge() }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readBytes(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(payload))
        return .continue
    }
}

private final class ServerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer

    let sealer: FrameSealer
    let localID: NodeID
    let handle: @Sendable (ClusterFrame, SocketAddress?) -> EventLoopFuture<ClusterMessage?>
    let refused: @Sendable (String, SocketAddress?) -> Void

    init(
        sealer: FrameSealer, localID: NodeID,
        handle: @escaping @Sendable (ClusterFrame, SocketAddress?) -> EventLoopFuture<ClusterMessage?>,
        refused: @escaping @Sendable (String, SocketAddress?) -> Void
    ) {
        self.sealer = sealer
        self.localID = localID
        self.handle = handle
        self.refused = refused
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let sealed = unwrapInboundIn(data)
        let remote = context.remoteAddress
        let frame: ClusterFrame
        do {
            let plaintext = try sealer.open(sealed)
            do {
                frame = try ClusterCodec.decode(plaintext)
            } catch {
                refused("malformed", remote)
                context.close(promise: nil)
                return
            }
        } catch {
            refused(error.reason, remote)
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        let sealer = self.sealer
        let localID = self.localID
        let requestKeyID = FrameSealer.keyID(of: sealed)
        handle(frame, remote).whenComplete { result in
            guard case .success(let reply?) = result else {
                channel.close(promise: nil)
                return
            }
            let plaintext = ClusterCodec.encode(
                ClusterFrame(sender: localID, sentAt: WallClock.nanoseconds(), message: reply))
            let sealed = requestKeyID.map { sealer.seal(plaintext, keyID: $0) } ?? sealer.seal(plaintext)
            var buffer = channel.allocator.buffer(capacity: sealed.count + 4)
            buffer.writeInteger(UInt32(sealed.count))
            buffer.writeBytes(sealed)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        refused(error is FrameDecoder.FrameTooLarge ? "oversize" : "malformed", context.remoteAddress)
        context.close(promise: nil)
    }
}

private final class ClientHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = [UInt8]

    let sealer: FrameSealer
    let promise: EventLoopPromise<ClusterMessage>

    init(sealer: FrameSealer, promise: EventLoopPromise<ClusterMessage>) {
        self.sealer = sealer
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            let plaintext = try sealer.open(unwrapInboundIn(data))
            do {
                promise.succeed(try ClusterCodec.decode(plaintext).message)
            } catch {
                promise.fail(ClusterTCPError.unreadableReply("malformed"))
            }
        } catch {
            promise.fail(ClusterTCPError.unreadableReply(error.reason))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ClusterTCPError.closedWithoutReply)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(ClusterTCPError.unreadableReply(String(describing: error)))
        context.close(promise: nil)
    }
}
