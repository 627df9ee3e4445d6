import Testing

@testable import ChorusCore

@Suite struct SWIMDisseminationTests {
    @Test func retransmitLimitGrowsWithLogOfClusterSize() {
        #expect(DisseminationQueue.retransmitLimit(retransmitMult: 4, members: 1) == 4)
        #expect(DisseminationQueue.retransmitLimit(retransmitMult: 4, members: 9) == 4)
        #expect(DisseminationQueue.retransmitLimit(retransmitMult: 4, members: 10) == 8)
        #expect(DisseminationQueue.retransmitLimit(retransmitMult: 4, members: 99) == 8)
        #expect(DisseminationQueue.retransmitLimit(retransmitMult: 4, members: 100) == 12)
    }

    @Test func disseminationStopsAfterRetransmitLimit() {
        var queue = DisseminationQueue()
        queue.enqueue(swimUpdate(2, from: 1), maxSize: 1000)
        for _ in 0..<4 {
            #expect(queue.take(budget: 1000, limit: 4) == [swimUpdate(2, from: 1)])
        }
        #expect(queue.take(budget: 1000, limit: 4).isEmpty)
        #expect(queue.isEmpty)

        // Through the instance: n = 3 gives 4 × ceil(log10 4) = 4 datagrams per update.
        var node = swimInstance(count: 3)
        advance(&node, to: at(10))
        #expect(node.queue.isEmpty)
        _ = node.receive(
            [.update(swimUpdate(9, from: 2))], from: swimID(2), at: swimAddress(2), now: at(10))
        // n = 4 now: still 4 transmits.
        let effects = advance(&node, to: at(20))
        #expect(effects.updates.filter { $0.id == swimID(9) }.count == 4)
    }

    @Test func newerUpdateReplacesQueuedOneAndFewestSentGoFirst() {
        var queue = DisseminationQueue()
        queue.enqueue(swimUpdate(2, from: 1), maxSize: 1000)
        _ = queue.take(budget: 1000, limit: 10)
        queue.enqueue(swimUpdate(3, from: 1), maxSize: 1000)
        let oneSize = SWIMCodec.encodedSize(of: .update(swimUpdate(3, from: 1)))
        // Room for one: the never-sent update about node 3 goes first.
        #expect(queue.take(budget: oneSize, limit: 10) == [swimUpdate(3, from: 1)])
        queue.enqueue(swimUpdate(2, incarnation: 1, status: .suspect, from: 4), maxSize: 1000)
        #expect(queue.count == 2)
        #expect(queue.transmits(about: swimID(2)) == 0)
        #expect(queue.queued(about: swimID(2))?.status == .suspect)
        // An update too large for any datagram is left to push-pull.
        queue.enqueue(swimUpdate(5, from: 1), maxSize: 10)
        #expect(queue.queued(about: swimID(5)) == nil)
    }

    @Test func packedDatagramsStayUnderPayloadLimit() {
        var settings = SWIMSettings()
        settings.maxPayloadBytes = 500
        var node = SWIMInstance(myself: swimMember(1), settings: settings, seed: 3, now: .zero)
        let bulky = (0..<3).reduce(into: [String: String]()) {
            $0["key\($1)"] = String(repeating: "v", count: 12)
        }
        let peers = (2...120).map { swimUpdate(UInt64($0), from: UInt64($0), tags: bulky) }
        _ = node.mergeFullState(peers, now: .zero)
        // One update too big for any datagram: never sent over UDP, never breaks the limit.
        let huge = (0..<64).reduce(into: [String: String]()) {
            $0["k\($1)"] = String(repeating: "x", count: 200)
        }
        _ = node.receive(
            [.update(swimUpdate(200, from: 200, tags: huge))], from: swimID(200), at: swimAddress(200),
            now: .zero)
        _ = node.receive(
            [.update(swimUpdate(201, status: .dead, from: 2, tags: huge))], from: swimID(2),
            at: swimAddress(2), now: .zero)
        let effects = advance(&node, to: at(30), silent: [7, 8])
        var packedSeveral = false
        for send in effects.sends {
            let size = SWIMCodec.encode(
                SWIMEnvelope(
                    sender: swimID(1), bootID: .max, sequence: .max, sentAt: .max, messages: send.messages)
            ).count
            #expect(size <= settings.maxPayloadBytes)
            #expect(size == SWIMCodec.encodedSize(ofEnvelopeWith: send.messages))
            if send.messages.count > 3 { packedSeveral = true }
        }
        #expect(packedSeveral)
        #expect(!effects.updates.contains { $0.id == swimID(200) })
        // The dead one travels without its tags.
        #expect(effects.updates.contains { $0.id == swimID(201) && $0.tags.isEmpty })
    }

    @Test func gossipGoesOnlyToLiveOrRecentlyDeadMembers() {
        var node = swimInstance(count: 4)
        _ = node.receive(
            [
                .update(swimUpdate(3, status: .left, from: 3)),
                .update(swimUpdate(4, status: .dead, from: 2)),
            ],
            from: swimID(2), at: swimAddress(2), now: at(0))
        let early = advance(&node, to: at(5), silent: [3, 4])
        #expect(early.sends.contains { $0.to == swimAddress(4) })
        #expect(!early.sends.contains { $0.to == swimAddress(3) })
        advance(&node, to: at(31), silent: [3, 4])
        _ = node.receive(
            [.update(swimUpdate(9, from: 2))], from: swimID(2), at: swimAddress(2), now: at(31))
        let late = advance(&node, to: at(40), silent: [3, 4])
        #expect(!late.sends.contains { $0.to == swimAddress(4) || $0.to == swimAddress(3) })
    }
}
