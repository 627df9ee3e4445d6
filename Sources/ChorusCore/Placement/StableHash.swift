/// A stable 64-bit hash for placement: the same bytes give the same value on every
/// node, every platform and every release (Swift's `Hasher` is seeded per process,
/// so it cannot be used). FNV-1a over the bytes, finished with the SplitMix64 mixer
/// so that nearby inputs spread over the whole range.
///
/// Changing this function moves every key: append-only, the numbers are the protocol.
public enum StableHash {
    public static func hash<Bytes: Sequence>(_ bytes: Bytes, seed: UInt64 = 0) -> UInt64 where Bytes.Element == UInt8 {
        var state: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for byte in bytes {
            state ^= UInt64(byte)
            state &*= 0x0000_0100_0000_01B3
        }
        return mix(state)
    }

    /// SplitMix64's finaliser (Steele, Lea, Flood, "Fast splittable pseudorandom
    /// number generators", 2014): a bijection with full avalanche.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
