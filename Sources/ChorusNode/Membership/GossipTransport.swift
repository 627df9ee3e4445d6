import ChorusCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The agent's one UDP channel (SWIM probes and gossip). Hands every datagram to
/// `receive` on the channel's event loop; sending is `send(_:to:)`.
///
/// SwiftNIO closes a datagram channel on any send error but `EMSGSIZE` and
/// `EHOSTUNREACH`: one `sendto` refused with `EPERM` (a local firewall rule dropping
/// the packet, as `tools/netns-cluster partition --drop-output` does) or
/// `ENETUNREACH` (a route gone with an interface) would otherwise leave the agent
/// without UDP for good — SWIM limping along on TCP fallback probes, anti-entropy
/// dead — with nothing in the log. So an unexpected close binds the same address
/// again (retrying with a backoff up to 1 s) and says so.
final class GossipTransport: Sendable {
    /// Receive buffer: larger than any valid datagram, so oversize ones are seen
    /// whole and counted rather than silently truncated.
    static let receiveBufferBytes = 65_536

    private struct State {
        var channel: Channel?
        var closing = false
        var lastError: Error?
        /// Unexpected closes since the last warning (logged at most every 10 s).
        var unloggedCloses = 0
        var lastWarning: NIODeadline?
    }

    private let address: Endpoint
    private let group: EventLoopGroup
    private let receive: @Sendable (ByteBuffer, SocketAddress) -> Void
    private let logger: Logger?
    private let state = NIOLockedValueBox(State())

    private init(
        address: Endpoint, group: EventLoopGroup, logger: Logger?,
        receive: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void
    ) {
        self.address = address
        self.group = group
        self.logger = logger
        self.receive = receive
    }

    static func bind(
        on address: Endpoint, group: EventLoopGroup, logger: Logger? = nil,
        receive: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void
    ) -> EventLoopFuture<GossipTransport> {
        let transport = GossipTransport(address: address, group: group, logger: logger, receive: receive)
        return transport.open().map { channel in
            transport.adopt(channel)
            return transport
        }
    }

    private func open() -> EventLoopFuture<Channel> {
        let receive = self.receive
        let noteError: @Sendable (Error) -> Void = { [state] error in
            state.withLockedValue { $0.lastError = error }
        }
        return DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.receiveBufferBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Receiver(receive: receive, noteError: noteError))
                }
            }
            .bind(host: address.host, port: Int(address.port))
    }

    /// Makes `channel` the one to send on, and watches for its unexpected close.
    private func adopt(_ channel: Channel) {
        let keep = state.withLockedValue { state -> Bool in
            guard !state.closing else { return false }
            state.channel = channel
            return true
        }
        guard keep else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            let now = NIODeadline.now()
            let closed = state.withLockedValue { state -> (cause: Error?, warn: Int?)? in
                guard !state.closing, state.channel === channel else { return nil }
                state.channel = nil
                defer { state.lastError = nil }
                state.unloggedCloses += 1
                guard state.lastWarning.map({ now - $0 >= .seconds(10) }) ?? true else {
                    return (state.lastError, nil)
                }
                state.lastWarning = now
                defer { state.unloggedCloses = 0 }
                return (state.lastError, state.unloggedCloses)
            }
            guard let closed else { return }
            if let count = closed.warn {
                logger?.warning(
                    "gossip UDP channel closed by a send error; binding it again",
                    metadata: [
                        "address": "\(address)", "error": "\(closed.cause.map { "\($0)" } ?? "unknown")",
                        "closes": "\(count)",
                    ])
            }
            reopen(attempt: 0)
        }
    }

    private func reopen(attempt: Int) {
        guard !state.withLockedValue({ $0.closing }) else { return }
        open().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                adopt(channel)
            case .failure(let error):
                let delay = TimeAmount.milliseconds(min(1000, 50 << min(attempt, 5)))
                logger?.error(
                    "cannot bind the gossip UDP channel again; retrying",
                    metadata: ["address": "\(address)", "error": "\(error)", "in": "\(delay)"])
                group.next().scheduleTask(in: delay) { [self] in reopen(attempt: attempt + 1) }
            }
        }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) {
        // Between an unexpected close and the new bind the datagram is lost, as UDP may.
        guard let channel = state.withLockedValue({ $0.channel }) else { return }
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer)).whenFailure {
            [state] error in
            // The system's refusal (not the writes failed by the close after it),
            // kept for the warning if it closes the channel.
            guard error is IOError else { return }
            state.withLockedValue { $0.lastError = error }
        }
    }

    func close() -> EventLoopFuture<Void> {
        let channel = state.withLockedValue { state -> Channel? in
            state.closing = true
            return state.channel
        }
        return channel?.close() ?? group.next().makeSucceededVoidFuture()
    }

    private final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let receive: @Sendable (ByteBuffer, SocketAddress) -> Void
        let noteError: @Sendable (Error) -> Void

        init(
            receive: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void,
            noteError: @escaping @Sendable (Error) -> Void
        ) {
            self.receive = receive
            self.noteError = noteError
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            receive(envelope.data, envelope.remoteAddress)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            // ICMP port-unreachable and the like surface here; UDP goes on.
            noteError(error)
        }
    }
}
