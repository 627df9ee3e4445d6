/// A hybrid logical clock reading (Kulkarni, Demirbas, Madappa, Avva and Leone,
/// "Logical Physical Clocks", OPODIS 2014): the largest physical time heard of, in
/// nanoseconds since the Unix epoch (the paper's `l`), and a logical counter that orders
/// events sharing it (the paper's `c`).
///
/// Ordered by physical time, then logical counter. Two nodes may produce equal
/// timestamps; `LWWStamp` adds the node id to make the order total.
public struct HLCTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the Unix epoch (the paper's `l`).
    public var wallNanos: UInt64
    /// Orders events with the same `wallNanos` (the paper's `c`).
    public var logical: UInt32

    public init(wallNanos: UInt64, logical: UInt32 = 0) {
        self.wallNanos = wallNanos
        self.logical = logical
    }

    /// The paper's name for `wallNanos`.
    public var physical: UInt64 { wallNanos }

    public static let zero = HLCTimestamp(wallNanos: 0, logical: 0)

    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool {
        (lhs.wallNanos, lhs.logical) < (rhs.wallNanos, rhs.logical)
    }

    /// The next timestamp after this one: logical + 1, or, once the logical counter is
    /// exhausted, the next nanosecond with logical 0 (never traps).
    public var successor: HLCTimestamp {
        if logical < .max { return HLCTimestamp(wallNanos: wallNanos, logical: logical + 1) }
        if wallNanos < .max { return HLCTimestamp(wallNanos: wallNanos + 1, logical: 0) }
        return self
    }

    public var description: String { "\(wallNanos).\(logical)" }
}
