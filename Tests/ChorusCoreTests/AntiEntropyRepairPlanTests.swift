import Testing

@testable import ChorusCore

@Suite struct AntiEntropyRepairPlanTests {
    func key(_ name: String) -> RepairKey {
        RepairKey(bucket: "b", key: name)
    }

    @Test func keysAreSortedIntoMissingHereMissingThereAndDifferent() {
        let plan = RepairPlan(
            ours: [key("same"): 1, key("onlyOurs"): 2, key("changed"): 3, key("alsoOurs"): 4],
            theirs: [key("same"): 1, key("onlyTheirs"): 5, key("changed"): 6])
        #expect(plan.missingHere == [key("onlyTheirs")])
        #expect(plan.missingThere == [key("alsoOurs"), key("onlyOurs")])
        #expect(plan.different == [key("changed")])
        // Digests do not order versions: a differing key goes both ways.
        #expect(plan.keysToSend == [key("alsoOurs"), key("changed"), key("onlyOurs")])
        #expect(plan.keysToFetch == [key("changed"), key("onlyTheirs")])
        #expect(!plan.isEmpty)
    }

    @Test func equalListsNeedNoRepair() {
        let keys: [RepairKey: UInt64] = [key("a"): 1, key("b"): 2]
        #expect(RepairPlan(ours: keys, theirs: keys).isEmpty)
        #expect(RepairPlan(ours: [:], theirs: [:]).isEmpty)
    }

    @Test func bothSidesPlanTheSameRepair() {
        for seed in UInt64(1)...20 {
            var random = AERandom(seed: seed)
            let ours = aeRandomKeys(100, random: &random)
            let (theirs, _) = aeDiverge(ours, k: 30, random: &random)
            let plan = RepairPlan(ours: ours, theirs: theirs)
            #expect(plan.mirrored == RepairPlan(ours: theirs, theirs: ours))
            #expect(plan.missingHere.count + plan.missingThere.count + plan.different.count == 30)
        }
    }

    @Test func listsWithRepeatedKeysKeepTheLastDigest() {
        let plan = RepairPlan(ours: [(key("k"), 1), (key("k"), 2)], theirs: [(key("k"), 2)])
        #expect(plan.isEmpty)
    }

    @Test func keyOrderIsByBucketThenKeyBytes() {
        let keys = [
            RepairKey(bucket: "b", key: "a"), RepairKey(bucket: "a", key: "z"), RepairKey(bucket: "a", key: "é"),
            RepairKey(bucket: "a", key: "Z"),
        ]
        #expect(
            keys.sorted() == [
                RepairKey(bucket: "a", key: "Z"), RepairKey(bucket: "a", key: "z"), RepairKey(bucket: "a", key: "é"),
                RepairKey(bucket: "b", key: "a"),
            ])
    }

    /// A replica's store: key → object, with its tree kept current on every write.
    struct Replica {
        var id: NodeID
        var objects: [RepairKey: StoredObject] = [:]
        var tree = TictacTree()

        mutating func store(_ key: RepairKey, _ object: StoredObject) {
            let old = objects[key].map(VersionDigest.of)
            objects[key] = object
            tree.update(bucket: key.bucket, key: key.key, oldDigest: old, newDigest: VersionDigest.of(object))
        }

        mutating func put(_ key: RepairKey, _ text: String, wall: UInt64) {
            var object = objects[key] ?? StoredObject()
            object.put(Array(text.utf8), context: object.join, replica: id, stamp: aeStamp(wall, node: id.low))
            store(key, object)
        }

        mutating func delete(_ key: RepairKey, wall: UInt64) {
            var object = objects[key] ?? StoredObject()
            object.delete(context: object.join, replica: id, stamp: aeStamp(wall, node: id.low))
            store(key, object)
        }

        mutating func receive(_ key: RepairKey, _ object: StoredObject) {
            store(key, (objects[key] ?? StoredObject()).merged(object))
        }

        /// Key → digest for the keys in `segments`, as a repair session lists them.
        func digests(in segments: Set<Int>) -> [RepairKey: UInt64] {
            objects.filter { segments.contains(tree.segment(of: $0.key.bucket, $0.key.key)) }
                .mapValues(VersionDigest.of)
        }
    }

    @Test func exchangeThenRepairConvergesTwoReplicas() throws {
        for seed in UInt64(1)...30 {
            var random = AERandom(seed: seed)
            var a = Replica(id: aeNode(1))
            var b = Replica(id: aeNode(2))
            for i in 0..<300 {
                a.put(key("k\(i)"), "v\(i)", wall: 1)
            }
            b.objects = a.objects
            b.tree = a.tree
            // Divergence: writes one replica missed, concurrent writes, deletes.
            for step in 0..<Int(seed % 25) {
                let target = key("k\(random.below(350))")
                switch random.below(4) {
                case 0: a.put(target, "a\(step)", wall: 10 + UInt64(step))
                case 1: b.put(target, "b\(step)", wall: 10 + UInt64(step))
                case 2: a.delete(target, wall: 10 + UInt64(step))
                default:
                    a.put(target, "ca\(step)", wall: 10 + UInt64(step))
                    b.put(target, "cb\(step)", wall: 10 + UInt64(step))
                }
            }
            a.put(key("both"), "from a", wall: 100)
            b.put(key("both"), "from b", wall: 100)
            b.put(key("gone"), "doomed", wall: 100)
            a.receive(key("gone"), b.objects[key("gone")]!)
            a.delete(key("gone"), wall: 101)
            let run = try aeRunExchange(ours: a.tree, theirs: b.tree)
            guard case .finished(let segments) = run.initiator else {
                Issue.record("seed \(seed): \(String(describing: run.initiator))")
                continue
            }
            let differing = Set(segments)
            let plan = RepairPlan(ours: a.digests(in: differing), theirs: b.digests(in: differing))
            let sent = plan.keysToSend.map { ($0, a.objects[$0]!) }
            let fetched = plan.keysToFetch.map { ($0, b.objects[$0]!) }
            for (key, object) in sent { b.receive(key, object) }
            for (key, object) in fetched { a.receive(key, object) }
            #expect(a.objects == b.objects, "seed \(seed)")
            #expect(a.tree == b.tree, "seed \(seed)")
            // Concurrent writes survive as siblings on both sides; a delete one side
            // missed stays deleted.
            #expect(a.objects[key("both")]!.visibleValues.count == 2)
            #expect(b.objects[key("gone")]!.isDeleted)
            let again = try aeRunExchange(ours: a.tree, theirs: b.tree)
            #expect(again.initiator == .finished(differingSegments: []))
            #expect(again.sent.count == 2)
        }
    }
}
