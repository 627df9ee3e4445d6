import Testing

@testable import ChorusCore

/// Ring changes: pending replicas, the grown write quorum, and what a joining or
/// leaving node must move (`RingPlacement`, `ReplicaPlan`).
@Suite struct RingTransitionTests {
    let partitioner = Partitioner(partitionCount: 256)

    func members(_ count: UInt64, phases: [UInt64: RingPhase] = [:], left: Set<UInt64> = []) -> [Member] {
        (1...count).map { n in
            var tags: [String: String] = [:]
            if let phase = phases[n] { tags[RingPhase.tag] = phase.rawValue }
            return swimMember(n, status: left.contains(n) ? .left : .alive, tags: tags)
        }
    }

    @Test func aSettledRingHasNoPendingReplicasAndTheUsualQuorum() {
        let ring = RingPlacement(partitioner: partitioner, members: members(5))
        #expect(!ring.isChanging)
        for partition in 0..<partitioner.partitionCount {
            let plan = ring.plan(partition: partition, n: 3)
            #expect(plan.home == ring.current.homeReplicas(of: partition, n: 3))
            #expect(plan.pending.isEmpty && plan.displaced == 0)
            #expect(plan.writeRequired(2) == 2)
            #expect(Set(plan.home + plan.fallbacks).count == 5)
        }
    }

    @Test func aJoiningNodeIsPendingWhereItWillBeHomeAndServesNoReads() {
        let ring = RingPlacement(partitioner: partitioner, members: members(6, phases: [6: .joining]))
        let settled = RingPlacement(partitioner: partitioner, members: members(6))
        #expect(ring.isChanging)
        #expect(!ring.current.nodes.contains(swimID(6)))
        let pending = ring.partitions(pendingOn: swimID(6), n: 3)
        #expect(pending == settled.current.partitions(homedOn: swimID(6), n: 3))
        #expect(!pending.isEmpty)
        for partition in 0..<partitioner.partitionCount {
            let plan = ring.plan(partition: partition, n: 3)
            #expect(!plan.home.contains(swimID(6)))
            if pending.contains(partition) {
                #expect(plan.pending == [swimID(6)])
                #expect(plan.displaced == 1)
                #expect(plan.writeRequired(2) == 3)
                #expect(!plan.fallbacks.contains(swimID(6)))
            } else {
                #expect(plan.pending.isEmpty && plan.writeRequired(2) == 2)
            }
        }
    }

    @Test func aLeavingNodeStaysHomeUntilItLeftAndItsSuccessorsArePending() {
        let ring = RingPlacement(partitioner: partitioner, members: members(5, phases: [3: .leaving]))
        let after = RingPlacement(partitioner: partitioner, members: members(5, left: [3]))
        #expect(ring.current == RingPlacement(partitioner: partitioner, members: members(5)).current)
        #expect(ring.target == after.current)
        for partition in ring.current.partitions(homedOn: swimID(3), n: 3) {
            let plan = ring.plan(partition: partition, n: 3)
            let future = after.current.homeReplicas(of: partition, n: 3)
            #expect(plan.home.contains(swimID(3)))
            #expect(plan.pending.count == 1 && future.contains(plan.pending[0]))
            #expect(Set(plan.home + plan.pending).isSuperset(of: future))
            #expect(plan.writeRequired(2) == 3)
        }
    }

    /// The quorum argument: any `writeRequired(w)` of the write targets include at
    /// least w of the future home replicas and w of the current ones.
    @Test func theGrownQuorumIntersectsBothRings() {
        let changes: [[UInt64: RingPhase]] = [
            [6: .joining], [2: .leaving], [6: .joining, 7: .joining], [1: .leaving, 7: .joining],
        ]
        for phases in changes {
            let ring = RingPlacement(partitioner: partitioner, members: members(7, phases: phases))
            let target = ring.target!
            for partition in 0..<64 {
                for (replication, quorum) in [(3, 2), (3, 1), (5, 3), (2, 2)] {
                    let plan = ring.plan(partition: partition, n: replication)
                    let required = plan.writeRequired(quorum)
                    let future = Set(target.homeReplicas(of: partition, n: replication))
                    let now = Set(plan.home)
                    // Worst case: the acknowledgements come from the nodes outside each set first.
                    let outsideFuture = plan.writeTargets.filter { !future.contains($0) }.count
                    let outsideNow = plan.writeTargets.filter { !now.contains($0) }.count
                    #expect(required - outsideFuture >= quorum)
                    #expect(required - outsideNow >= min(quorum, now.count))
                    #expect(required <= plan.writeTargets.count)
                }
            }
        }
    }

    @Test func aRingSmallerThanNOnlyGainsReplicas() {
        let ring = RingPlacement(partitioner: partitioner, members: members(3, phases: [3: .joining]))
        for partition in 0..<partitioner.partitionCount {
            let plan = ring.plan(partition: partition, n: 3)
            #expect(plan.home.count == 2 && plan.pending == [swimID(3)] && plan.displaced == 0)
            #expect(plan.writeRequired(2) == 2)
        }
    }

    @Test func departedMembersAreInNeitherRing() {
        let ring = RingPlacement(partitioner: partitioner, members: members(4, left: [4]))
        #expect(!ring.isChanging)
        #expect(ring.current.nodes == [swimID(1), swimID(2), swimID(3)])
    }

    @Test func partitionFramesRoundTripAndRefuseHostileCounts() throws {
        let messages: [ClusterMessage] = [
            .partitionPage(partition: 0, after: nil, limit: 500),
            .partitionPage(partition: 1023, after: RepairKey(bucket: "b", key: "nœud-😀"), limit: 10_000),
            .partitionPageReply(
                entries: [
                    PartitionEntry(bucket: "default", key: "a", object: [1, 2, 3]),
                    PartitionEntry(bucket: "b", key: "k", object: []),
                ], complete: true, error: nil),
            .partitionPageReply(entries: [], complete: false, error: "no such partition"),
        ]
        for message in messages {
            #expect(try ClusterCodec.decodeMessage(ClusterCodec.encode(message)) == message)
        }
        #expect(ClusterCodec.FrameType.partitionPage.rawValue == 18)
        #expect(ClusterCodec.FrameType.partitionPageReply.rawValue == 19)
        var bytes: [UInt8] = [ClusterCodec.FrameType.partitionPageReply.rawValue, 0x00, 0x00, 0x01, 0x00]
        #expect(throws: WireError.truncated) { try ClusterCodec.decodeMessage(bytes) }
        bytes = [ClusterCodec.FrameType.partitionPageReply.rawValue, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: WireError.tooLarge) { try ClusterCodec.decodeMessage(bytes) }
    }
}

/// `chorus remove`: only a member that no longer answers can be removed.
@Suite struct SWIMRemovalTests {
    @Test func aDeadMemberIsRemovedAndGossipedAsLeft() throws {
        var instance = swimInstance(count: 3)
        _ = instance.receive(
            [.update(swimUpdate(3, status: .dead, from: 2))], from: swimID(2), at: swimAddress(2), now: at(1))
        #expect(instance.status(of: 3) == .dead)
        let effects = try instance.remove(swimID(3), now: at(2))
        #expect(instance.status(of: 3) == .left)
        #expect(
            effects.contains {
                if case .memberChanged(let change) = $0 {
                    return change.member.id == swimID(3) && change.current == .left
                }
                return false
            })
        // Should it come back, a newer life makes it a member again.
        _ = instance.mergeFullState([swimUpdate(3, incarnation: 1, from: 3)], now: at(3))
        #expect(instance.status(of: 3) == .alive)
    }

    @Test func runningMembersAndThisNodeCannotBeRemoved() {
        var instance = swimInstance(count: 3)
        #expect(throws: SWIMInstance.RemovalError.stillRunning(.alive)) { try instance.remove(swimID(2), now: at(1)) }
        #expect(throws: SWIMInstance.RemovalError.isThisNode) { try instance.remove(swimID(1), now: at(1)) }
        #expect(throws: SWIMInstance.RemovalError.unknown) { try instance.remove(swimID(9), now: at(1)) }
        #expect(instance.status(of: 2) == .alive)
    }
}
