/// The stamp a write carries for last-writer-wins buckets (DESIGN §4): the
/// coordinator's hybrid-logical-clock reading and its node id.
///
/// Totally ordered: by timestamp, then by node id, so two replicas resolving the same
/// siblings always pick the same winner, even for equal timestamps minted by different
/// coordinators. One coordinator never mints the same timestamp twice.
public struct LWWStamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var timestamp: HLCTimestamp
    public var node: NodeID

    public init(timestamp: HLCTimestamp, node: NodeID) {
        self.timestamp = timestamp
        self.node = node
    }

    public static func < (lhs: LWWStamp, rhs: LWWStamp) -> Bool {
        if lhs.timestamp != rhs.timestamp { return lhs.timestamp < rhs.timestamp }
        return lhs.node < rhs.node
    }

    public var description: String { "\(timestamp)@\(node)" }
}
