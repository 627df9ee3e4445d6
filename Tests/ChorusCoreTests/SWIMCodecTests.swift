import Testing

@testable import ChorusCore

@Suite struct SWIMCodecTests {
    static let richUpdate = MemberUpdate(
        id: NodeID(high: .max, low: 1), name: "nœud-é-😀",
        address: Endpoint(host: "fe80::1", port: 65535),
        incarnation: .max, status: .left, tags: ["http": "127.0.0.1:7480", "zone": "eu-1", "": ""],
        source: NodeID(high: 3, low: .max))

    static let everyMessage: [SWIMMessage] =
        [
            .ping(sequence: 0, target: swimID(2)),
            .ping(sequence: .max, target: NodeID(high: .max, low: .max)),
            .pingRequest(sequence: 12, target: swimID(3), targetAddress: swimAddress(3), wantsNack: true),
            .pingRequest(
                sequence: 13, target: swimID(3), targetAddress: Endpoint(host: "", port: 0),
                wantsNack: false),
            .ack(sequence: 1 << 63),
            .nack(sequence: 7),
            .update(swimUpdate(4, incarnation: 9, status: .suspect, from: 2)),
            .update(richUpdate),
        ] + MemberStatus.allCases.map { .update(swimUpdate(5, status: $0, from: 1)) }

    static let envelope = SWIMEnvelope(
        sender: swimID(1), bootID: 0xDEAD_BEEF, sequence: 42, sentAt: 1_700_000_000_000_000_000,
        messages: everyMessage)

    @Test func codecRoundTripsEveryMessage() throws {
        let bytes = SWIMCodec.encode(Self.envelope)
        #expect(try SWIMCodec.decode(bytes) == Self.envelope)
        #expect(bytes.count == SWIMCodec.encodedSize(ofEnvelopeWith: Self.everyMessage))
        for message in Self.everyMessage {
            let single = SWIMEnvelope(
                sender: swimID(9), bootID: 1, sequence: 2, sentAt: 3, messages: [message])
            let encoded = SWIMCodec.encode(single)
            #expect(try SWIMCodec.decode(encoded) == single)
            #expect(encoded.count == SWIMCodec.envelopeHeaderSize + SWIMCodec.encodedSize(of: message))
        }
        let empty = SWIMEnvelope(sender: swimID(9), bootID: 0, sequence: 0, sentAt: 0, messages: [])
        #expect(try SWIMCodec.decode(SWIMCodec.encode(empty)) == empty)
    }

    @Test func wireLayoutIsBigEndianAndTyped() {
        let bytes = SWIMCodec.encode(
            SWIMEnvelope(
                sender: NodeID(high: 1, low: 2), bootID: 3, sequence: 4, sentAt: 5,
                messages: [.ack(sequence: 6)]))
        let expected: [UInt8] =
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]
            + [0, 0, 0, 0, 0, 0, 0, 3] + [0, 0, 0, 0, 0, 0, 0, 4] + [0, 0, 0, 0, 0, 0, 0, 5] + [0, 1]
            + [3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6]
        #expect(bytes == expected)
    }

    @Test func updatesRoundTripForThousandsOfMembers() throws {
        let updates =
            (1...3000).map {
                swimUpdate(
                    UInt64($0), incarnation: UInt64($0 % 7), status: MemberStatus.allCases[$0 % 5], from: 1,
                    tags: ["i": "\($0)"])
            }
            + [Self.richUpdate]
        #expect(try SWIMCodec.decodeUpdates(SWIMCodec.encodeUpdates(updates)) == updates)
        #expect(try SWIMCodec.decodeUpdates(SWIMCodec.encodeUpdates([])) == [])
    }

    @Test func codecRejectsTruncationAtEveryBytePosition() {
        let bytes = SWIMCodec.encode(Self.envelope)
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try SWIMCodec.decode(Array(bytes[0..<length])) }
        }
        let payload = SWIMCodec.encodeUpdates([Self.richUpdate, swimUpdate(2, from: 1)])
        for length in 0..<payload.count {
            #expect(throws: WireError.self) { try SWIMCodec.decodeUpdates(Array(payload[0..<length])) }
        }
    }

    @Test func codecRejectsMalformedInput() {
        let header = SWIMCodec.encode(
            SWIMEnvelope(sender: swimID(1), bootID: 0, sequence: 0, sentAt: 0, messages: []))
        func envelope(count: UInt16, _ body: [UInt8]) -> [UInt8] {
            Array(header.dropLast(2)) + [UInt8(count >> 8), UInt8(count & 0xFF)] + body
        }
        func decodeError(_ bytes: [UInt8]) -> WireError? {
            do {
                _ = try SWIMCodec.decode(bytes)
                return nil
            } catch {
                return error
            }
        }
        // Trailing garbage after the messages, and inside a message body.
        #expect(decodeError(header + [0]) == .invalidValue("1 trailing bytes"))
        #expect(
            decodeError(envelope(count: 1, [3, 0, 9] + Array(repeating: 0, count: 9)))
                == .invalidValue("1 trailing bytes"))
        // Unknown message type; type zero is reserved.
        #expect(decodeError(envelope(count: 1, [99, 0, 0])) == .unknownType(99))
        #expect(decodeError(envelope(count: 1, [0, 0, 0])) == .unknownType(0))
        // A count the bytes cannot hold.
        #expect(decodeError(envelope(count: 65535, [])) == .truncated)

        let good = SWIMCodec.encode(
            SWIMEnvelope(
                sender: swimID(1), bootID: 0, sequence: 0, sentAt: 0,
                messages: [.update(swimUpdate(2, from: 1))]))
        // Invalid status (offset: header, type+len, id, name, host, port, incarnation).
        let statusOffset = SWIMCodec.envelopeHeaderSize + 3 + 16 + (2 + 6) + (2 + 9) + 2 + 8
        #expect(good[statusOffset] == MemberStatus.alive.rawValue)
        var badStatus = good
        badStatus[statusOffset] = 5
        #expect(decodeError(badStatus) == .invalidValue("member status 5"))
        // Invalid UTF-8 in the name.
        var badName = good
        badName[SWIMCodec.envelopeHeaderSize + 3 + 16 + 2] = 0xFF
        #expect(decodeError(badName) == .invalidValue("invalid UTF-8"))
        // A string longer than 255 bytes.
        var longName = good
        longName[SWIMCodec.envelopeHeaderSize + 3 + 16] = 1
        #expect(decodeError(longName) == .tooLarge)
        // A boolean that is neither 0 nor 1.
        var request = SWIMCodec.encode(
            SWIMEnvelope(
                sender: swimID(1), bootID: 0, sequence: 0, sentAt: 0,
                messages: [
                    .pingRequest(
                        sequence: 1, target: swimID(2), targetAddress: swimAddress(2), wantsNack: true)
                ]))
        request[request.count - 1] = 2
        #expect(decodeError(request) == .invalidValue("boolean 2"))
        // Too many tags, and a push-pull count beyond the bound.
        var tags = good
        tags[statusOffset + 1] = 65
        #expect(decodeError(tags) == .tooLarge)
        #expect(throws: WireError.tooLarge) { try SWIMCodec.decodeUpdates([0xFF, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: WireError.truncated) { try SWIMCodec.decodeUpdates([0, 0, 0x10, 0]) }
    }

    @Test func codecSurvivesRandomGarbageAndMutations() {
        var random = SeededRandom(seed: 2024)
        let valid = SWIMCodec.encode(Self.envelope)
        let validUpdates = SWIMCodec.encodeUpdates([Self.richUpdate, swimUpdate(3, from: 1)])
        for round in 0..<20_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            case 1:
                bytes = valid
                for _ in 0...(random.next() % 4) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            default:
                bytes = validUpdates
                for _ in 0...(random.next() % 4) {
                    bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                }
            }
            // Whatever decodes must re-encode to the same bytes; the rest must throw, not trap.
            if round % 3 == 2 {
                if let updates = try? SWIMCodec.decodeUpdates(bytes) {
                    #expect(SWIMCodec.encodeUpdates(updates) == bytes)
                }
            } else if let envelope = try? SWIMCodec.decode(bytes) {
                #expect(SWIMCodec.encode(envelope) == bytes)
            }
        }
    }

    @Test func encoderClampsWhatTheWireCannotCarry() throws {
        var update = swimUpdate(
            2, from: 1, tags: Dictionary(uniqueKeysWithValues: (0..<100).map { ("k\($0)", "v") }))
        update.name = String(repeating: "é", count: 200)  // 400 bytes
        let envelope = SWIMEnvelope(
            sender: swimID(1), bootID: 0, sequence: 0, sentAt: 0, messages: [.update(update)])
        let bytes = SWIMCodec.encode(envelope)
        #expect(bytes.count == SWIMCodec.encodedSize(ofEnvelopeWith: envelope.messages))
        let decoded = try SWIMCodec.decode(bytes)
        guard case .update(let back) = decoded.messages.first else {
            Issue.record("no update decoded")
            return
        }
        #expect(back.name == String(repeating: "é", count: 127))
        #expect(back.tags.count == SWIMCodec.maxTags)
    }
}
