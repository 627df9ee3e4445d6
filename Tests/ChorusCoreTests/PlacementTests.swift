import Testing

@testable import ChorusCore

@Suite struct PlacementTests {
    func nodes(_ count: Int, seed: UInt64 = 1) -> [NodeID] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in NodeID(using: &random) }
    }

    @Test func partitionOfAKeyIsStableAndInRange() {
        let partitioner = Partitioner(partitionCount: 1024)
        let partition = partitioner.partition(bucket: "default", key: "user:42")
        #expect((0..<1024).contains(partition))
        #expect(partitioner.partition(bucket: "default", key: "user:42") == partition)
        // Pinned: the hash is the protocol; a change here moves every key.
        #expect(StableHash.hash(Array("chorus".utf8)) == StableHash.hash(Array("chorus".utf8)))
        #expect(partitioner.partition(bucket: "ab", key: "c") != partitioner.partition(bucket: "a", key: "bc"))
    }

    @Test func hashIsPinnedAcrossReleases() {
        // If this fails, placement changed: every existing cluster would move every key.
        #expect(StableHash.hash(Array("".utf8)) == StableHash.mix(0xCBF2_9CE4_8422_2325))
        #expect(Partitioner(partitionCount: 1024).partition(bucket: "default", key: "k") == 760)
    }

    @Test func keysSpreadEvenlyOverPartitions() {
        let partitioner = Partitioner(partitionCount: 64)
        var counts = Array(repeating: 0, count: 64)
        for i in 0..<64_000 { counts[partitioner.partition(bucket: "b", key: "key-\(i)")] += 1 }
        #expect(counts.min()! > 800 && counts.max()! < 1200)
    }

    @Test func everyNodeComputesTheSamePreferenceLists() {
        let ring = nodes(5)
        let a = PlacementTable(partitioner: Partitioner(), ring: ring)
        let b = PlacementTable(partitioner: Partitioner(), ring: ring.reversed())
        #expect(a == b)
        for partition in [0, 1, 511, 1023] {
            let home = a.homeReplicas(of: partition, n: 3)
            #expect(home.count == 3 && Set(home).count == 3)
            #expect(a.ranking(of: partition).count == 5)
        }
    }

    @Test func sharesAreEvenAcrossNodes() {
        let table = PlacementTable(partitioner: Partitioner(), ring: nodes(5))
        let shares = table.shares(n: 3)
        for (_, share) in shares {
            // 1024 partitions x 3 replicas / 5 nodes = 614.4 each; primaries 204.8.
            #expect(abs(share.replica - 614) < 70)
            #expect(abs(share.primary - 205) < 45)
        }
        #expect(shares.values.map(\.replica).reduce(0, +) == 3 * 1024)
    }

    @Test func addingASixthNodeMovesAboutOneSixthOfPartitions() {
        let five = nodes(5)
        let sixth = nodes(1, seed: 99)[0]
        let before = PlacementTable(partitioner: Partitioner(), ring: five)
        let after = PlacementTable(partitioner: Partitioner(), ring: five + [sixth])
        var movedPrimaries = 0
        var changedReplicaSets = 0
        for partition in 0..<1024 {
            if before.homeReplicas(of: partition, n: 1) != after.homeReplicas(of: partition, n: 1) {
                movedPrimaries += 1
                // Only the new node takes partitions; nobody else trades.
                #expect(after.homeReplicas(of: partition, n: 1) == [sixth])
            }
            let old = Set(before.homeReplicas(of: partition, n: 3))
            let new = Set(after.homeReplicas(of: partition, n: 3))
            if old != new {
                changedReplicaSets += 1
                #expect(new.subtracting(old) == [sixth])
            }
        }
        // 1/6 of 1024 = 171 primaries; each replica set gains the new node with p = 3/6.
        #expect(abs(movedPrimaries - 171) < 45)
        #expect(abs(changedReplicaSets - 512) < 70)
    }

    @Test func aRemovedNodesPartitionsGoToTheNextInRanking() {
        let ring = nodes(5)
        let before = PlacementTable(partitioner: Partitioner(), ring: ring)
        let after = PlacementTable(partitioner: Partitioner(), ring: ring.dropLast())
        for partition in 0..<1024 {
            let expected = before.ranking(of: partition).filter { $0 != ring.last! }
            #expect(after.ranking(of: partition) == expected)
        }
    }

    @Test func partitionsHomedOnANodeMatchTheTable() {
        let ring = nodes(4)
        let table = PlacementTable(partitioner: Partitioner(partitionCount: 128), ring: ring)
        let homed = table.partitions(homedOn: ring[0], n: 2)
        for partition in 0..<128 {
            #expect(homed.contains(partition) == table.homeReplicas(of: partition, n: 2).contains(ring[0]))
        }
    }
}
