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

    /// A member that returned, and why.
    public struct Returned: Hashable, Sendable {
        public var id: NodeID
        /// Seen alive for the first time by this restarted node (else: back after SWIM
        /// held it dead, stopped or left).
        public var firstSight: Bool
    }

    /// Feeds the members' current statuses (without this node's own); returns the
    /// members that returned since the last call, in id order. Members absent from
    /// `statuses` (reaped) are forgotten.
    public mutating func observe(_ statuses: [NodeID: MemberStatus]) -> [Returned] {
        var returned: [Returned] = []
        for (id, status) in statuses {
            switch status {
            case .alive:
                let back = seenGone.contains(id)
                if seenAlive.insert(id).inserted, firstSightReturns || back {
                    returned.append(Returned(id: id, firstSight: !back))
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
        return returned.sorted { $0.id < $1.id }
    }
}

/// Partitions this node became a home replica of since the last look — it joined the
/// ring, or inherited a removed or departed member's partitions. The ring handoff
/// fetches them; a catch-up then compares each with its co-replicas, which costs one
/// round trip where the fetch got everything and repairs what it missed. A node that
/// joins a ring with fewer members than n fetches nothing (it displaces no replica, so
/// it is a member at once): everything it holds at its first look is a gain.
public struct HomeWatch: Sendable {
    private var homed: Set<Int>?

    /// - Parameter firstLookGained: the node joined without the fetch (a ring smaller
    ///   than n): the partitions of the first look count as gained. Otherwise they are
    ///   what the node holds already (a restart, a seed, a join that fetched them).
    public init(firstLookGained: Bool) {
        homed = firstLookGained ? [] : nil
    }

    /// Feeds the partitions this node is a home replica of now; returns those it was
    /// not at the last call, in order.
    public mutating func observe(_ homedNow: [Int]) -> [Int] {
        defer { homed = Set(homedNow) }
        guard let homed else { return [] }
        return homedNow.filter { !homed.contains($0) }.sorted()
    }
}

/// The exchanges one catch-up makes: every partition this node and `peer` are both
/// home replicas of.
public enum CatchUpPlan {
    /// The shared partitions, in partition order.
    public static func partitions(shared peer: NodeID, with local: NodeID, in placement: PlacementTable, n: Int)
        -> [Int]
    {
        placement.partitions(homedOn: local, n: n).filter { placement.homeReplicas(of: $0, n: n).contains(peer) }
    }

    /// The order to exchange them in. A restarted node goes through its partitions in
    /// order; the co-replicas that saw it return (they catch up with it at the same
    /// time) each take a random order, so that two exchanges seldom repair the same
    /// partition at once: whichever comes second finds the trees equal, one round trip.
    public static func ordered(
        _ partitions: [Int], firstSight: Bool, using random: inout some RandomNumberGenerator
    ) -> [Int] {
        firstSight ? partitions.sorted() : partitions.shuffled(using: &random)
    }
}
