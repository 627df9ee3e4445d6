import CSodium

/// Seals and opens UDP datagrams and TCP frames with the cluster keyring.
///
/// Wire format (append only: the numbers are the protocol):
///
///     magic "CH" (2) | version 1 (1) | key id, big-endian (4) | nonce (24) | ciphertext | tag (16)
///
/// The cipher is XChaCha20-Poly1305-IETF. Its 192-bit nonce is large enough to draw at
/// random for every message (libsodium's AEAD guide; collision odds stay negligible far
/// beyond any cluster's lifetime), so no counter has to survive restarts. The key id
/// picks the key in one lookup instead of memberlist's trial decryption with every key.
///
/// Associated data is the 7-byte header (magic, version, key id) followed by the
/// caller's associated data — the cluster name's UTF-8 bytes — so a message from
/// another cluster sharing a key, or one with a rewritten header, fails authentication.
///
/// ``open(_:associatedData:keyring:)`` never traps: every length is checked before it
/// is used, and each refusal has a stable ``OpenError/reason`` label for metrics (DESIGN
/// §7: dropped and counted, never a crash).
public enum Sealer {
    /// "CH": cheap first filter for stray traffic on the port.
    public static let magic: [UInt8] = [0x43, 0x48]
    /// Wire format version this code seals and opens.
    public static let version: UInt8 = 1
    /// XChaCha20 nonce length (`crypto_aead_xchacha20poly1305_ietf_NPUBBYTES`).
    public static let nonceBytes = 24
    /// Poly1305 tag length (`crypto_aead_xchacha20poly1305_ietf_ABYTES`).
    public static let tagBytes = 16
    /// Magic, version and key id: the authenticated but unencrypted prefix.
    static let prefixBytes = 2 + 1 + 4
    /// Everything before the ciphertext.
    public static let headerBytes = prefixBytes + nonceBytes
    /// Bytes a sealed message adds to its plaintext: 2 + 1 + 4 + 24 + 16 = 47.
    public static let overhead = headerBytes + tagBytes

    /// Largest datagram Chorus sends, sealed, in bytes: memberlist's `UDPBufferSize`
    /// default (1400), which stays under a 1500-byte Ethernet MTU after IP and UDP
    /// headers, so datagrams are never fragmented. Plaintext budget is this minus
    /// ``overhead``.
    public static let maxDatagramBytes = 1400

    /// Seals `plaintext` with the keyring's primary key.
    ///
    /// - Parameter associatedData: authenticated but not sent; the cluster name's UTF-8
    ///   bytes, so only nodes of the same cluster open it.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], keyring: Keyring)
        -> [UInt8]
    {
        let key = keyring.primary
        let id = key.keyID
        let prefix =
            magic + [
                version, UInt8(truncatingIfNeeded: id >> 24), UInt8(truncatingIfNeeded: id >> 16),
                UInt8(truncatingIfNeeded: id >> 8), UInt8(truncatingIfNeeded: id),
            ]
        let ad = prefix + associatedData
        let total = overhead + plaintext.count
        return [UInt8](unsafeUninitializedCapacity: total) { out, initialised in
            let base = out.baseAddress!
            for (index, byte) in prefix.enumerated() { base[index] = byte }
            let nonce = base + prefixBytes
            randombytes_buf(nonce, nonceBytes)
            var cipherCount: UInt64 = 0
            let result = plaintext.withUnsafeBufferPointer { message in
                ad.withUnsafeBufferPointer { adBuffer in
                    key.material.withUnsafeBufferPointer { keyBuffer in
                        crypto_aead_xchacha20poly1305_ietf_encrypt(
                            base + headerBytes, &cipherCount, message.baseAddress, UInt64(message.count),
                            adBuffer.baseAddress, UInt64(adBuffer.count), nil, nonce, keyBuffer.baseAddress!)
                    }
                }
            }
            // Encryption only fails for messages beyond 2⁶⁴ bytes, which no array holds.
            assert(result == 0 && cipherCount == UInt64(plaintext.count + tagBytes))
            initialised = total
        }
    }

    /// Opens a message sealed by ``seal(_:associatedData:keyring:)`` with any installed
    /// key (not just the primary, so messages sealed mid-rotation still open).
    ///
    /// - Throws: ``OpenError`` saying why the message was refused; it never traps,
    ///   whatever the input.
    public static func open(_ sealed: [UInt8], associatedData: [UInt8], keyring: Keyring)
        throws(OpenError) -> [UInt8]
    {
        guard sealed.count >= overhead else { throw .tooShort }
        guard sealed[0] == magic[0], sealed[1] == magic[1] else { throw .badMagic }
        guard sealed[2] == version else { throw .unsupportedVersion }
        let id =
            UInt32(sealed[3]) << 24 | UInt32(sealed[4]) << 16 | UInt32(sealed[5]) << 8
            | UInt32(sealed[6])
        guard let key = keyring.key(forID: id) else { throw .unknownKey }

        let ad = sealed[..<prefixBytes] + associatedData
        let plainCount = sealed.count - overhead
        var result: Int32 = -1
        // Capacity at least 1 so the output pointer is never nil, even for empty plaintext.
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(plainCount, 1)) {
            out, initialised in
            var openedCount: UInt64 = 0
            result = sealed.withUnsafeBufferPointer { input in
                ad.withUnsafeBufferPointer { adBuffer in
                    key.material.withUnsafeBufferPointer { keyBuffer in
                        crypto_aead_xchacha20poly1305_ietf_decrypt(
                            out.baseAddress, &openedCount, nil, input.baseAddress! + headerBytes,
                            UInt64(input.count - headerBytes), adBuffer.baseAddress, UInt64(adBuffer.count),
                            input.baseAddress! + prefixBytes, keyBuffer.baseAddress!)
                    }
                }
            }
            initialised = result == 0 ? plainCount : 0
        }
        guard result == 0 else { throw .authenticationFailed }
        return plaintext
    }

    /// Why a sealed message was refused. Cases are in the order they are checked.
    public enum OpenError: Error, Equatable, CaseIterable, CustomStringConvertible {
        /// Shorter than ``Sealer/overhead``: cannot hold a header and tag.
        case tooShort
        /// Does not start with "CH": not Chorus traffic.
        case badMagic
        /// A wire format version this node does not speak.
        case unsupportedVersion
        /// Sealed with a key that is not installed here (a rotation this node missed, or
        /// another cluster).
        case unknownKey
        /// The tag did not verify: tampered, corrupted, or another cluster's name.
        case authenticationFailed

        /// Stable snake_case label for metrics and status output (the numbers are the
        /// protocol: never rename one).
        public var reason: String {
            switch self {
            case .tooShort: "too_short"
            case .badMagic: "bad_magic"
            case .unsupportedVersion: "bad_version"
            case .unknownKey: "unknown_key"
            case .authenticationFailed: "auth_failed"
            }
        }

        public var description: String { "sealed message refused: \(reason)" }
    }
}
