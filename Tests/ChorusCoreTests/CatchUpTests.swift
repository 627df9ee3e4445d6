import Testing

@testable import ChorusCore

@Suite struct CatchUpTests {
    let a = aeNode(1)
    let b = aeNode(2)
    let c = aeNode(3)

    /// The ids `watch` reports, and whether each was a first sighting.
    func ids(_ returned: [ReturnWatch.Returned]) -> [NodeID] { returned.map(\.id) }

    @Test func onARestartedNodeEveryMemberSeenAliveForTheFirstTimeReturns() {
        var watch = ReturnWatch(restarted: true)
        #expect(ids(watch.observe([a: .alive, b: .alive, c: .suspect])) == [a, b])
        #expect(ids(watch.observe([a: .alive, b: .alive, c: .suspect])) == [])
        // A member first seen suspect returns once it is seen alive.
        #expect(ids(watch.observe([a: .alive, b: .alive, c: .alive])) == [c])
    }

    @Test func onANewNodeOnlyAMemberThatWasGoneReturns() {
        var watch = ReturnWatch(restarted: false)
        #expect(ids(watch.observe([a: .alive, b: .stopped, c: .suspect])) == [])
        #expect(ids(watch.observe([a: .alive, b: .alive, c: .alive])) == [b])
    }

    @Test func aMemberReturnsAfterDeadStoppedOrLeftButNotAfterSuspicion() {
        for restarted in [true, false] {
            var watch = ReturnWatch(restarted: restarted)
            _ = watch.observe([a: .alive, b: .alive, c: .alive])
            #expect(ids(watch.observe([a: .suspect, b: .dead, c: .stopped])) == [])
            #expect(ids(watch.observe([a: .alive, b: .alive, c: .alive])) == [b, c])
            #expect(ids(watch.observe([a: .alive, b: .left, c: .alive])) == [])
            #expect(ids(watch.observe([a: .alive, b: .alive, c: .alive])) == [b])
        }
    }

    @Test func aReapedMemberSeenAgainIsASighting() {
        var restarted = ReturnWatch(restarted: true)
        _ = restarted.observe([a: .alive, b: .alive])
        #expect(ids(restarted.observe([a: .alive])) == [])
        #expect(ids(restarted.observe([a: .alive, b: .alive])) == [b])
        // Forgotten when reaped: on a new node its return is a first sighting.
        var fresh = ReturnWatch(restarted: false)
        _ = fresh.observe([a: .alive, b: .dead])
        #expect(ids(fresh.observe([a: .alive])) == [])
        #expect(ids(fresh.observe([a: .alive, b: .alive])) == [])
    }

    @Test func firstSightingsAndReturnsAreToldApart() {
        var watch = ReturnWatch(restarted: true)
        _ = watch.observe([a: .alive, b: .dead])
        #expect(watch.observe([a: .alive, b: .alive]) == [ReturnWatch.Returned(id: b, firstSight: false)])
        var other = ReturnWatch(restarted: true)
        #expect(other.observe([c: .alive]) == [ReturnWatch.Returned(id: c, firstSight: true)])
    }

    @Test func aRestartedNodeGoesInOrderAndCoReplicasInARandomOrder() {
        var random = SeededRandom(seed: 3)
        let shared = [9, 2, 5, 7, 1, 3, 8]
        #expect(CatchUpPlan.ordered(shared, firstSight: true, using: &random) == shared.sorted())
        let shuffled = CatchUpPlan.ordered(shared, firstSight: false, using: &random)
        #expect(shuffled.sorted() == shared.sorted())
        #expect(shuffled != shared.sorted())
    }

    @Test func gainedPartitionsAreThoseNewSinceTheLastLook() {
        var homes = HomeWatch(firstLookGained: false)
        #expect(homes.observe([1, 2, 3]) == [])
        #expect(homes.observe([1, 2, 3]) == [])
        #expect(homes.observe([3, 9, 1, 4]) == [4, 9])
        #expect(homes.observe([]) == [])
        #expect(homes.observe([2]) == [2])
    }

    @Test func afterAJoinWithoutFetchWhatItHoldsAtTheFirstLookWasGained() {
        var homes = HomeWatch(firstLookGained: true)
        #expect(homes.observe([5, 1]) == [1, 5])
        #expect(homes.observe([5, 1]) == [])
        var joining = HomeWatch(firstLookGained: true)
        #expect(joining.observe([]) == [])
        #expect(joining.observe([7, 3]) == [3, 7])
    }

    @Test func aCatchUpCoversExactlyThePartitionsBothNodesReplicate() {
        var random = SeededRandom(seed: 7)
        let nodes = (0..<5).map { _ in NodeID(using: &random) }
        let table = PlacementTable(partitioner: Partitioner(partitionCount: 64), ring: nodes)
        let local = nodes[0]
        let peer = nodes[3]
        let shared = CatchUpPlan.partitions(shared: peer, with: local, in: table, n: 3)
        let expected = (0..<64).filter {
            let home = table.homeReplicas(of: $0, n: 3)
            return home.contains(local) && home.contains(peer)
        }
        #expect(shared == expected)
        #expect(!shared.isEmpty)
        // A node that is no home replica of anything (not in the ring) shares nothing.
        let outsider = NodeID(using: &random)
        #expect(CatchUpPlan.partitions(shared: outsider, with: local, in: table, n: 3).isEmpty)
    }
}
