import Testing

@testable import ChorusCore

@Suite struct TictacTreeTests {
    @Test func sameKeysInsertedInDifferentOrdersGiveEqualTrees() {
        for seed in UInt64(1)...20 {
            var random = AERandom(seed: seed)
            let keys = aeRandomKeys(500, random: &random)
            var order = keys.keys.sorted()
            let sorted = aeTree(keys, order: order)
            order.shuffle(using: &random.base)
            let shuffled = aeTree(keys, order: order)
            #expect(sorted == shuffled)
            #expect(sorted.root == shuffled.root)
            #expect(sorted.root != 0)
        }
    }

    @Test func oneChangedKeyChangesExactlyOneSegmentAndItsPathToTheRoot() {
        var random = AERandom(seed: 7)
        let keys = aeRandomKeys(300, random: &random)
        let before = aeTree(keys)
        for key in keys.keys.sorted().prefix(25) {
            var after = before
            after.update(bucket: key.bucket, key: key.key, oldDigest: keys[key]!, newDigest: keys[key]! &+ 1)
            let segment = after.segment(of: key.bucket, key.key)
            #expect(before.differingSegments(comparedWith: after) == [segment])
            // Exactly one node per level changed: the segment's ancestors.
            var index = segment
            for level in stride(from: before.shape.leafLevel, through: 0, by: -1) {
                let changed = before.level(level).indices.filter { before.level(level)[$0] != after.level(level)[$0] }
                #expect(changed == [index])
                if level > 0 { index /= before.shape.childrenPerNode(atLevel: level - 1) }
            }
        }
    }

    @Test func descentFindsExactlyTheDifferingSegments() {
        for seed in UInt64(1)...200 {
            var random = AERandom(seed: seed)
            let k = Int(seed % 21)
            let keys = aeRandomKeys(200, random: &random)
            let (changed, expected) = aeDiverge(keys, k: k, random: &random)
            let ours = aeTree(keys)
            let theirs = aeTree(changed)
            #expect(ours.differingSegments(comparedWith: theirs) == expected.sorted(), "seed \(seed)")
            #expect(theirs.differingSegments(comparedWith: ours) == expected.sorted(), "seed \(seed)")
            #expect((ours == theirs) == expected.isEmpty)
        }
    }

    @Test func descentWorksForEveryShape() {
        for segmentCount in [2, 16, 32, 64, 2048, 4096, 8192] {
            let shape = TictacShape(segmentCount: segmentCount)!
            for seed in UInt64(1)...10 {
                var random = AERandom(seed: seed)
                let keys = aeRandomKeys(150, random: &random)
                let (changed, expected) = aeDiverge(keys, k: Int(seed), shape: shape, random: &random)
                let ours = aeTree(keys, shape: shape)
                let theirs = aeTree(changed, shape: shape)
                #expect(ours.differingSegments(comparedWith: theirs) == expected.sorted(), "\(shape) seed \(seed)")
            }
        }
    }

    @Test func everyInnerNodeIsTheXorOfItsChildren() {
        for shape in [TictacShape.standard, TictacShape(segmentCount: 4096)!, TictacShape(segmentCount: 16)!] {
            var random = AERandom(seed: 3)
            let tree = aeTree(aeRandomKeys(400, random: &random), shape: shape)
            for level in 0..<shape.leafLevel {
                for index in 0..<shape.levelWidths[level] {
                    #expect(tree.level(level)[index] == tree.children(level: level, index: index).reduce(0, ^))
                }
            }
            #expect(tree.root == tree.topLevel.reduce(0, ^))
            #expect(tree.root == tree.segments.reduce(0, ^))
        }
    }

    @Test func xorMergeOfSameShapedTreesIsTheTreeOfTheUnion() {
        var random = AERandom(seed: 11)
        let all = aeRandomKeys(600, random: &random)
        let sorted = all.keys.sorted()
        let left = AEKeySet(uniqueKeysWithValues: sorted.prefix(250).map { ($0, all[$0]!) })
        let right = AEKeySet(uniqueKeysWithValues: sorted.dropFirst(250).map { ($0, all[$0]!) })
        let merged = aeTree(left).merged(with: aeTree(right))
        #expect(merged == aeTree(all))
        #expect(aeTree(right).merged(with: aeTree(left)) == merged)
        // A tree merged with itself cancels out.
        #expect(merged.merged(with: merged) == TictacTree())
        var inPlace = aeTree(left)
        inPlace.merge(aeTree(right))
        #expect(inPlace == merged)
    }

    @Test func removeRestoresThePreviousHashes() {
        var random = AERandom(seed: 5)
        let keys = aeRandomKeys(100, random: &random)
        let before = aeTree(keys)
        var tree = before
        tree.insert(bucket: "extra", key: "k", digest: 42)
        #expect(tree != before)
        tree.remove(bucket: "extra", key: "k", digest: 42)
        #expect(tree == before)
        // Removing every key leaves the empty tree.
        for (key, digest) in keys { tree.remove(bucket: key.bucket, key: key.key, digest: digest) }
        #expect(tree == TictacTree())
        #expect(tree.root == 0)
    }

    @Test func updateIsRemoveOfTheOldVersionThenInsertOfTheNew() {
        var viaUpdate = TictacTree()
        viaUpdate.insert(bucket: "b", key: "k", digest: 1)
        viaUpdate.update(bucket: "b", key: "k", oldDigest: 1, newDigest: 2)
        var viaRemove = TictacTree()
        viaRemove.insert(bucket: "b", key: "k", digest: 1)
        viaRemove.remove(bucket: "b", key: "k", digest: 1)
        viaRemove.insert(bucket: "b", key: "k", digest: 2)
        #expect(viaUpdate == viaRemove)
        var fresh = TictacTree()
        fresh.update(bucket: "b", key: "k", oldDigest: nil, newDigest: 2)
        #expect(fresh == viaUpdate)
        // An update to the same digest changes nothing.
        fresh.update(bucket: "b", key: "k", oldDigest: 2, newDigest: 2)
        #expect(fresh == viaUpdate)
    }

    @Test func shapesFillLevelsFromTheTopWithAtMost32ChildrenPerNode() {
        #expect(TictacShape.standard.levelWidths == [1, 32, 1024])
        #expect(TictacShape(segmentCount: 4096)?.levelWidths == [1, 32, 1024, 4096])
        #expect(TictacShape(segmentCount: 64)?.levelWidths == [1, 32, 64])
        #expect(TictacShape(segmentCount: 16)?.levelWidths == [1, 16])
        #expect(TictacShape(segmentCount: 8192)?.levelWidths == [1, 32, 1024, 8192])
        for invalid in [0, 1, 3, 1000, 16384, -4] {
            #expect(TictacShape(segmentCount: invalid) == nil)
        }
        let shape = TictacShape.standard
        #expect(shape.childrenPerNode(atLevel: 0) == 32)
        #expect(shape.childrenPerNode(atLevel: 1) == 32)
        #expect(TictacTree().branch(3).count == 32)
    }

    @Test func segmentsSpreadEvenlyAndIndependentlyOfPartitions() {
        let partitioner = Partitioner(partitionCount: 1024)
        var counts = Array(repeating: 0, count: 1024)
        var inPartitionZero = Set<Int>()
        for i in 0..<102_400 {
            let key = "key-\(i)"
            let segment = TictacTree.segment(bucket: "b", key: key, shape: .standard)
            counts[segment] += 1
            if partitioner.partition(bucket: "b", key: key) == 0 { inPartitionZero.insert(segment) }
        }
        #expect(counts.min()! > 50 && counts.max()! < 160)
        // The ~100 keys of one partition land in many segments, not in one.
        #expect(inPartitionZero.count > 50)
    }

    @Test func segmentAndElementHashesArePinnedAcrossReleases() {
        // The hashes are the protocol between replicas: if these change, nodes of
        // different releases see every segment as different.
        #expect(TictacTree.segment(bucket: "default", key: "k", shape: .standard) == 826)
        #expect(TictacTree.elementHash(bucket: "default", key: "k", digest: 1) == 0xBBC0_188A_A33A_9F10)
        #expect(
            TictacTree.elementHash(bucket: "ab", key: "c", digest: 1)
                != TictacTree.elementHash(bucket: "a", key: "bc", digest: 1))
    }
}
