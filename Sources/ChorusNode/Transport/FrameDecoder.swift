import NIOCore

/// Splits `u32 length | payload` frames, the framing of every agent-to-agent TCP
/// connection.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]

    /// Largest frame accepted: a push-pull of a few thousand members or a batch of
    /// objects fits easily; anything larger is hostile or a bug.
    static let maxFrameBytes = 16 << 20

    struct FrameTooLarge: Error {}

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= Self.maxFrameBytes else { throw FrameTooLarge() }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readBytes(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(payload))
        return .continue
    }

    static func frame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 4)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }
}
