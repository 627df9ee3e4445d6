/// Anti-entropy catch-up (README "Anti-entropy"): which co-replicas a node should
/// compare every shared partition with now, rather than waiting for the periodic
/// exchanges to come round (at one partition per interval, hours on a full node).
///
/// A member has *returned* when this node sees it alive after SWIM held it dead,
/// stopped or left — and, on a node that restarted (it was a ring member before this
/// start), when it sees a member alive for the first time since starting. That covers
/// both ends of an outage: the node that was down catches up with every co-replica
/// when it starts, and the nodes that took writes while it was down catch up with it
/// when it comes back — together they find writes no hint carried (with n equal to the
/// cluster size there is no fallback to hold one) and writes the returning node took
/// while cut off. A node new to the cluster gets its partitions by the ring handoff, so
/// a first sighting on a node that did not restart (a fresh cluster, a joining node)
/// is no return. Suspicion does not count as gone: a suspect that refutes missed
/// nothing a hint or a replica timeout did not cover.
public struct ReturnWatch: Sendable {
    private let firstSightReturns: Bool
    private var seenAlive: Set<NodeID> = []
    private var seenGone: Set<NodeID> = []

    /// - Parameter restarted: this node was a ring member before this start.
    public init(restarted: Bool) {
        firstSightReturns = restarted
    }

    /// Feeds the members' current statuses (without this node's own); returns the
    /// members that returned since the last call, in id order. Members absent from
    /// `statuses` (reaped) are forgotten.
    public mutating func observe(_ statuses: [NodeID: MemberStatus]) -> [NodeID] {
        var returned: [NodeID] = []
        for (id, status) in statuses {
            switch status {
            case .alive:
                if seenAlive.insert(id).inserted, firstSightReturns || seenGone.contains(id) {
                    returned.append(id)
                }
                seenGone.remove(id)
            case .suspect:
                break
            case .dead, .stopped, .left:
                seenAlive.remove(id)
                seenGone.insert(id)
            }
        }
        seenAlive = seenAlive.filter { statuses[$0] != nil }
        seenGone = seenGone.filter { statuses[$0] != nil }
        return returned.sorted()
    }
}

/// The exchanges one catch-up makes: every partition this node and `peer` are both
/// home replicas of, in partition order.
public enum CatchUpPlan {
    public static func partitions(shared peer: NodeID, with local: NodeID, in placement: PlacementTable, n: Int)
        -> [Int]
    {
        placement.partitions(homedOn: local, n: n).filter { placement.homeReplicas(of: $0, n: n).contains(peer) }
    }
}
