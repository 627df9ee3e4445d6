/// A node's identity: 128 random bits minted once and persisted in the data dir.
///
/// A node is its id, not its address or name: the same node restarted on a new
/// address is recognised by its id and accepted by its higher incarnation.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init<G: RandomNumberGenerator>(using generator: inout G) {
        self.init(high: generator.next(), low: generator.next())
    }

    /// Parses the 32-hex-digit form produced by `description`.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 32,
            let high = UInt64(String(decoding: digits[0..<16], as: UTF8.self), radix: 16),
            let low = UInt64(String(decoding: digits[16..<32], as: UTF8.self), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }

    public var description: String {
        hex64(high) + hex64(low)
    }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    private func hex64(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
