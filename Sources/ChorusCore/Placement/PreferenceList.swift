/// Who holds each partition (DESIGN §3): ring members ranked by a rendezvous
/// (highest-random-weight) hash of (partition, node id) — Thaler and Ravishankar,
/// "Using Name-Based Mappings to Increase Hit Rates", 1998. The first N of a
/// partition's ranking are its home replicas; the rest, in order, are the fallbacks
/// that take hinted writes when home replicas are down (Dynamo §4.6).
///
/// Every node computes the same table from the same ring membership, with no
/// coordination; adding or removing one of S nodes moves about 1/S of the
/// partitions, and only those whose ranking the node enters or leaves.
public struct PlacementTable: Sendable, Equatable {
    public let partitioner: Partitioner
    /// Ring members, sorted by id.
    public let nodes: [NodeID]
    /// Per partition, every ring member ranked (best first), as indices into `nodes`.
    private let rankings: [[UInt16]]

    /// Builds the table for `ring` (every member that has not left or been removed;
    /// crashed, suspect and stopped members keep their place).
    public init(partitioner: Partitioner, ring: some Sequence<NodeID>) {
        self.partitioner = partitioner
        let nodes = Array(Set(ring)).sorted()
        precondition(nodes.count <= Int(UInt16.max), "ring larger than 65535 nodes")
        self.nodes = nodes
        let nodeSeeds = nodes.map { StableHash.mix($0.high ^ StableHash.mix($0.low)) }
        var rankings: [[UInt16]] = []
        rankings.reserveCapacity(partitioner.partitionCount)
        var weights: [(weight: UInt64, index: UInt16)] = []
        weights.reserveCapacity(nodes.count)
        for partition in 0..<partitioner.partitionCount {
            let partitionSeed = StableHash.mix(UInt64(partition) &+ 0x9E37_79B9_7F4A_7C15)
            weights.removeAll(keepingCapacity: true)
            for (index, seed) in nodeSeeds.enumerated() {
                weights.append((StableHash.mix(partitionSeed ^ seed), UInt16(index)))
            }
            // Highest weight first; ties (astronomically rare) by node order.
            weights.sort { $0.weight != $1.weight ? $0.weight > $1.weight : $0.index < $1.index }
            rankings.append(weights.map(\.index))
        }
        self.rankings = rankings
    }

    /// Every ring member ranked for `partition`, best first.
    public func ranking(of partition: Int) -> [NodeID] {
        rankings[partition].map { nodes[Int($0)] }
    }

    /// The first `n` of the ranking: the partition's home replicas.
    public func homeReplicas(of partition: Int, n: Int) -> [NodeID] {
        rankings[partition].prefix(n).map { nodes[Int($0)] }
    }

    /// The partitions `node` is a home replica of, with replication factor `n`.
    public func partitions(homedOn node: NodeID, n: Int) -> [Int] {
        guard let index = nodes.firstIndex(of: node).map(UInt16.init) else { return [] }
        return (0..<partitioner.partitionCount).filter { rankings[$0].prefix(n).contains(index) }
    }

    /// How many partitions each node is the first home replica of, and a home
    /// replica of at all (for `chorus ring`).
    public func shares(n: Int) -> [NodeID: (primary: Int, replica: Int)] {
        var shares: [NodeID: (primary: Int, replica: Int)] = [:]
        for node in nodes { shares[node] = (0, 0) }
        for ranking in rankings {
            for (position, index) in ranking.prefix(n).enumerated() {
                let node = nodes[Int(index)]
                shares[node]!.replica += 1
                if position == 0 { shares[node]!.primary += 1 }
            }
        }
        return shares
    }
}
