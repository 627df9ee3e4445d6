import CSodium

/// An ephemeral X25519 key pair for one connection's key exchange (libsodium's
/// `crypto_kx`). Thrown away when the connection closes, so a later leak of the
/// cluster key does not open recorded sessions (forward secrecy).
public struct KeyExchangeKeyPair: Sendable {
    public static let publicKeyBytes = 32
    public let publicKey: [UInt8]
    let secretKey: [UInt8]

    public static func generate() -> KeyExchangeKeyPair {
        var publicKey = [UInt8](repeating: 0, count: Int(crypto_kx_PUBLICKEYBYTES))
        var secretKey = [UInt8](repeating: 0, count: Int(crypto_kx_SECRETKEYBYTES))
        crypto_kx_keypair(&publicKey, &secretKey)
        return KeyExchangeKeyPair(publicKey: publicKey, secretKey: secretKey)
    }
}

/// The two directions' keys of one TCP session, derived from both sides'
/// ephemeral keys. The handshake that carries the public keys is sealed with the
/// cluster keyring, so only cluster members can take part (DESIGN §7).
public struct SessionCipher: Sendable {
    public enum Role: Sendable { case initiator, responder }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Bytes each frame grows by: the Poly1305 tag (nonces are implicit counters).
    public static let overhead = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    private let sendKey: [UInt8]
    private let receiveKey: [UInt8]
    private var sendCounter: UInt64 = 0
    private var receiveCounter: UInt64 = 0

    /// Derives the session from my ephemeral pair and the peer's public key.
    public init(role: Role, mine: KeyExchangeKeyPair, peerPublicKey: [UInt8]) throws(Failure) {
        guard peerPublicKey.count == KeyExchangeKeyPair.publicKeyBytes else {
            throw Failure(description: "peer public key has \(peerPublicKey.count) bytes, not 32")
        }
        var receive = [UInt8](repeating: 0, count: Int(crypto_kx_SESSIONKEYBYTES))
        var send = [UInt8](repeating: 0, count: Int(crypto_kx_SESSIONKEYBYTES))
        let result: Int32
        switch role {
        case .initiator:
            result = crypto_kx_client_session_keys(&receive, &send, mine.publicKey, mine.secretKey, peerPublicKey)
        case .responder:
            result = crypto_kx_server_session_keys(&receive, &send, mine.publicKey, mine.secretKey, peerPublicKey)
        }
        guard result == 0 else { throw Failure(description: "peer public key is not a valid X25519 point") }
        self.sendKey = send
        self.receiveKey = receive
    }

    /// Seals the next outgoing frame. The nonce is the frame's index in its
    /// direction: TCP keeps order, so it is never sent, and a replayed, dropped or
    /// reordered frame fails to open.
    public mutating func seal(_ plaintext: [UInt8]) -> [UInt8] {
        let nonce = Self.nonce(sendCounter)
        sendCounter += 1
        let total = plaintext.count + Self.overhead
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialised in
            var count: UInt64 = 0
            crypto_aead_xchacha20poly1305_ietf_encrypt(
                out.baseAddress!, &count, plaintext, UInt64(plaintext.count), nil, 0, nil, nonce, sendKey)
            initialised = total
        }
    }

    /// Opens the next incoming frame; any failure means the connection must close.
    public mutating func open(_ sealed: [UInt8]) throws(Failure) -> [UInt8] {
        guard sealed.count >= Self.overhead else { throw Failure(description: "frame shorter than its tag") }
        let nonce = Self.nonce(receiveCounter)
        let plainCount = sealed.count - Self.overhead
        var result: Int32 = -1
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(plainCount, 1)) { out, initialised in
            var count: UInt64 = 0
            result = crypto_aead_xchacha20poly1305_ietf_decrypt(
                out.baseAddress, &count, nil, sealed, UInt64(sealed.count), nil, 0, nonce, receiveKey)
            initialised = result == 0 ? plainCount : 0
        }
        guard result == 0 else { throw Failure(description: "frame failed authentication") }
        receiveCounter += 1
        return plaintext
    }

    private static func nonce(_ counter: UInt64) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES))
        for index in 0..<8 { nonce[16 + index] = UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64(index))) }
        return nonce
    }
}
