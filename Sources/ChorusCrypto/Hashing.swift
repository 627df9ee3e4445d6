import CSodium

/// BLAKE2b hashing and CSPRNG helpers over libsodium.
///
/// These do not throw when ``Sodium`` failed to initialise: libsodium's generic hash
/// runs on its portable implementation without `sodium_init()`, and `randombytes_buf`
/// initialises its own generator on first use. They still nudge ``Sodium`` first so
/// that, when initialisation works, the optimised code paths are chosen.
public enum Hashing {
    /// Shortest BLAKE2b output libsodium allows (`crypto_generichash_BYTES_MIN`).
    public static let minOutputLength = 16
    /// Longest BLAKE2b output libsodium allows (`crypto_generichash_BYTES_MAX`).
    public static let maxOutputLength = 64
    /// libsodium's default output (`crypto_generichash_BYTES`); 256 bits is plenty for
    /// fingerprints and key ids.
    public static let defaultOutputLength = 32

    /// BLAKE2b (`crypto_generichash`, unkeyed) of `bytes`.
    ///
    /// - Precondition: `outputLength` is within
    ///   ``minOutputLength``...``maxOutputLength``. A wrong length is a programming error,
    ///   never a property of the input, so it is checked rather than thrown.
    public static func blake2b(_ bytes: [UInt8], outputLength: Int = defaultOutputLength)
        -> [UInt8]
    {
        precondition(
            (minOutputLength...maxOutputLength).contains(outputLength),
            "BLAKE2b output length \(outputLength) outside \(minOutputLength)...\(maxOutputLength)")
        _ = Sodium.isAvailable
        var output = [UInt8](repeating: 0, count: outputLength)
        let result = output.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                crypto_generichash(
                    out.baseAddress!, out.count, input.baseAddress, UInt64(input.count), nil, 0)
            }
        }
        // Only a bad output or key length makes crypto_generichash fail; both are checked
        // above, so this cannot fire.
        assert(result == 0, "crypto_generichash failed")
        return output
    }

    /// `count` bytes from libsodium's CSPRNG (`randombytes_buf`).
    ///
    /// - Precondition: `count >= 0`.
    public static func randomBytes(count: Int) -> [UInt8] {
        precondition(count >= 0, "negative random byte count \(count)")
        _ = Sodium.isAvailable
        var output = [UInt8](repeating: 0, count: count)
        output.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
        }
        return output
    }

    /// A uniformly random `UInt64` from libsodium's CSPRNG.
    public static func randomUInt64() -> UInt64 {
        _ = Sodium.isAvailable
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { randombytes_buf($0.baseAddress!, $0.count) }
        return value
    }
}
