import Testing

@testable import ChorusCrypto

@Suite struct SessionCipherTests {
    func pair() throws -> (SessionCipher, SessionCipher) {
        let a = KeyExchangeKeyPair.generate()
        let b = KeyExchangeKeyPair.generate()
        return (
            try SessionCipher(role: .initiator, mine: a, peerPublicKey: b.publicKey),
            try SessionCipher(role: .responder, mine: b, peerPublicKey: a.publicKey)
        )
    }

    @Test func framesRoundTripInBothDirections() throws {
        var (client, server) = try pair()
        for size in [0, 1, 100, 70_000] {
            let message = [UInt8]((0..<size).map { UInt8(truncatingIfNeeded: $0) })
            #expect(try server.open(client.seal(message)) == message)
            #expect(try client.open(server.seal(message)) == message)
        }
    }

    @Test func replayedOrReorderedFramesAreRefused() throws {
        var (client, server) = try pair()
        let first = client.seal([1])
        let second = client.seal([2])
        #expect(throws: SessionCipher.Failure.self) { try server.open(second) }
        #expect(try server.open(first) == [1])
        #expect(throws: SessionCipher.Failure.self) { try server.open(first) }
    }

    @Test func tamperedFramesAreRefused() throws {
        var (client, server) = try pair()
        var sealed = client.seal([1, 2, 3, 4])
        sealed[2] ^= 0x10
        #expect(throws: SessionCipher.Failure.self) { try server.open(sealed) }
        #expect(throws: SessionCipher.Failure.self) { try server.open([1, 2]) }
    }

    @Test func anOutsiderSessionCannotOpenFrames() throws {
        var (client, _) = try pair()
        var (_, other) = try pair()
        #expect(throws: SessionCipher.Failure.self) { try other.open(client.seal([9])) }
    }

    @Test func invalidPeerKeysAreRefused() {
        #expect(throws: SessionCipher.Failure.self) {
            try SessionCipher(role: .initiator, mine: .generate(), peerPublicKey: [1, 2, 3])
        }
    }
}
