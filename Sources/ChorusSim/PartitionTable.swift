/// Network partitions in force: each blocks every datagram and TCP connection from a
/// node of `from` to a node of `to` (asymmetric), and the reverse too when symmetric.
public struct Partition: Sendable, Codable, Hashable {
    public var from: [Int]
    public var to: [Int]
    public var symmetric: Bool

    public init(from: [Int], to: [Int], symmetric: Bool = true) {
        self.from = from
        self.to = to
        self.symmetric = symmetric
    }

    /// `side` against every other node of a cluster of `nodes`.
    public static func isolating(_ side: [Int], nodes: Int, symmetric: Bool = true) -> Partition {
        let set = Set(side)
        return Partition(from: side, to: (0..<nodes).filter { !set.contains($0) }, symmetric: symmetric)
    }
}

struct PartitionTable {
    private struct Active {
        let id: Int
        let from: [Bool]
        let to: [Bool]
        let symmetric: Bool
    }

    private var active: [Active] = []
    /// Nodes touched by any partition in force (for the cheap common case).
    private(set) var isEmpty = true
    let nodeCount: Int

    init(nodeCount: Int) {
        self.nodeCount = nodeCount
    }

    mutating func start(_ partition: Partition, id: Int) {
        var from = [Bool](repeating: false, count: nodeCount)
        var to = from
        for node in partition.from where node < nodeCount { from[node] = true }
        for node in partition.to where node < nodeCount { to[node] = true }
        active.append(Active(id: id, from: from, to: to, symmetric: partition.symmetric))
        isEmpty = false
    }

    mutating func heal(id: Int) {
        active.removeAll { $0.id == id }
        isEmpty = active.isEmpty
    }

    /// Whether traffic from `a` to `b` is blocked.
    func blocks(_ a: Int, _ b: Int) -> Bool {
        guard !isEmpty else { return false }
        for partition in active {
            if partition.from[a] && partition.to[b] { return true }
            if partition.symmetric && partition.from[b] && partition.to[a] { return true }
        }
        return false
    }

    /// Whether `a` and `b` can talk both ways (what a TCP exchange needs).
    func connects(_ a: Int, _ b: Int) -> Bool {
        !blocks(a, b) && !blocks(b, a)
    }

    /// Whether `node` is cut off from anyone.
    func isolatesAnyone(_ node: Int) -> Bool {
        guard !isEmpty else { return false }
        return active.contains { $0.from[node] || $0.to[node] }
    }
}
