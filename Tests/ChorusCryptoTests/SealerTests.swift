import ChorusCrypto
import Testing

@Suite struct SealerTests {
    @Test(arguments: [0, 1, 100, Sealer.maxDatagramBytes - Sealer.overhead, 70_000])
    func sealedMessageOpensToOriginalPlaintext(size: Int) throws {
        let ring = try keyring(freshKey())
        let plaintext = Hashing.randomBytes(count: size)
        let sealed = Sealer.seal(plaintext, associatedData: clusterName, keyring: ring)
        #expect(sealed.count == plaintext.count + Sealer.overhead)
        #expect(try Sealer.open(sealed, associatedData: clusterName, keyring: ring) == plaintext)
    }

    @Test func sealedLayoutIsMagicVersionKeyIDNonceCiphertext() throws {
        let key = try freshKey()
        let sealed = try Sealer.seal([1, 2, 3], associatedData: clusterName, keyring: keyring(key))
        #expect(Sealer.overhead == 2 + 1 + 4 + 24 + 16)
        #expect(Array(sealed[0..<2]) == Array("CH".utf8))
        #expect(sealed[2] == 1)
        let id =
            UInt32(sealed[3]) << 24 | UInt32(sealed[4]) << 16 | UInt32(sealed[5]) << 8
            | UInt32(sealed[6])
        #expect(id == key.keyID)
        #expect(!sealed.suffix(3 + 16).starts(with: [1, 2, 3]))
    }

    @Test func sealingTheSameMessageTwiceUsesFreshNonces() throws {
        let ring = try keyring(freshKey())
        let first = Sealer.seal([42], associatedData: clusterName, keyring: ring)
        let second = Sealer.seal([42], associatedData: clusterName, keyring: ring)
        #expect(first[7..<31] != second[7..<31])
        #expect(first != second)
    }

    @Test func keyringWithoutTheKeyRefusesWithUnknownKey() throws {
        let sealed = try Sealer.seal(
            [1, 2, 3], associatedData: clusterName, keyring: keyring(freshKey()))
        #expect(throws: Sealer.OpenError.unknownKey) {
            try Sealer.open(sealed, associatedData: clusterName, keyring: keyring(freshKey()))
        }
    }

    @Test func anotherClusterNameFailsAuthentication() throws {
        let ring = try keyring(freshKey())
        let sealed = Sealer.seal([1, 2, 3], associatedData: clusterName, keyring: ring)
        #expect(throws: Sealer.OpenError.authenticationFailed) {
            try Sealer.open(sealed, associatedData: Array("other-cluster".utf8), keyring: ring)
        }
        #expect(throws: Sealer.OpenError.authenticationFailed) {
            try Sealer.open(sealed, associatedData: [], keyring: ring)
        }
    }

    @Test func everySingleBitFlipIsRefused() throws {
        let ring = try keyring(freshKey())
        let sealed = Sealer.seal(Array("hello".utf8), associatedData: clusterName, keyring: ring)
        for bit in 0..<(sealed.count * 8) {
            var tampered = sealed
            tampered[bit / 8] ^= 1 << UInt8(bit % 8)
            let expected: Sealer.OpenError =
                switch bit / 8 {
                case 0..<2: .badMagic
                case 2: .unsupportedVersion
                case 3..<7: .unknownKey
                default: .authenticationFailed
                }
            #expect(throws: expected, "bit \(bit)") {
                try Sealer.open(tampered, associatedData: clusterName, keyring: ring)
            }
        }
    }

    @Test func everyTruncationIsRefused() throws {
        let ring = try keyring(freshKey())
        let sealed = Sealer.seal(Array("truncate me".utf8), associatedData: clusterName, keyring: ring)
        for length in 0..<sealed.count {
            let expected: Sealer.OpenError =
                length < Sealer.overhead ? .tooShort : .authenticationFailed
            #expect(throws: expected, "length \(length)") {
                try Sealer.open(Array(sealed.prefix(length)), associatedData: clusterName, keyring: ring)
            }
        }
    }

    @Test func seededRandomGarbageIsRefusedWithoutTrapping() throws {
        let ring = try keyring(freshKey())
        var rng = SeededGenerator(seed: 0xC0FFEE)
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...300, using: &rng)
            let garbage = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            #expect(throws: Sealer.OpenError.self) {
                try Sealer.open(garbage, associatedData: clusterName, keyring: ring)
            }
        }
    }

    @Test func garbageBehindAValidHeaderFailsAuthentication() throws {
        let ring = try keyring(freshKey())
        let header = Array(
            Sealer.seal([], associatedData: clusterName, keyring: ring).prefix(7))
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let length = Int.random(in: 0...200, using: &rng)
            let body = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            let expected: Sealer.OpenError =
                header.count + length < Sealer.overhead ? .tooShort : .authenticationFailed
            #expect(throws: expected) {
                try Sealer.open(header + body, associatedData: clusterName, keyring: ring)
            }
        }
    }

    @Test func openErrorReasonsAreStableLabels() {
        #expect(
            Sealer.OpenError.allCases.map(\.reason) == [
                "too_short", "bad_magic", "bad_version", "unknown_key", "auth_failed",
            ])
    }

    @Test func rotationKeepsOldMessagesOpenUntilTheOldKeyIsRemoved() throws {
        let old = try freshKey()
        let new = try freshKey()
        var ring = try keyring(old)
        let sealedByOld = Sealer.seal(Array("before".utf8), associatedData: clusterName, keyring: ring)

        try ring.install(new)
        try ring.use(new)
        #expect(ring.primary == new)
        #expect(
            try Sealer.open(sealedByOld, associatedData: clusterName, keyring: ring)
                == Array("before".utf8))
        let sealedByNew = Sealer.seal(Array("after".utf8), associatedData: clusterName, keyring: ring)
        #expect(Array(sealedByNew[3..<7]) != Array(sealedByOld[3..<7]))

        try ring.remove(old)
        #expect(throws: Sealer.OpenError.unknownKey) {
            try Sealer.open(sealedByOld, associatedData: clusterName, keyring: ring)
        }
        #expect(
            try Sealer.open(sealedByNew, associatedData: clusterName, keyring: ring)
                == Array("after".utf8))
    }

    @Test func nodeThatOnlyInstalledTheNewKeyOpensMessagesSealedWithIt() throws {
        let old = try freshKey()
        let new = try freshKey()
        var sender = try keyring(old, new)
        try sender.use(new)
        let receiver = try keyring(old, new)  // installed, not yet primary
        let sealed = Sealer.seal([9, 9], associatedData: clusterName, keyring: sender)
        #expect(try Sealer.open(sealed, associatedData: clusterName, keyring: receiver) == [9, 9])
    }
}
