import ChorusCore
import NIOCore
import NIOPosix

/// The agent's one UDP channel (SWIM probes and gossip). Hands every datagram to
/// `receive` on the channel's event loop; sending is `send(_:to:)`.
final class GossipTransport: Sendable {
    /// Receive buffer: larger than any valid datagram, so oversize ones are seen
    /// whole and counted rather than silently truncated.
    static let receiveBufferBytes = 65_536

    let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    static func bind(
        on address: Endpoint, group: EventLoopGroup,
        receive: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void
    ) -> EventLoopFuture<GossipTransport> {
        DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: receiveBufferBytes))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Receiver(receive: receive))
                }
            }
            .bind(host: address.host, port: Int(address.port))
            .map { GossipTransport(channel: $0) }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }

    func close() -> EventLoopFuture<Void> {
        channel.close()
    }

    private final class Receiver: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let receive: @Sendable (ByteBuffer, SocketAddress) -> Void

        init(receive: @escaping @Sendable (ByteBuffer, SocketAddress) -> Void) {
            self.receive = receive
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            receive(envelope.data, envelope.remoteAddress)
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            // ICMP port-unreachable and the like surface here; UDP goes on.
        }
    }
}
