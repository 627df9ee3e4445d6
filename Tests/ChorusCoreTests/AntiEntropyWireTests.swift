import Testing

@testable import ChorusCore

/// Anti-entropy on the wire: exchange summaries ride SWIM datagrams
/// (`SWIMMessage.antiEntropy`, type 6) and bulk repair uses two session frames
/// (`repairKeys`, `repairKeysReply`, types 14 and 15).
@Suite struct AntiEntropyWireTests {
    static let summary = ExchangeCodec.encode(
        ExchangeMessage(
            exchangeID: 7, partition: 3,
            body: .summary(segmentCount: 1024, root: 99, topLevel: Array(repeating: 0xABCD, count: 32))))

    @Test func antiEntropyPayloadsRoundTripWithExactSizes() throws {
        for payload in [
            [], [1, 2, 3], Self.summary, Array(repeating: UInt8(0xEE), count: SWIMCodec.maxAntiEntropyBytes),
        ] {
            let message = SWIMMessage.antiEntropy(payload)
            let envelope = SWIMEnvelope(
                sender: swimID(1), bootID: 2, sequence: 3, sentAt: 4, messages: [message, .ack(sequence: 5)])
            let bytes = SWIMCodec.encode(envelope)
            #expect(try SWIMCodec.decode(bytes) == envelope)
            #expect(bytes.count == SWIMCodec.encodedSize(ofEnvelopeWith: envelope.messages))
        }
        // The largest summary still fits one sealed datagram.
        let largest = SWIMCodec.encodedSize(
            ofEnvelopeWith: [.antiEntropy(Array(repeating: 0, count: SWIMCodec.maxAntiEntropyBytes))])
        #expect(largest + 40 <= 1400)
    }

    @Test func overlongPayloadsAreClampedWhenEncodedAndRefusedWhenDecoded() throws {
        let long = Array(repeating: UInt8(1), count: SWIMCodec.maxAntiEntropyBytes + 10)
        let envelope = SWIMEnvelope(
            sender: swimID(1), bootID: 2, sequence: 3, sentAt: 4, messages: [.antiEntropy(long)])
        let encoded = SWIMCodec.encode(envelope)
        #expect(encoded.count == SWIMCodec.encodedSize(ofEnvelopeWith: envelope.messages))
        #expect(
            try SWIMCodec.decode(encoded).messages == [.antiEntropy(Array(long.prefix(SWIMCodec.maxAntiEntropyBytes)))])

        // A hand-made message announcing more than the bound.
        var hostile = Array(encoded.prefix(SWIMCodec.envelopeHeaderSize))
        let length = SWIMCodec.maxAntiEntropyBytes + 1
        hostile += [SWIMCodec.MessageType.antiEntropy.rawValue, UInt8(length >> 8), UInt8(length & 0xFF)]
        hostile += Array(repeating: 0, count: length)
        #expect(throws: WireError.tooLarge) { try SWIMCodec.decode(hostile) }
    }

    @Test func theSWIMInstanceIgnoresAntiEntropyMessages() {
        var instance = swimInstance(count: 3)
        let before = instance.members
        let effects = instance.receive(
            [.antiEntropy(Self.summary)], from: swimID(2), at: swimAddress(2), now: at(1))
        #expect(effects.isEmpty)
        #expect(instance.members == before)
    }

    @Test func repairFramesRoundTrip() throws {
        let messages: [ClusterMessage] = [
            .repairKeys(partition: 1023, segmentCount: 1024, segments: [0, 5, 1023]),
            .repairKeys(partition: 0, segmentCount: 1024, segments: []),
            .repairKeysReply(
                entries: [
                    RepairEntry(bucket: "default", key: "a", digest: 1),
                    RepairEntry(bucket: "b", key: "nœud-😀", digest: .max),
                ], error: nil),
            .repairKeysReply(entries: [], error: "no such partition"),
        ]
        for message in messages {
            #expect(try ClusterCodec.decodeMessage(ClusterCodec.encode(message)) == message)
        }
        #expect(ClusterCodec.FrameType.repairKeys.rawValue == 14)
        #expect(ClusterCodec.FrameType.repairKeysReply.rawValue == 15)
        #expect(SWIMCodec.MessageType.antiEntropy.rawValue == 6)
    }

    @Test func repairFramesRefuseHostileCounts() {
        // repairKeysReply announcing more entries than the bytes present.
        var bytes: [UInt8] = [ClusterCodec.FrameType.repairKeysReply.rawValue, 0x00, 0x01, 0x00, 0x00]
        #expect(throws: WireError.truncated) { try ClusterCodec.decodeMessage(bytes) }
        bytes = [ClusterCodec.FrameType.repairKeysReply.rawValue, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: WireError.tooLarge) { try ClusterCodec.decodeMessage(bytes) }
        bytes = [ClusterCodec.FrameType.repairKeys.rawValue, 0, 0, 0, 1, 0, 0, 4, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: WireError.tooLarge) { try ClusterCodec.decodeMessage(bytes) }
    }
}
