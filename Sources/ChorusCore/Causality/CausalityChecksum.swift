/// The pure-Swift hashes the causal-context format uses (no Foundation, no zlib): the
/// values are part of the format, so they must not change between builds or platforms
/// (Swift's `Hasher` is seeded per process and cannot be used).
enum CausalityChecksum {
    /// FNV-1a, 32 bits (Fowler, Noll, Vo): the cluster tag of a context.
    static func fnv1a32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    /// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's `crc32`): detects
    /// every single-bit error and every burst of up to 32 bits.
    static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
        }
        return crc
    }
}
