import ChorusCrypto
import Testing

@Suite struct HashingTests {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map {
            String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
        }
        .joined()
    }

    @Test func blake2bMatchesPublishedVectors() {
        // RFC 7693 appendix A (BLAKE2b-512 of "abc") and the well-known BLAKE2b-256 of "".
        #expect(
            hex(Hashing.blake2b(Array("abc".utf8), outputLength: 64))
                == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
        #expect(
            hex(Hashing.blake2b([]))
                == "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
    }

    @Test(arguments: [16, 32, 64])
    func blake2bReturnsRequestedLength(length: Int) {
        #expect(Hashing.blake2b([1, 2, 3], outputLength: length).count == length)
    }

    @Test func randomBytesHaveRequestedCountAndDiffer() {
        #expect(Hashing.randomBytes(count: 0).isEmpty)
        let first = Hashing.randomBytes(count: 32)
        let second = Hashing.randomBytes(count: 32)
        #expect(first.count == 32)
        #expect(first != second)
    }

    @Test func randomUInt64sDiffer() {
        let values = Set((0..<16).map { _ in Hashing.randomUInt64() })
        #expect(values.count == 16)
    }

    @Test func sodiumInitialises() throws {
        #expect(Sodium.isAvailable)
        try Sodium.ensureInitialised()
    }
}
