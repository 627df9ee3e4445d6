import Testing

@testable import ChorusCore

@Suite struct CausalityContextTests {
    let cluster = "prod-eu"

    static func randomVector(_ rng: inout CausalRNG) -> VersionVector {
        VersionVector(
            pairs: (0..<rng.below(8)).map { _ in
                (NodeID(high: rng.next(), low: rng.next()), rng.chance(20) ? UInt64.max : 1 + UInt64(rng.below(1000)))
            })
    }

    func expectError(_ text: String, cluster: String? = nil, _ check: (ContextError) -> Bool) {
        do {
            let vector = try CausalContext.decode(text, clusterName: cluster ?? self.cluster)
            Issue.record("decoded \(vector) from \(text)")
        } catch {
            #expect(check(error), "\(error)")
            #expect(!error.message.isEmpty)
        }
    }

    func bytesToText(_ bytes: [UInt8]) -> String { ContextBase64.encode(bytes) }

    /// Bytes with a version, tag and count of our choosing and a valid checksum.
    func forged(version: UInt8 = 1, tag: UInt32? = nil, count: UInt16, entries: [(NodeID, UInt64)]) -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.u8(version)
        writer.u32(tag ?? CausalContext.clusterTag(cluster))
        writer.u16(count)
        for (id, counter) in entries {
            writer.nodeID(id)
            writer.u64(counter)
        }
        writer.u32(CausalityChecksum.crc32(writer.bytes))
        return writer.bytes
    }

    @Test func contextsRoundTrip() throws {
        var rng = CausalRNG(seed: 0xC7_0001)
        for _ in 0..<300 {
            let vector = Self.randomVector(&rng)
            let text = CausalContext.encode(vector, clusterName: cluster)
            #expect(try CausalContext.decode(text, clusterName: cluster) == vector)
            #expect(text.utf8.allSatisfy { $0 < 128 && $0 != UInt8(ascii: "\n") })
        }
        #expect(
            try CausalContext.decode(CausalContext.encode(VersionVector(), clusterName: ""), clusterName: "")
                == VersionVector())
    }

    @Test func everyFlippedBitIsReportedAsCorrupt() {
        let vector = VersionVector([causalNode(1): 3, causalNode(2): 70_000])
        let bytes = CausalContext.encodeBytes(vector, clusterName: cluster)
        for index in bytes.indices {
            for bit in 0..<8 {
                var flipped = bytes
                flipped[index] ^= 1 << UInt8(bit)
                expectError(bytesToText(flipped)) { $0 == .corrupt }
            }
        }
    }

    @Test func randomCorruptionAndTruncationAreReportedAsCorrupt() {
        var rng = CausalRNG(seed: 0xC7_0002)
        for _ in 0..<300 {
            let bytes = CausalContext.encodeBytes(Self.randomVector(&rng), clusterName: cluster)
            var damaged = bytes
            for _ in 0..<(1 + rng.below(4)) {
                damaged[rng.below(damaged.count)] = UInt8(truncatingIfNeeded: rng.next())
            }
            if damaged != bytes { expectError(bytesToText(damaged)) { $0 == .corrupt } }
            let cut = rng.below(bytes.count)
            expectError(bytesToText(Array(bytes.prefix(cut)))) { $0 == .corrupt }
            expectError(bytesToText(bytes + [UInt8(truncatingIfNeeded: rng.next())])) { $0 == .corrupt }
        }
    }

    @Test func aContextFromAnotherClusterIsRefused() {
        let text = CausalContext.encode(VersionVector([causalNode(1): 1]), clusterName: "staging")
        expectError(text) { $0 == .foreignCluster }
        #expect(CausalContext.clusterTag("staging") != CausalContext.clusterTag(cluster))
    }

    @Test func anUnknownVersionIsRefusedAsUnsupported() {
        expectError(bytesToText(forged(version: 2, count: 0, entries: []))) { $0 == .unsupportedVersion(2) }
        #expect(ContextError.unsupportedVersion(9).message.contains("9"))
    }

    @Test func textThatIsNotBase64IsRefused() {
        for text in ["@@@@", "AAAA AAAA", "AAAAA", "A", "AA=A", "AAAA====", "Zh==", "é", "AAAA\n", "-_-_"] {
            expectError(text) { $0 == .notBase64 }
        }
        expectError("") { $0 == .corrupt }
    }

    @Test func nonCanonicalOrOversizedContextsAreCorrupt() {
        let a = causalNode(1)
        let b = causalNode(2)
        expectError(bytesToText(forged(count: 2, entries: [(b, 1), (a, 1)]))) { $0 == .corrupt }
        expectError(bytesToText(forged(count: 2, entries: [(a, 1), (a, 2)]))) { $0 == .corrupt }
        expectError(bytesToText(forged(count: 1, entries: [(a, 0)]))) { $0 == .corrupt }
        expectError(bytesToText(forged(count: 2, entries: [(a, 1)]))) { $0 == .corrupt }
        expectError(bytesToText(forged(count: 1025, entries: []))) { $0 == .corrupt }
        expectError(String(repeating: "A", count: CausalContext.maxEncodedLength + 4)) { $0 == .corrupt }
    }

    @Test func encodingKeepsAtMostTheBoundOfEntries() throws {
        let vector = VersionVector(pairs: (1...1100).map { (causalNode(UInt64($0)), UInt64(1)) })
        let text = CausalContext.encode(vector, clusterName: cluster)
        #expect(text.utf8.count <= CausalContext.maxEncodedLength)
        let decoded = try CausalContext.decode(text, clusterName: cluster)
        #expect(decoded.count == CausalContext.maxEntries)
        #expect(vector.descends(decoded))
    }

    @Test func checksumsAndBase64MatchTheirStandardVectors() {
        #expect(CausalityChecksum.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CausalityChecksum.fnv1a32(Array("".utf8)) == 0x811C_9DC5)
        #expect(CausalityChecksum.fnv1a32(Array("a".utf8)) == 0xE40C_292C)
        let vectors = [
            "": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=",
            "foobar": "Zm9vYmFy",
        ]
        for (plain, encoded) in vectors {
            #expect(ContextBase64.encode(Array(plain.utf8)) == encoded)
            #expect(ContextBase64.decode(encoded) == Array(plain.utf8))
        }
        #expect(ContextBase64.decode("Zm9vYg") == Array("foob".utf8))
        var rng = CausalRNG(seed: 0xB64)
        for _ in 0..<200 {
            let bytes = rng.bytes(rng.below(40))
            #expect(ContextBase64.decode(ContextBase64.encode(bytes)) == bytes)
        }
    }
}
