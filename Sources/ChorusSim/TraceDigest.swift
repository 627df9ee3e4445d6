/// FNV-1a 64 over the simulator's event trace: every event processed and every
/// effect it produced, as fixed-width words. Two runs with the same digest took the
/// same steps in the same order (the determinism check of the issue).
public struct TraceDigest: Sendable {
    private static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    public private(set) var value: UInt64 = Self.offsetBasis
    /// Words mixed in so far.
    public private(set) var words: UInt64 = 0

    public init() {}

    /// Mixes the 8 bytes of `word`, least significant first.
    public mutating func mix(_ word: UInt64) {
        var hash = value
        var rest = word
        for _ in 0..<8 {
            hash ^= rest & 0xff
            hash &*= Self.prime
            rest >>= 8
        }
        value = hash
        words &+= 1
    }

    public mutating func mix(_ word: Int) { mix(UInt64(bitPattern: Int64(word))) }

    /// 16 lowercase hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
