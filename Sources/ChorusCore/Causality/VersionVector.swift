/// A version vector: for each replica, how many of its events (dots) are known
/// (Parker et al. 1983; the "causal context" of DESIGN §4).
///
/// It is what a read hands to the client (`DVVSet.join`, Almeida et al. 2014 §5) and
/// what the client hands back with its next write. Replicas with a zero counter are not
/// stored, so two vectors that know the same events are equal.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    /// Replica id to counter; never holds a zero counter.
    public private(set) var counters: [NodeID: UInt64]

    /// The empty vector: knows no event (a blind write's context).
    public init() {
        counters = [:]
    }

    /// A vector from `counters`; zero counters are dropped.
    public init(_ counters: [NodeID: UInt64]) {
        self.counters = counters.filter { $0.value > 0 }
    }

    /// A vector from (replica, counter) pairs; a replica listed twice keeps its larger
    /// counter, zero counters are dropped.
    public init<S: Sequence>(pairs: S) where S.Element == (NodeID, UInt64) {
        var counters: [NodeID: UInt64] = [:]
        for (id, counter) in pairs where counter > 0 {
            counters[id] = max(counters[id, default: 0], counter)
        }
        self.counters = counters
    }

    /// The counter for `replica`, 0 when absent. Setting 0 removes the replica.
    public subscript(replica: NodeID) -> UInt64 {
        get { counters[replica, default: 0] }
        set { counters[replica] = newValue == 0 ? nil : newValue }
    }

    public var isEmpty: Bool { counters.isEmpty }
    public var count: Int { counters.count }

    /// The replicas with a non-zero counter, in id order.
    public var ids: [NodeID] { counters.keys.sorted() }

    /// (replica, counter) pairs in id order: the canonical order for encodings.
    public var sortedEntries: [(id: NodeID, counter: UInt64)] {
        counters.sorted { $0.key < $1.key }.map { (id: $0.key, counter: $0.value) }
    }

    /// Pointwise maximum: the vector that knows what either knows.
    public mutating func merge(_ other: VersionVector) {
        counters.merge(other.counters) { max($0, $1) }
    }

    public func merged(_ other: VersionVector) -> VersionVector {
        var copy = self
        copy.merge(other)
        return copy
    }

    /// `self` knows every event `other` knows (pointwise ≥). Reflexive.
    public func descends(_ other: VersionVector) -> Bool {
        other.counters.allSatisfy { self[$0.key] >= $0.value }
    }

    /// `self` knows strictly more than `other`: descends and differs.
    public func dominates(_ other: VersionVector) -> Bool {
        self != other && descends(other)
    }

    /// Neither descends the other: the two histories diverged.
    public func concurrent(with other: VersionVector) -> Bool {
        !descends(other) && !other.descends(self)
    }

    public var description: String {
        "{" + sortedEntries.map { "\($0.id):\($0.counter)" }.joined(separator: ", ") + "}"
    }
}
