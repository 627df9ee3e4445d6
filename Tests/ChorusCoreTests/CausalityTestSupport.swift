@testable import ChorusCore

/// Helpers shared by the causality tests (DVVSet, contexts, HLC, object codec).

/// Replica `n` of a test cluster.
func causalNode(_ n: UInt64) -> NodeID {
    NodeID(high: 0xC0DE, low: n)
}

/// A stamp at wall time `wall`, minted by `node`.
func causalStamp(_ wall: UInt64, logical: UInt32 = 0, node: UInt64 = 1) -> LWWStamp {
    LWWStamp(timestamp: HLCTimestamp(wallNanos: wall, logical: logical), node: causalNode(node))
}

func causalValue(_ text: String, wall: UInt64, node: UInt64 = 1) -> StoredValue {
    StoredValue(data: Array(text.utf8), stamp: causalStamp(wall, node: node))
}

/// The seeded generator the causality properties draw from (a wrapper, so its helper
/// names cannot collide with other suites' extensions of `SeededRandom`).
struct CausalRNG {
    var base: SeededRandom

    init(seed: UInt64) {
        base = SeededRandom(seed: seed)
    }

    mutating func next() -> UInt64 {
        base.next()
    }

    /// Uniform in `0..<bound` (bound > 0).
    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    mutating func chance(_ percent: Int) -> Bool {
        below(100) < percent
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

/// The values of `clock` as a multiset, order-insensitive.
func causalMultiset<V: Hashable>(_ values: [V]) -> [V: Int] {
    values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

/// A reference model of causal histories, kept explicitly per write: the ground truth
/// a DVVSet must agree with. A replica holds the set of writes delivered to it; a write
/// is live there unless some delivered write's context covers its dot.
struct CausalModelWrite: Hashable {
    var value: StoredValue
    var replica: NodeID
    var counter: UInt64
    var context: VersionVector
}

struct CausalModelReplica {
    var delivered: Set<CausalModelWrite> = []

    var live: [StoredValue] {
        delivered.filter { write in
            !delivered.contains { $0.context[write.replica] >= write.counter }
        }.map(\.value)
    }

    var join: VersionVector {
        var vector = VersionVector()
        for write in delivered {
            vector.merge(write.context)
            vector[write.replica] = max(vector[write.replica], write.counter)
        }
        return vector
    }

    /// The coordinator at `replica` writes `value` with `context`.
    mutating func write(_ value: StoredValue, context: VersionVector, at replica: NodeID) {
        let counter = max(join[replica], context[replica]) + 1
        delivered.insert(CausalModelWrite(value: value, replica: replica, counter: counter, context: context))
    }

    mutating func sync(_ other: CausalModelReplica) {
        delivered.formUnion(other.delivered)
    }
}
