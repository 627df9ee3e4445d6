import Testing

@testable import ChorusCore

@Suite struct AntiEntropyCodecTests {
    func hashes(_ count: Int, seed: UInt64) -> [UInt64] {
        var random = AERandom(seed: seed)
        return (0..<count).map { _ in random.next() }
    }

    /// One of every message kind, at the largest sizes the default shape produces.
    func samples() -> [ExchangeMessage] {
        let bodies: [ExchangeMessage.Body] =
            [
                .summary(segmentCount: 1024, root: 0xDEAD_BEEF, topLevel: hashes(32, seed: 1)),
                .summary(segmentCount: 16, root: 0, topLevel: hashes(16, seed: 2)),
                .summaryReply(differing: [], branches: []),
                .summaryReply(
                    differing: Array(0..<32),
                    branches: (0..<4).map { BranchHashes(index: $0, children: hashes(32, seed: UInt64($0))) }),
                .branchRequest(request: 7, level: 1, indices: [31, 2, 17, 5]),
                .branchReply(
                    request: .max, level: 1,
                    branches: [31, 2, 17, 5].map { BranchHashes(index: $0, children: hashes(32, seed: UInt64($0))) }),
                .segments(differing: []),
                .segments(differing: [3]),
                .segments(differing: [0, 1, 2, 900, 1023]),
                .segments(differing: Array(0..<1024)),
                .segments(differing: Array(stride(from: 0, to: 8192, by: 2))),
                .segments(differing: Array(0..<8192)),
            ] + ExchangeRefusal.allCases.map { .refused($0) }
        return bodies.enumerated().map {
            ExchangeMessage(exchangeID: UInt64($0.offset) &* 0x9E37_79B9_7F4A_7C15, partition: 1023, body: $0.element)
        }
    }

    @Test func everyMessageRoundTrips() throws {
        for message in samples() {
            #expect(try ExchangeCodec.decode(ExchangeCodec.encode(message)) == message)
        }
    }

    @Test func messagesFitOneDatagram() {
        for message in samples() {
            #expect(ExchangeCodec.encode(message).count <= ExchangeCodec.maxMessageBytes, "\(message.body)")
        }
        #expect(ExchangeCodec.branchesPerMessage(childrenPerNode: 32) == 4)
        #expect(ExchangeCodec.branchesPerMessage(childrenPerNode: 8) == 16)
        // A root and top level together: one small datagram.
        let summary = ExchangeCodec.encode(samples()[0])
        #expect(summary.count == ExchangeCodec.headerSize + 4 + 8 + 1 + 32 * 8)
    }

    @Test func segmentSetsUseTheSmallerOfListAndBitmap() throws {
        func size(_ segments: [Int]) -> Int {
            ExchangeCodec.encode(ExchangeMessage(exchangeID: 1, partition: 1, body: .segments(differing: segments)))
                .count
        }
        let header = ExchangeCodec.headerSize + 1 + 2
        #expect(size([5, 900]) == header + 4)
        #expect(size(Array(0..<1024)) == header + 128)
        #expect(size(Array(0..<8192)) == header + 1024)
        // Unsorted or repeated input is written as the set it names.
        let messy = ExchangeMessage(exchangeID: 1, partition: 1, body: .segments(differing: [9, 3, 9]))
        #expect(try ExchangeCodec.decode(ExchangeCodec.encode(messy)).body == .segments(differing: [3, 9]))
    }

    @Test func everyTruncationIsRejectedWithoutTrapping() {
        for message in samples() {
            let bytes = ExchangeCodec.encode(message)
            for length in 0..<bytes.count {
                #expect(throws: WireError.self) { try ExchangeCodec.decode(Array(bytes.prefix(length))) }
            }
        }
    }

    @Test func trailingBytesAreRejected() {
        for message in samples() {
            #expect(throws: WireError.self) { try ExchangeCodec.decode(ExchangeCodec.encode(message) + [0]) }
        }
    }

    @Test func randomGarbageNeverTraps() throws {
        var random = AERandom(seed: 99)
        var decoded = 0
        for _ in 0..<20_000 {
            let length = random.below(64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if !bytes.isEmpty { bytes[0] = UInt8(1 + random.below(7)) }
            if (try? ExchangeCodec.decode(bytes)) != nil { decoded += 1 }
        }
        // Mutations of valid messages too: flip one byte anywhere.
        for message in samples() {
            let bytes = ExchangeCodec.encode(message)
            for _ in 0..<200 {
                var mutated = bytes
                mutated[random.below(mutated.count)] ^= UInt8(truncatingIfNeeded: 1 + random.below(255))
                if let message = try? ExchangeCodec.decode(mutated) {
                    // Whatever decodes re-encodes to a message that decodes the same.
                    #expect(try ExchangeCodec.decode(ExchangeCodec.encode(message)) == message)
                }
            }
        }
        #expect(decoded < 20_000)
    }

    @Test func malformedFieldsAreRejected() {
        func body(_ type: UInt8, _ rest: [UInt8]) -> [UInt8] {
            [type] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 1] + rest
        }
        let cases: [(String, [UInt8])] = [
            ("unknown type", body(9, [])),
            ("segment count not a power of two", body(1, [0, 0, 3, 0xE8] + [UInt8](repeating: 0, count: 8) + [0])),
            ("segment count too large", body(1, [0, 1, 0, 0] + [UInt8](repeating: 0, count: 8) + [0])),
            ("too many hashes", body(1, [0, 0, 4, 0] + [UInt8](repeating: 0, count: 8) + [33])),
            ("differing out of order", body(2, [2, 0, 5, 0, 3, 0])),
            ("duplicate requested nodes", body(3, [0, 0, 0, 1, 1, 2, 0, 4, 0, 4])),
            ("duplicate branches", body(4, [0, 0, 0, 1, 1, 2, 0, 4, 0, 0, 4, 0])),
            ("segments out of order", body(5, [0, 0, 2, 0, 9, 0, 3])),
            ("segment beyond the largest shape", body(5, [0, 0, 1, 0x20, 0x00])),
            ("padded bitmap", body(5, [1, 0, 2, 0x80, 0x00])),
            ("bitmap too long", body(5, [1, 0x04, 0x01] + [UInt8](repeating: 1, count: 1025))),
            ("unknown segment form", body(5, [2])),
            ("unknown refusal", body(6, [0])),
            ("trailing byte after a full bitmap", body(5, [1, 0x04, 0x00] + [UInt8](repeating: 1, count: 1024)) + [0]),
        ]
        for (name, bytes) in cases {
            #expect(throws: WireError.self, "\(name)") { try ExchangeCodec.decode(bytes) }
        }
        #expect(throws: WireError.unknownType(9)) { try ExchangeCodec.decode(body(9, [])) }
        #expect(throws: WireError.tooLarge) {
            try ExchangeCodec.decode([UInt8](repeating: 5, count: ExchangeCodec.maxMessageBytes + 1))
        }
    }
}
