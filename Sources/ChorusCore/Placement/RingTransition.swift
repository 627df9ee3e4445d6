/// Where a member stands in a change of the ring (DESIGN §3, §9), gossiped as its
/// `ring` tag. A member with no such tag is a settled ring member.
///
/// - `joining`: a new node fetching the partitions it will own. It takes writes for
///   them (as a pending replica) but serves no reads until it has them all.
/// - `leaving`: a node streaming its partitions to their next owners (`chorus leave`).
///   It stays a full replica until it announces `left`.
public enum RingPhase: String, Sendable, CaseIterable {
    case joining
    case leaving

    /// The member tag that carries the phase.
    public static let tag = "ring"
}

extension Member {
    /// The member's phase in a ring change, from its `ring` tag; nil when settled.
    public var ringPhase: RingPhase? { tags[RingPhase.tag].flatMap(RingPhase.init(rawValue:)) }

    /// In the ring that serves reads now: not departed, not still joining.
    public var inCurrentRing: Bool { status != .left && ringPhase != .joining }

    /// In the ring once every change under way completes: not departed, not leaving.
    public var inTargetRing: Bool { status != .left && ringPhase != .leaving }
}

/// Who holds one partition's copies while the ring may be changing: the home
/// replicas that serve it now, and the pending ones that will replace some of them.
///
/// A write goes to both and needs `W + displaced` acknowledgements (Cassandra's
/// pending ranges): then, whichever home replicas the change displaces, at least W
/// of the future home replicas hold it, so a read quorum of the new ring still meets
/// it once the change completes. Reads use the current home replicas only.
public struct ReplicaPlan: Hashable, Sendable {
    /// The current home replicas, in ranking order: they serve reads and coordinate.
    public var home: [NodeID]
    /// Future home replicas that are not home replicas yet (joining nodes, or the
    /// next owners of a leaving node's partitions), in target ranking order.
    public var pending: [NodeID]
    /// How many of `home` are not future home replicas.
    public var displaced: Int
    /// The rest of the current ranking, for sloppy-quorum hints.
    public var fallbacks: [NodeID]

    public init(home: [NodeID], pending: [NodeID] = [], displaced: Int = 0, fallbacks: [NodeID]) {
        self.home = home
        self.pending = pending
        self.displaced = displaced
        self.fallbacks = fallbacks
    }

    /// The plan without pending replicas that are down: a joining node fetches
    /// every partition again when it comes back, so a write need not wait for it
    /// (nor for a hint to it); the quorum shrinks back accordingly.
    public func excludingPending(notIn reachable: Set<NodeID>) -> ReplicaPlan {
        let up = pending.filter { reachable.contains($0) }
        guard up.count < pending.count else { return self }
        return ReplicaPlan(
            home: home, pending: up, displaced: max(0, displaced - (pending.count - up.count)), fallbacks: fallbacks)
    }

    /// Every node a write is sent to directly: home replicas, then pending ones.
    public var writeTargets: [NodeID] { home + pending }

    /// Acknowledgements a write needs for a quorum of `w` (of the bucket's N) to
    /// hold in both the current and the future ring.
    public func writeRequired(_ w: Int) -> Int {
        min(w + displaced, max(w, home.count + pending.count))
    }
}

/// The placement of every partition in the current ring and, while members are
/// joining or leaving, in the ring that will follow (DESIGN §3). Both are
/// rendezvous tables (`PlacementTable`), so every node derives the same plans from
/// the same view with no coordination.
public struct RingPlacement: Sendable, Equatable {
    /// Members not departed and not joining.
    public let current: PlacementTable
    /// Members not departed and not leaving; nil when it equals `current`.
    public let target: PlacementTable?

    public init(partitioner: Partitioner, members: some Sequence<Member>) {
        var current: [NodeID] = []
        var target: [NodeID] = []
        for member in members {
            if member.inCurrentRing { current.append(member.id) }
            if member.inTargetRing { target.append(member.id) }
        }
        self.current = PlacementTable(partitioner: partitioner, ring: current)
        let future = PlacementTable(partitioner: partitioner, ring: target)
        self.target = future.nodes == self.current.nodes ? nil : future
    }

    public var partitioner: Partitioner { current.partitioner }

    /// Whether a member is joining or leaving.
    public var isChanging: Bool { target != nil }

    /// The replicas of `partition` for a bucket with replication factor `n`.
    public func plan(partition: Int, n: Int) -> ReplicaPlan {
        let ranking = current.ranking(of: partition)
        let home = Array(ranking.prefix(n))
        guard let target else {
            return ReplicaPlan(home: home, fallbacks: Array(ranking.dropFirst(n)))
        }
        let future = target.homeReplicas(of: partition, n: n)
        let pending = future.filter { !home.contains($0) }
        return ReplicaPlan(
            home: home, pending: pending, displaced: home.filter { !future.contains($0) }.count,
            fallbacks: ranking.dropFirst(n).filter { !pending.contains($0) })
    }

    /// The partitions `node` will be a home replica of (bucket replication `n`) and
    /// is not one of now: what it must receive before the change completes.
    public func partitions(pendingOn node: NodeID, n: Int) -> [Int] {
        guard let target else { return [] }
        let future = Set(target.partitions(homedOn: node, n: n))
        let now = Set(current.partitions(homedOn: node, n: n))
        return future.subtracting(now).sorted()
    }
}
