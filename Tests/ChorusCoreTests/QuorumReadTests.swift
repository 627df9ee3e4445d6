import Testing

@testable import ChorusCore

@Suite struct QuorumReadTests {
    let nodes = (1...5).map { NodeID(high: 0, low: UInt64($0)) }
    var home: [NodeID] { Array(nodes[0..<3]) }
    var fallbacks: [NodeID] { Array(nodes[3...]) }
    let writer = NodeID(high: 9, low: 9)

    func object(_ value: String, after: StoredObject? = nil, counter: Int = 0) -> StoredObject {
        var object = after ?? StoredObject()
        let stamp = LWWStamp(timestamp: HLCTimestamp(wallNanos: UInt64(counter)), node: writer)
        object.put(Array(value.utf8), context: after?.join ?? VersionVector(), replica: writer, stamp: stamp)
        return object
    }

    @Test func unreachableHomeReplicasAreReadFromTheirFallbacks() {
        let targets = QuorumRead.targets(
            home: home, fallbacks: fallbacks, reachable: Set(nodes).subtracting([nodes[1]]))
        #expect(targets.map(\.node) == [nodes[0], nodes[3], nodes[2]])
        #expect(targets[1].standsInFor == nodes[1])
    }

    @Test func answersAfterRRepliesWithTheMergeAndRepairsStaleCopies() {
        let old = object("v1", counter: 1)
        let new = object("v2", after: old, counter: 2)
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: fallbacks, reachable: Set(nodes)), n: 3, required: 2,
            sloppy: true, lww: false)
        #expect(read.start() == nil)
        #expect(read.answered(nodes[0], new) == nil)
        #expect(read.answered(nodes[1], old) == .respond(new))
        #expect(read.answered(nodes[2], nil) == nil)
        #expect(Set(read.repairTargets) == [nodes[1], nodes[2]])
    }

    @Test func aQuorumThatCannotBeMetFailsOnceEveryReplyIsIn() {
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: [], reachable: Set(nodes)), n: 3, required: 3,
            sloppy: true, lww: false)
        #expect(read.failed(nodes[0], reason: "down") == nil)
        #expect(read.answered(nodes[1], nil) == nil)
        #expect(read.answered(nodes[2], nil) == .fail(answered: 2, failures: ["down"]))
    }

    @Test func strictReadsDoNotCountFallbacks() {
        let targets = QuorumRead.targets(
            home: home, fallbacks: fallbacks, reachable: Set(nodes).subtracting([nodes[1], nodes[2]]))
        var read = QuorumRead(targets: targets, n: 3, required: 2, sloppy: false, lww: false)
        #expect(
            read.answered(nodes[0], nil)
                == .fail(answered: 1, failures: ["2 home replicas down (a strict quorum does not count fallbacks)"]))
    }

    @Test func tooFewTargetsFailAtOnce() {
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: [], reachable: [nodes[0]]), n: 3, required: 2,
            sloppy: true, lww: false)
        #expect(read.start() == nil)
        #expect(
            read.answered(nodes[0], nil)
                == .fail(answered: 1, failures: ["2 home replicas down with no fallback to stand in"]))
    }

    // MARK: Asking only what the quorum needs

    @Test func aQuorumReadAsksItsOwnCopyFirstAndOnlyAsManyAsRNeeds() {
        let local = nodes[2]
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: fallbacks, reachable: Set(nodes)), n: 3, required: 2,
            sloppy: true, lww: false, preferred: local)
        #expect(read.start() == nil)
        #expect(read.firstTargets(askAll: false).map(\.node) == [local, nodes[0]])
        #expect(read.firstTargets(askAll: false).isEmpty, "asked once")
        #expect(read.answered(local, nil) == nil)
        #expect(read.awaiting == 1)
        #expect(read.answered(nodes[0], nil) == .respond(nil))
        #expect(read.awaiting == 0)
        #expect(read.nextTarget() == nil, "no spare once decided")
    }

    @Test func askingAllAsksEveryTarget() {
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: fallbacks, reachable: Set(nodes)), n: 3, required: 2,
            sloppy: true, lww: false, preferred: nodes[1])
        #expect(read.firstTargets(askAll: true).map(\.node) == [nodes[1], nodes[0], nodes[2]])
        #expect(read.nextTarget() == nil)
    }

    @Test func aFailedTargetIsReplacedByASpareAndTheQuorumWaitsForIt() {
        let new = object("v1", counter: 1)
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: fallbacks, reachable: Set(nodes)), n: 3, required: 2,
            sloppy: true, lww: false, preferred: nodes[0])
        #expect(read.firstTargets(askAll: false).map(\.node) == [nodes[0], nodes[1]])
        #expect(read.answered(nodes[0], new) == nil)
        // Not a failure of the read: a spare is left.
        #expect(read.failed(nodes[1], reason: "node2: timed out") == nil)
        #expect(read.nextTarget()?.node == nodes[2])
        #expect(read.nextTarget() == nil, "every target asked")
        #expect(read.answered(nodes[2], nil) == .respond(new))
        #expect(read.repairTargets == [nodes[2]], "read repair among the replicas that answered")
    }

    @Test func aQuorumReadFailsOnlyOnceNoSpareIsLeft() {
        var read = QuorumRead(
            targets: QuorumRead.targets(home: home, fallbacks: [], reachable: Set(nodes)), n: 3, required: 2,
            sloppy: true, lww: false, preferred: nodes[0])
        _ = read.firstTargets(askAll: false)
        #expect(read.failed(nodes[0], reason: "disk") == nil)
        #expect(read.nextTarget()?.node == nodes[2])
        #expect(read.answered(nodes[1], nil) == nil)
        #expect(read.failed(nodes[2], reason: "down") == .fail(answered: 1, failures: ["disk", "down"]))
    }

    @Test func aStrictQuorumReadSkipsStandInsWhenCountingWhomToAsk() {
        // nodes[1] is down; nodes[3] stands in for it but does not count in a strict read.
        let targets = QuorumRead.targets(
            home: home, fallbacks: fallbacks, reachable: Set(nodes).subtracting([nodes[1]]))
        var strict = QuorumRead(targets: targets, n: 3, required: 2, sloppy: false, lww: false, preferred: nodes[0])
        #expect(strict.firstTargets(askAll: false).map(\.node) == [nodes[0], nodes[2]])
        var sloppy = QuorumRead(targets: targets, n: 3, required: 3, sloppy: true, lww: false, preferred: nodes[3])
        #expect(sloppy.firstTargets(askAll: false).map(\.node) == [nodes[3], nodes[0], nodes[2]])
    }
}
