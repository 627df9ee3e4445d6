import Testing

@testable import ChorusCore

/// Seeded random properties of `DVVSet` (fixed seeds: every failure reproduces).
@Suite struct DVVSetPropertyTests {
    typealias Clock = DVVSet<String>
    static let replicas = (1...4).map { causalNode($0) }

    /// A random clock consistent with one global history: replica r's dot k always holds
    /// the value "r:k". Each entry knows dots 1…n and keeps a random newest suffix live.
    /// Every reachable clock has this shape, and any two of them agree on shared dots.
    static func consistentClock(_ rng: inout CausalRNG) -> Clock {
        var entries: [Clock.Entry] = []
        for (index, replica) in replicas.enumerated() where rng.chance(75) {
            let counter = UInt64(1 + rng.below(6))
            let live = rng.below(Int(counter) + 1)
            let values = (0..<live).map { "\(index):\(counter - UInt64($0))" }
            entries.append(Clock.entry(replica, counter: counter, values: values))
        }
        return Clock(entries: entries)!
    }

    @Test func syncIsCommutativeAssociativeAndIdempotent() {
        var rng = CausalRNG(seed: 0xD0_77ED)
        for _ in 0..<500 {
            let a = Self.consistentClock(&rng)
            let b = Self.consistentClock(&rng)
            let c = Self.consistentClock(&rng)
            #expect(a.sync(b) == b.sync(a))
            #expect(a.sync(b).sync(c) == a.sync(b.sync(c)))
            #expect(a.sync(a) == a)
            #expect(a.sync(b).sync(b) == a.sync(b))
            #expect(a.sync(Clock()) == a)
        }
    }

    @Test func syncKeepsOnlyInputValuesAndDescendsBothInputs() {
        var rng = CausalRNG(seed: 0x5EED_0002)
        for _ in 0..<300 {
            let a = Self.consistentClock(&rng)
            let b = Self.consistentClock(&rng)
            let merged = a.sync(b)
            #expect(merged.descends(a) && merged.descends(b))
            #expect(merged.join == a.join.merged(b.join))
            #expect(Set(merged.values).isSubset(of: Set(a.values + b.values)))
            // A value live on both sides is live after the merge.
            #expect(Set(a.values).intersection(b.values).isSubset(of: Set(merged.values)))
            // A value one side holds survives unless the other side has seen its dot.
            for value in a.values where !merged.values.contains(value) {
                let parts = value.split(separator: ":")
                let replica = Self.replicas[Int(parts[0])!]
                #expect(b.counter(for: replica) >= UInt64(parts[1])!)
            }
        }
    }

    @Test func syncWithAnonymousValuesIsCommutativeAndIdempotent() {
        var rng = CausalRNG(seed: 0xA11_0001)
        for round in 0..<300 {
            let a = Self.consistentClock(&rng).sync(
                Clock.new("anon-a\(round % 3)", context: Self.consistentClock(&rng).join))
            let b = Self.consistentClock(&rng).sync(Clock.new("anon-b\(round % 2)"))
            #expect(a.sync(b) == b.sync(a))
            #expect(a.sync(a) == a)
            #expect(a.sync(b).sync(a) == a.sync(b))
        }
    }

    @Test func lwwMergeIsCommutativeAssociativeAndIdempotentAndKeepsTheNewest() {
        var rng = CausalRNG(seed: 0x1_0A57)
        // "r:k" compares by a scrambled rank, so winners fall anywhere in their entries.
        func rank(_ value: String) -> UInt32 {
            CausalityChecksum.fnv1a32(value.utf8)
        }
        let newer = { (x: String, y: String) in rank(x) != rank(y) ? rank(x) > rank(y) : x > y }
        for _ in 0..<300 {
            let a = Self.consistentClock(&rng).lww(newer)
            let b = Self.consistentClock(&rng)
            let c = Self.consistentClock(&rng).lww(newer)
            #expect(a.lwwMerged(b, newer) == b.lwwMerged(a, newer))
            #expect(a.lwwMerged(b, newer).lwwMerged(c, newer) == a.lwwMerged(b.lwwMerged(c, newer), newer))
            #expect(a.lwwMerged(a, newer) == a)
            let all = a.values + b.values + c.values
            let merged = a.lwwMerged(b, newer).lwwMerged(c, newer)
            #expect(merged.size == (all.isEmpty ? 0 : 1))
            if let best = merged.values.first {
                #expect(all.allSatisfy { $0 == best || newer(best, $0) })
            }
            #expect(merged.join == a.join.merged(b.join).merged(c.join))
        }
    }

    @Test func aWriteWithTheReadContextSupersedesExactlyWhatWasRead() {
        var rng = CausalRNG(seed: 0x0_5EE)
        for round in 0..<300 {
            // A replica state from a random history of blind and contextual writes.
            var stored = Self.consistentClock(&rng)
            let read = stored
            // Writes the reader did not see: coordinated here (by replicas 1–3), or at
            // replica 4, which holds its own copy, and then synced in.
            var remote = stored
            var unseen: [String] = []
            for step in 0..<rng.below(4) {
                let value = "unseen-\(round)-\(step)"
                if rng.chance(50) {
                    stored.update(.new(value), replica: Self.replicas[rng.below(3)])
                } else {
                    remote.update(.new(value), replica: Self.replicas[3])
                    stored.formSync(remote)
                }
                unseen.append(value)
            }
            let before = stored.values
            let coordinator = Self.replicas[rng.below(Self.replicas.count)]
            stored.update(.new("mine-\(round)", context: read.join), replica: coordinator)
            let expected = Set(before).subtracting(read.values).union(["mine-\(round)"])
            #expect(Set(stored.values) == expected)
            #expect(Set(unseen).isSubset(of: Set(stored.values)))
            #expect(stored.size == expected.count)
        }
    }

    @Test func interleavedWritesAtThreeReplicasMatchTheCausalModelAndConverge() {
        var rng = CausalRNG(seed: 0xC0_47E7)
        let nodes = (1...3).map { causalNode($0) }
        for round in 0..<250 {
            var clocks = [StoredObject](repeating: StoredObject(), count: 3)
            var models = [CausalModelReplica](repeating: CausalModelReplica(), count: 3)
            var reads: [VersionVector] = [VersionVector()]
            var wall: UInt64 = 0
            for _ in 0..<(5 + rng.below(30)) {
                let here = rng.below(3)
                switch rng.below(10) {
                case 0..<4:  // a write (or delete) with a fresh, stale or empty context
                    let context: VersionVector
                    switch rng.below(3) {
                    case 0: context = VersionVector()
                    case 1: context = clocks[rng.below(3)].join
                    default: context = reads[rng.below(reads.count)]
                    }
                    wall += 1
                    let stamp = LWWStamp(timestamp: HLCTimestamp(wallNanos: wall), node: nodes[here])
                    let value: StoredValue
                    if rng.chance(20) {
                        value = .tombstone(stamp: stamp)
                        clocks[here].delete(context: context, replica: nodes[here], stamp: stamp)
                    } else {
                        value = StoredValue(data: Array("r\(round)w\(wall)".utf8), stamp: stamp)
                        clocks[here].put(value.data, context: context, replica: nodes[here], stamp: stamp)
                    }
                    models[here].write(value, context: context, at: nodes[here])
                case 4..<6:  // a read, remembered for later writes
                    reads.append(clocks[here].join)
                default:  // one-way sync from another replica
                    let there = rng.below(3)
                    clocks[here].merge(clocks[there])
                    models[here].sync(models[there])
                }
                #expect(causalMultiset(clocks[here].values) == causalMultiset(models[here].live))
                #expect(clocks[here].join == models[here].join)
            }
            // Everyone syncs with everyone: same values, same context everywhere.
            let all = StoredObject.sync(clocks)
            var model = CausalModelReplica()
            for replica in models { model.sync(replica) }
            for index in 0..<3 {
                clocks[index].merge(all)
                #expect(clocks[index] == all)
            }
            #expect(causalMultiset(all.values) == causalMultiset(model.live))
            #expect(all.join == model.join)
            #expect(all.isDeleted == (!model.live.isEmpty && model.live.allSatisfy(\.isTombstone)))
        }
    }

    @Test func lwwBucketsConvergeToTheNewestStampAcrossInterleavings() {
        var rng = CausalRNG(seed: 0x1_3B0C)
        let nodes = (1...3).map { causalNode($0) }
        for _ in 0..<250 {
            var objects = [StoredObject](repeating: StoredObject(), count: 3)
            var newest: LWWStamp?
            for _ in 0..<(3 + rng.below(25)) {
                let here = rng.below(3)
                if rng.chance(45) {
                    let stamp = LWWStamp(
                        timestamp: HLCTimestamp(wallNanos: UInt64(rng.below(50)), logical: UInt32(rng.below(3))),
                        node: nodes[here])
                    let context = rng.chance(50) ? objects[rng.below(3)].join : VersionVector()
                    if rng.chance(25) {
                        objects[here].lwwDelete(context: context, replica: nodes[here], stamp: stamp)
                    } else {
                        objects[here].lwwPut(
                            [UInt8(rng.below(256))], context: context, replica: nodes[here], stamp: stamp)
                    }
                    newest = max(newest ?? stamp, stamp)
                } else {
                    objects[here] = objects[here].lwwMerged(objects[rng.below(3)])
                }
                #expect(objects[here].siblingCount <= 1)
            }
            let all = objects.reduce(StoredObject()) { $0.lwwMerged($1) }
            let reversed = objects.reversed().reduce(StoredObject()) { $0.lwwMerged($1) }
            #expect(all == reversed)
            #expect(all.values.first?.stamp == newest)
            for object in objects {
                #expect(object.lwwMerged(all) == all)
            }
        }
    }
}
