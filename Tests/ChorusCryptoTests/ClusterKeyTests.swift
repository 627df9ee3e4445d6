import ChorusCrypto
import Testing

@Suite struct ClusterKeyTests {
    @Test func generatedKeyRoundTripsThroughBase64() throws {
        let key = try ClusterKey.generate()
        #expect(key.base64.count == 44)
        let parsed = try ClusterKey(base64: key.base64)
        #expect(parsed == key)
        #expect(parsed.keyID == key.keyID)
    }

    @Test func generatedKeysDiffer() throws {
        #expect(try ClusterKey.generate() != ClusterKey.generate())
    }

    @Test(arguments: [0, 1, 16, 31, 33, 48, 64])
    func base64OfWrongLengthIsRejected(length: Int) {
        let encoded = base64Encode([UInt8](repeating: 0xAB, count: length))
        #expect(throws: ClusterKeyError.wrongLength(length)) { try ClusterKey(base64: encoded) }
    }

    @Test(arguments: ["not base64!", "AAAA=AAA", "====", "ÄÖÜ", String(repeating: "A", count: 43)])
    func malformedBase64IsRejected(text: String) {
        #expect(throws: ClusterKeyError.invalidBase64) { try ClusterKey(base64: text) }
    }

    @Test func whitespaceAroundPastedKeyIsIgnored() throws {
        let key = try ClusterKey.generate()
        #expect(try ClusterKey(base64: "  \(key.base64)\n") == key)
    }

    @Test(arguments: [0, 31, 33])
    func rawBytesOfWrongLengthAreRejected(length: Int) {
        #expect(throws: ClusterKeyError.wrongLength(length)) {
            try ClusterKey(bytes: [UInt8](repeating: 1, count: length))
        }
    }

    @Test func keyIDIsFirstFourBytesOfBlake2bBigEndian() throws {
        let bytes = (0..<32).map { UInt8($0) }
        let key = try ClusterKey(bytes: bytes)
        let digest = Hashing.blake2b(bytes)
        let expected =
            UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8
            | UInt32(digest[3])
        #expect(key.keyID == expected)
        #expect(key.keyIDHex.count == 8)
    }

    @Test func descriptionShowsKeyIDButNoKeyMaterial() throws {
        let key = try ClusterKey.generate()
        var dumped = ""
        dump(key, to: &dumped)
        for text in [key.description, key.debugDescription, "\(key)", String(reflecting: key), dumped] {
            #expect(text.contains(key.keyIDHex))
            #expect(!text.contains(key.base64))
            #expect(!text.contains(String(key.base64.prefix(8))))
        }
    }

    @Test func errorsExplainThemselves() {
        #expect(ClusterKeyError.wrongLength(16).description.contains("16 bytes"))
        #expect(ClusterKeyError.invalidBase64.description.contains("base64"))
    }
}

/// Standard padded base64, written out here so the tests do not trust the code under
/// test to produce inputs of the wrong length.
func base64Encode(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    var out = ""
    var index = 0
    while index < bytes.count {
        let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
        let b0 = Int(chunk[0])
        let b1 = chunk.count > 1 ? Int(chunk[1]) : 0
        let b2 = chunk.count > 2 ? Int(chunk[2]) : 0
        out.append(alphabet[b0 >> 2])
        out.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
        out.append(chunk.count > 1 ? alphabet[(b1 & 15) << 2 | b2 >> 6] : "=")
        out.append(chunk.count > 2 ? alphabet[b2 & 63] : "=")
        index += 3
    }
    return out
}
