/// Operator removal of a member that is gone for good (serf's `force-leave`,
/// Consul's `force-leave`, Cassandra's `removenode`).
extension SWIMInstance {
    public enum RemovalError: Error, Equatable, CustomStringConvertible {
        case unknown
        case isThisNode
        /// Only a member that no longer answers may be removed: a live node leaves
        /// by itself (`chorus leave`), handing its data over first.
        case stillRunning(MemberStatus)

        public var description: String {
            switch self {
            case .unknown: "no such member"
            case .isThisNode: "a node cannot remove itself; use leave"
            case .stillRunning(let status):
                "the member is \(status); only a dead or stopped member can be removed (a running node leaves with `chorus leave`)"
            }
        }
    }

    /// Marks a dead or stopped member `left` at its current incarnation and gossips
    /// it, so every node drops it from the ring. Should it come back, its alive
    /// update at a higher incarnation makes it a member again.
    public mutating func remove(_ id: NodeID, now: MonotonicTime) throws(RemovalError) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        guard id != myID else { throw .isThisNode }
        guard let member = peers[id]?.member else { throw .unknown }
        guard member.status == .dead || member.status == .stopped else { throw .stillRunning(member.status) }
        var update = member.update(from: myID)
        update.status = .left
        var effects: [SWIMEffect] = []
        apply(update, now: now, effects: &effects)
        return effects
    }
}
