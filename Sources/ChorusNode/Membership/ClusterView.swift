import ChorusCore

/// A consistent snapshot of the membership for services that route by it: who
/// is in the cluster, in what state, and which nodes hold which partitions.
public struct ClusterView: Sendable {
    public var members: [NodeID: Member]
    /// Placement now and, while members join or leave, after the change.
    public var ring: RingPlacement

    /// The ring that serves reads now.
    public var placement: PlacementTable { ring.current }

    /// Whether SWIM currently believes `node` answers (alive or suspect: a suspect
    /// may well be fine, and skipping it would turn every hiccup into a hint).
    public func isReachable(_ node: NodeID) -> Bool {
        guard let status = members[node]?.status else { return false }
        return status == .alive || status == .suspect
    }
}
