import CSodium

/// A 256-bit XChaCha20-Poly1305 key shared by every node of a cluster.
///
/// Operators handle keys as base64 text (config files, `chorus keys install`), so that
/// is the only text form. On the wire a sealed message names its key by ``keyID`` so
/// the receiver picks the right key without trial decryption (memberlist tries every
/// key in turn; with a key id Chorus does one decryption per datagram).
///
/// `description`, `debugDescription` and the reflection mirror show only the key id,
/// so a key logged or `dump`ed by accident does not leak.
public struct ClusterKey: Sendable, Hashable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    /// Key length (`crypto_aead_xchacha20poly1305_ietf_KEYBYTES`).
    public static let byteCount = 32

    /// The raw key. Internal: only the sealer and the keyring file need it.
    let material: [UInt8]

    /// First 4 bytes, big-endian, of BLAKE2b-256 of the key: names the key on the wire.
    ///
    /// Two distinct keys share an id with probability 2⁻³², so ``Keyring`` refuses to
    /// install a key whose id is already taken by a different key.
    public let keyID: UInt32

    /// Wraps exactly ``byteCount`` bytes of key material, for example a derived session
    /// key.
    public init(bytes: [UInt8]) throws(ClusterKeyError) {
        do throws(SodiumUnavailableError) {
            try Sodium.ensureInitialised()
        } catch {
            throw .sodiumUnavailable
        }
        guard bytes.count == Self.byteCount else { throw .wrongLength(bytes.count) }
        material = bytes
        let digest = Hashing.blake2b(bytes)
        keyID =
            UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8
            | UInt32(digest[3])
    }

    /// Parses a key from standard, padded base64 (as ``base64`` writes it). Surrounding
    /// and embedded whitespace is ignored, since keys are pasted from terminals and
    /// config files.
    public init(base64 text: String) throws(ClusterKeyError) {
        do throws(SodiumUnavailableError) {
            try Sodium.ensureInitialised()
        } catch {
            throw .sodiumUnavailable
        }
        var encoded = Array(text.utf8)
        // Decoded output is never longer than the input, so a key of the wrong length is
        // reported as such rather than as an overflow.
        var decoded = [UInt8](repeating: 0, count: max(encoded.count, 1))
        var decodedCount = 0
        encoded.append(0)
        let result = decoded.withUnsafeMutableBufferPointer { out in
            encoded.withUnsafeBufferPointer { input in
                input.withMemoryRebound(to: CChar.self) { chars in
                    sodium_base642bin(
                        out.baseAddress!, out.count, chars.baseAddress, chars.count - 1, " \t\r\n",
                        &decodedCount, nil, sodium_base64_VARIANT_ORIGINAL)
                }
            }
        }
        guard result == 0 else { throw .invalidBase64 }
        try self.init(bytes: Array(decoded.prefix(decodedCount)))
    }

    /// A fresh random key from libsodium's CSPRNG (`crypto_aead_xchacha20poly1305_ietf_keygen`).
    public static func generate() throws(ClusterKeyError) -> ClusterKey {
        do throws(SodiumUnavailableError) {
            try Sodium.ensureInitialised()
        } catch {
            throw .sodiumUnavailable
        }
        var bytes = [UInt8](repeating: 0, count: byteCount)
        bytes.withUnsafeMutableBufferPointer {
            crypto_aead_xchacha20poly1305_ietf_keygen($0.baseAddress!)
        }
        return try ClusterKey(bytes: bytes)
    }

    /// The key as standard, padded base64 (44 characters).
    public var base64: String {
        // sodium_base64_ENCODED_LEN for the padded variant, plus the terminating NUL.
        var text = [CChar](repeating: 0, count: (material.count + 2) / 3 * 4 + 1)
        text.withUnsafeMutableBufferPointer { out in
            material.withUnsafeBufferPointer { input in
                _ = sodium_bin2base64(
                    out.baseAddress!, out.count, input.baseAddress, input.count,
                    sodium_base64_VARIANT_ORIGINAL)
            }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The key id as 8 lowercase hex digits, the form logs and status output use.
    public var keyIDHex: String { Self.hex(keyID) }

    public var description: String { "ClusterKey(id: \(keyIDHex))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": keyIDHex]) }

    /// Constant-time comparison (`sodium_memcmp`), so equality checks leak no timing.
    public static func == (lhs: ClusterKey, rhs: ClusterKey) -> Bool {
        lhs.material.withUnsafeBytes { l in
            rhs.material.withUnsafeBytes { r in
                l.count == r.count && sodium_memcmp(l.baseAddress, r.baseAddress, l.count) == 0
            }
        }
    }

    /// Hashes the public key id only: equal keys have equal ids, and key bytes never
    /// reach a hasher.
    public func hash(into hasher: inout Hasher) { hasher.combine(keyID) }

    static func hex(_ id: UInt32) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Why a ``ClusterKey`` could not be made.
public enum ClusterKeyError: Error, Equatable, CustomStringConvertible {
    /// libsodium failed to initialise; see ``SodiumUnavailableError``.
    case sodiumUnavailable
    /// The text is not valid standard (padded) base64.
    case invalidBase64
    /// The key decoded to this many bytes instead of ``ClusterKey/byteCount``.
    case wrongLength(Int)

    public var description: String {
        switch self {
        case .sodiumUnavailable:
            "cannot create a cluster key: libsodium failed to initialise"
        case .invalidBase64:
            "cluster key is not valid base64 (expected \(ClusterKey.byteCount) bytes in standard padded base64)"
        case .wrongLength(let count):
            "cluster key is \(count) bytes; expected \(ClusterKey.byteCount) (a 44-character base64 string)"
        }
    }
}
