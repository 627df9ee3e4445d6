import Testing

@testable import ChorusCore

@Suite struct QuorumTests {
    @Test func namedQuorumsResolveAgainstN() throws {
        #expect(try Quorum.one.required(outOf: 3) == 1)
        #expect(try Quorum.quorum.required(outOf: 3) == 2)
        #expect(try Quorum.quorum.required(outOf: 5) == 3)
        #expect(try Quorum.quorum.required(outOf: 4) == 3)
        #expect(try Quorum.all.required(outOf: 3) == 3)
        #expect(try Quorum.count(2).required(outOf: 3) == 2)
    }

    @Test func impossibleQuorumsAreRefused() {
        #expect(throws: QuorumError.tooSmall(0)) { try Quorum.count(0).required(outOf: 3) }
        #expect(throws: QuorumError.moreThanReplicas(7, n: 3)) { try Quorum.count(7).required(outOf: 3) }
        #expect(Quorum(parsing: "banana") == nil)
        #expect(Quorum(parsing: "QUORUM") == .quorum)
        #expect(Quorum(parsing: "2") == .count(2))
    }

    @Test func trackerMeetsQuorumAfterEnoughDistinctAcks() {
        let replicas = [NodeID(high: 0, low: 1), NodeID(high: 0, low: 2), NodeID(high: 0, low: 3)]
        var tracker = QuorumTracker(required: 2, replicas: replicas)
        #expect(tracker.acknowledge(replicas[0]) == .pending)
        #expect(tracker.acknowledge(replicas[0]) == .pending)
        #expect(tracker.acknowledge(NodeID(high: 9, low: 9)) == .pending)
        #expect(tracker.acknowledge(replicas[1]) == .met)
    }

    @Test func trackerGivesUpWhenTooManyFail() {
        let replicas = [NodeID(high: 0, low: 1), NodeID(high: 0, low: 2), NodeID(high: 0, low: 3)]
        var tracker = QuorumTracker(required: 2, replicas: replicas)
        #expect(tracker.fail(replicas[0]) == .pending)
        #expect(tracker.acknowledge(replicas[1]) == .pending)
        #expect(tracker.fail(replicas[2]) == .unreachable)
        #expect(tracker.acknowledged.count == 1)
    }

    @Test func defaultBucketExistsWithoutConfiguration() {
        let table = BucketTable()
        #expect(table.properties(of: "default") == BucketProperties())
        #expect(table.properties(of: "anything") == BucketProperties())
        let other = BucketTable(buckets: ["sessions": BucketProperties(n: 2, conflicts: .lww)])
        #expect(other.digest != table.digest)
        #expect(BucketTable().digest == table.digest)
    }
}
