import Testing

@testable import ChorusCore

@Suite struct SloppyWriteTests {
    let nodes = (1...6).map { NodeID(high: 0, low: UInt64($0)) }
    var me: NodeID { nodes[0] }
    var home: [NodeID] { Array(nodes[0..<3]) }
    var fallbacks: [NodeID] { Array(nodes[3...]) }

    func finish(_ effects: [SloppyWrite.Effect]) -> SloppyWrite.Outcome? {
        for case .finish(let outcome) in effects { return outcome }
        return nil
    }

    func sends(_ effects: [SloppyWrite.Effect]) -> [SloppyWrite.Effect] {
        effects.filter { if case .send = $0 { true } else { false } }
    }

    @Test func allHomeReplicasUpGetTheWriteWithoutHints() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: fallbacks, required: 2, sloppy: true, reachable: Set(nodes),
            effects: &effects)
        #expect(sends(effects) == [.send(to: nodes[1], hintFor: nil), .send(to: nodes[2], hintFor: nil)])
        #expect(finish(effects) == nil)
        let outcome = finish(write.acknowledged(by: nodes[2]))
        #expect(outcome?.met == true && outcome?.homeAcknowledgements == 2)
    }

    @Test func downHomeReplicasAreReplacedByFallbacksWithHints() {
        var effects: [SloppyWrite.Effect] = []
        let reachable = Set(nodes).subtracting([nodes[1], nodes[2]])
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: fallbacks, required: 2, sloppy: true, reachable: reachable,
            effects: &effects)
        #expect(sends(effects) == [.send(to: nodes[3], hintFor: nodes[1]), .send(to: nodes[4], hintFor: nodes[2])])
        let outcome = finish(write.acknowledged(by: nodes[4]))
        #expect(outcome?.met == true)
        #expect(outcome?.hintedAcknowledgements == 1 && outcome?.homeAcknowledgements == 1)
    }

    @Test func strictQuorumDoesNotCountHints() {
        var effects: [SloppyWrite.Effect] = []
        let reachable = Set(nodes).subtracting([nodes[1], nodes[2]])
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: fallbacks, required: 2, sloppy: false, reachable: reachable,
            effects: &effects)
        _ = write.acknowledged(by: nodes[3])
        let outcome = finish(write.acknowledged(by: nodes[4]))
        #expect(outcome?.met == false)
        #expect(outcome?.homeAcknowledgements == 1 && outcome?.hintedAcknowledgements == 2)
        #expect(outcome?.failures.map(\.node) == [nodes[1], nodes[2]])
    }

    @Test func aReplicaThatTimesOutIsReplacedButStillCountsIfItAnswers() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: fallbacks, required: 3, sloppy: false, reachable: Set(nodes),
            effects: &effects)
        #expect(sends(write.replicaTimedOut(nodes[1])) == [.send(to: nodes[3], hintFor: nodes[1])])
        #expect(finish(write.acknowledged(by: nodes[2])) == nil)
        let outcome = finish(write.acknowledged(by: nodes[1]))
        #expect(outcome?.met == true && outcome?.homeAcknowledgements == 3)
    }

    @Test func aFailedFallbackIsReplacedByTheNext() {
        var effects: [SloppyWrite.Effect] = []
        let reachable = Set(nodes).subtracting([nodes[1]])
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: fallbacks, required: 3, sloppy: true, reachable: reachable,
            effects: &effects)
        #expect(sends(write.failed(nodes[3], reason: "hint store full")) == [.send(to: nodes[4], hintFor: nodes[1])])
    }

    @Test func failureIsReportedOnceEveryReplicaHasAnswered() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: [], required: 3, sloppy: true, reachable: Set(nodes),
            effects: &effects)
        #expect(finish(write.failed(nodes[1], reason: "refused")) == nil)
        let outcome = finish(write.acknowledged(by: nodes[2]))
        #expect(outcome?.met == false && outcome?.counted == 2)
        #expect(write.requestTimedOut().isEmpty)
    }

    @Test func requestTimeoutReportsWhatIsAcknowledged() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: me, home: home, fallbacks: [], required: 3, sloppy: true, reachable: Set(nodes),
            effects: &effects)
        let outcome = finish(write.requestTimedOut())
        #expect(outcome?.met == false && outcome?.counted == 1 && outcome?.failures.count == 2)
    }
}

@Suite struct SloppyWritePipelineTests {
    let nodes = (1...5).map { NodeID(high: 0, low: UInt64($0)) }

    @Test func theCoordinatorsOwnCommitCountsOnceDurable() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: nodes[0], home: Array(nodes[0..<3]), fallbacks: Array(nodes[3...]), required: 2,
            sloppy: true, reachable: Set(nodes), coordinatorStored: false, effects: &effects)
        #expect(effects.contains(.send(to: nodes[1], hintFor: nil)))
        #expect(!effects.contains(.send(to: nodes[0], hintFor: nil)))
        #expect(write.acknowledged(by: nodes[1]).isEmpty)
        let finished = write.coordinatorStored()
        #expect(finished.contains { if case .finish(let outcome) = $0 { outcome.met } else { false } })
    }

    @Test func aFailedLocalCommitIsNotReplacedAndOthersCanStillMeetTheQuorum() {
        var effects: [SloppyWrite.Effect] = []
        var write = SloppyWrite(
            coordinator: nodes[0], home: Array(nodes[0..<3]), fallbacks: Array(nodes[3...]), required: 2,
            sloppy: true, reachable: Set(nodes), coordinatorStored: false, effects: &effects)
        let afterFailure = write.failed(nodes[0], reason: "disk full")
        #expect(!afterFailure.contains { if case .send = $0 { true } else { false } })
        _ = write.acknowledged(by: nodes[1])
        let finished = write.acknowledged(by: nodes[2])
        #expect(finished.contains { if case .finish(let outcome) = $0 { outcome.met } else { false } })
    }
}
