import Testing

@testable import ChorusCore

@Suite struct AntiEntropyExchangeTests {
    func trees(seed: UInt64, k: Int, shape: TictacShape = .standard, keys: Int = 200) -> (
        TictacTree, TictacTree, [Int]
    ) {
        var random = AERandom(seed: seed)
        let base = aeRandomKeys(keys, random: &random)
        let (changed, expected) = aeDiverge(base, k: k, shape: shape, random: &random)
        return (aeTree(base, shape: shape), aeTree(changed, shape: shape), expected.sorted())
    }

    @Test func exchangeEndsWithExactlyTheDifferingSegmentsOnBothSides() throws {
        for seed in UInt64(1)...200 {
            let (ours, theirs, expected) = trees(seed: seed, k: Int(seed % 21))
            let run = try aeRunExchange(ours: ours, theirs: theirs)
            #expect(run.initiator == .finished(differingSegments: expected), "seed \(seed)")
            #expect(run.responder == .finished(differingSegments: expected), "seed \(seed)")
            #expect(run.sizes.allSatisfy { $0 <= ExchangeCodec.maxMessageBytes })
        }
    }

    @Test func matchingRootsEndTheExchangeInOneRoundTrip() throws {
        let (ours, _, _) = trees(seed: 1, k: 0)
        let run = try aeRunExchange(ours: ours, theirs: ours)
        #expect(run.initiator == .finished(differingSegments: []))
        #expect(run.responder == .finished(differingSegments: []))
        #expect(run.sent.count == 2)
        guard case .summary = run.sent[0].body, case .summaryReply(let differing, let branches) = run.sent[1].body
        else {
            Issue.record("expected summary and its reply, got \(run.sent)")
            return
        }
        #expect(differing.isEmpty && branches.isEmpty)
        #expect(run.sizes.reduce(0, +) < 1024)
    }

    @Test func fewDifferencesResolveInOneRoundTripAndTheOutcome() throws {
        // Up to four differing branches ride in the summary reply.
        let (ours, theirs, expected) = trees(seed: 3, k: 2)
        let run = try aeRunExchange(ours: ours, theirs: theirs)
        #expect(run.initiator == .finished(differingSegments: expected))
        #expect(run.sent.map { ExchangeCodec.type(of: $0.body) } == [.summary, .summaryReply, .segments])
    }

    @Test func survivesEveryMessageDroppedOnce() throws {
        for seed in UInt64(1)...40 {
            let (ours, theirs, expected) = trees(seed: seed, k: Int(seed % 21))
            var seen = Set<ExchangeMessage>()
            let run = try aeRunExchange(ours: ours, theirs: theirs) { message, _ in seen.insert(message).inserted }
            #expect(run.initiator == .finished(differingSegments: expected), "seed \(seed)")
            #expect(run.dropped > 0)
            #expect(run.initiatorState!.retransmissions > 0)
            // The unacknowledged outcome was lost too: the responder gives up waiting.
            if expected.isEmpty {
                #expect(run.responder == .finished(differingSegments: []))
            } else {
                #expect(run.responder == .failed(.timedOut))
            }
        }
    }

    @Test func survivesTheLossOfAnySingleDatagram() throws {
        let (ours, theirs, expected) = trees(seed: 9, k: 12)
        let clean = try aeRunExchange(ours: ours, theirs: theirs)
        for lost in 0..<clean.sent.count {
            let run = try aeRunExchange(ours: ours, theirs: theirs) { _, sequence in sequence == lost }
            #expect(run.initiator == .finished(differingSegments: expected), "lost #\(lost)")
            let lostOutcome = run.sent[lost].body == .segments(differing: expected)
            #expect(run.responder == (lostOutcome ? .failed(.timedOut) : .finished(differingSegments: expected)))
        }
    }

    @Test func duplicatedDatagramsAreHarmless() throws {
        for seed in UInt64(1)...20 {
            let (ours, theirs, expected) = trees(seed: seed, k: Int(seed))
            let run = try aeRunExchange(ours: ours, theirs: theirs, duplicate: true)
            #expect(run.initiator == .finished(differingSegments: expected))
            #expect(run.responder == .finished(differingSegments: expected))
        }
    }

    @Test func givesUpAfterMaxRetries() throws {
        let settings = TreeExchange.Settings(timeout: .milliseconds(200), maxRetries: 3)
        let (ours, theirs, _) = trees(seed: 2, k: 5)
        let run = try aeRunExchange(ours: ours, theirs: theirs, settings: settings) { _, _ in true }
        #expect(run.initiator == .failed(.timedOut))
        #expect(run.sent.count == 4)
        #expect(run.sent.allSatisfy { ExchangeCodec.type(of: $0.body) == .summary })
        #expect(run.now == MonotonicTime.zero + .milliseconds(800))
        #expect(run.initiatorState!.nextDeadline == nil)
    }

    @Test func givesUpWhenRepliesStopMidway() throws {
        let settings = TreeExchange.Settings(timeout: .milliseconds(100), maxRetries: 2)
        let (ours, theirs, _) = trees(seed: 4, k: 20)
        // Every branch reply is lost: the summary round works, the descent cannot.
        let run = try aeRunExchange(ours: ours, theirs: theirs, settings: settings) { message, _ in
            if case .branchReply = message.body { return true }
            return false
        }
        #expect(run.initiator == .failed(.timedOut))
        #expect(run.responder == .failed(.timedOut))
    }

    @Test func responderGivesUpWhenTheInitiatorFallsSilent() {
        let settings = TreeExchange.Settings(timeout: .seconds(1), maxRetries: 2)
        var responder = TreeExchange(responding: 1, partition: 0, tree: TictacTree(), settings: settings)
        let start = MonotonicTime(nanoseconds: 5_000)
        #expect(responder.start(now: start).isEmpty)
        #expect(responder.tick(now: start + .seconds(3)).isEmpty)
        #expect(responder.nextDeadline == start + .seconds(4))
        #expect(responder.tick(now: start + .seconds(4)) == [.failed(.timedOut)])
        #expect(responder.tick(now: start + .seconds(9)).isEmpty)
    }

    @Test func differentShapesAreRefused() throws {
        var random = AERandom(seed: 1)
        let keys = aeRandomKeys(50, random: &random)
        let run = try aeRunExchange(ours: aeTree(keys), theirs: aeTree(keys, shape: TictacShape(segmentCount: 4096)!))
        #expect(run.initiator == .failed(.refused(.shapeMismatch)))
        #expect(run.responder == .failed(.refused(.shapeMismatch)))
    }

    @Test func deepAndFlatTreesExchangeToo() throws {
        for segmentCount in [2, 16, 64, 4096, 8192] {
            let shape = TictacShape(segmentCount: segmentCount)!
            for seed in UInt64(1)...20 {
                let (ours, theirs, expected) = trees(seed: seed, k: Int(seed), shape: shape)
                var seen = Set<ExchangeMessage>()
                let clean = try aeRunExchange(ours: ours, theirs: theirs)
                let lossy = try aeRunExchange(ours: ours, theirs: theirs) { message, _ in seen.insert(message).inserted
                }
                #expect(clean.initiator == .finished(differingSegments: expected), "\(shape) seed \(seed)")
                #expect(clean.responder == .finished(differingSegments: expected), "\(shape) seed \(seed)")
                #expect(lossy.initiator == .finished(differingSegments: expected), "\(shape) seed \(seed)")
                #expect(clean.sizes.allSatisfy { $0 <= ExchangeCodec.maxMessageBytes })
            }
        }
    }

    @Test func everySegmentDifferingStillFitsTheDatagramsAndTheWindow() throws {
        var random = AERandom(seed: 21)
        let ours = aeTree(aeRandomKeys(20_000, random: &random))
        let theirs = aeTree(aeRandomKeys(20_000, random: &random))
        let settings = TreeExchange.Settings(maxOutstandingRequests: 3)
        let run = try aeRunExchange(ours: ours, theirs: theirs, settings: settings)
        #expect(run.initiator == .finished(differingSegments: Array(0..<1024)))
        #expect(run.responder == .finished(differingSegments: Array(0..<1024)))
        #expect(run.sizes.max()! <= ExchangeCodec.maxMessageBytes)
        // 32 branches: 4 in the summary reply, 28 in requests of 4.
        #expect(run.sent.filter { ExchangeCodec.type(of: $0.body) == .branchRequest }.count == 7)
    }

    @Test func answersAreAPureFunctionOfRequestAndTree() {
        let (_, theirs, _) = trees(seed: 8, k: 0)
        let request = ExchangeMessage(
            exchangeID: 3, partition: 1, body: .branchRequest(request: 9, level: 1, indices: [4, 0, 31]))
        let first = TreeExchange.answer(request, from: theirs)
        #expect(first == TreeExchange.answer(request, from: theirs))
        #expect(
            first?.body
                == .branchReply(
                    request: 9, level: 1,
                    branches: [4, 0, 31].map { BranchHashes(index: $0, children: theirs.branch($0)) }))
        for bad: ExchangeMessage.Body in [
            .branchRequest(request: 1, level: 2, indices: [0]),
            .branchRequest(request: 1, level: 1, indices: [32]),
            .branchRequest(request: 1, level: 1, indices: []),
            .branchRequest(request: 1, level: 1, indices: [0, 1, 2, 3, 4]),
            .summary(segmentCount: 1024, root: 0, topLevel: [1, 2]),
        ] {
            let answer = TreeExchange.answer(ExchangeMessage(exchangeID: 3, partition: 1, body: bad), from: theirs)
            #expect(answer?.body == .refused(.badRequest))
        }
        #expect(
            TreeExchange.answer(
                ExchangeMessage(exchangeID: 3, partition: 1, body: .segments(differing: [])), from: theirs) == nil)
    }

    @Test func repliesThatDoNotFitTheRequestFailTheExchange() {
        let (ours, theirs, _) = trees(seed: 6, k: 20)
        var initiator = TreeExchange(initiating: 5, partition: 2, tree: ours)
        let now = MonotonicTime.zero
        guard case .send(let summary) = initiator.start(now: now).first,
            let reply = TreeExchange.answer(summary, from: theirs),
            case .summaryReply(let differing, _) = reply.body
        else {
            Issue.record("no summary round")
            return
        }
        // A reply for another exchange or partition is ignored.
        var other = reply
        other.exchangeID = 6
        #expect(initiator.received(other, now: now).isEmpty)
        other = reply
        other.partition = 3
        #expect(initiator.received(other, now: now).isEmpty)
        // Branches of the wrong size end it.
        let bad = ExchangeMessage(
            exchangeID: 5, partition: 2,
            body: .summaryReply(differing: differing, branches: [BranchHashes(index: differing[0], children: [1])]))
        #expect(initiator.received(bad, now: now) == [.failed(.invalidMessage("branch of the wrong size"))])
        #expect(initiator.isDone)
        #expect(initiator.received(reply, now: now).isEmpty)
    }
}
