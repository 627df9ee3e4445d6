import Testing

@testable import ChorusCore

@Suite struct SWIMSuspicionTests {
    @Test func suspectNodeIsDeclaredDeadAfterTimeout() {
        // n = 3: floor 4 × max(1, log10 3) × 1 s = 4 s; K = min(4 − 2, 3 − 2) = 1; ceiling 24 s.
        var node = swimInstance(count: 3)
        let start = at(1)
        advance(&node, to: start)
        let effects = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3),
            now: start)
        #expect(effects.changes.map(\.current) == [.suspect])
        // Lifeguard: the suspect hears of it directly.
        #expect(
            effects.sends.contains {
                $0.to == swimAddress(2)
                    && $0.messages.contains(.update(swimUpdate(2, status: .suspect, from: 3)))
            })

        advance(&node, to: start + .milliseconds(23_999))
        #expect(node.status(of: 2) == .suspect)
        let expiry = advance(&node, to: start + .seconds(24))
        #expect(node.status(of: 2) == .dead)
        #expect(
            expiry.changes.contains {
                $0.member.id == swimID(2) && $0.previous == .suspect && $0.current == .dead
            })
    }

    @Test func independentConfirmationsShortenSuspicion() {
        // n = 6: floor 4 s, ceiling 24 s, K = 2.
        var baseline = swimInstance(count: 6)
        var confirmed = swimInstance(count: 6)
        let start = at(1)
        advance(&baseline, to: start)
        advance(&confirmed, to: start)
        let suspicion = swimUpdate(2, status: .suspect, from: 3)
        _ = baseline.receive([.update(suspicion)], from: swimID(3), at: swimAddress(3), now: start)
        _ = confirmed.receive([.update(suspicion)], from: swimID(3), at: swimAddress(3), now: start)

        // The suspecter again, and a repeat, are no confirmation; node 4 is one.
        _ = confirmed.receive([.update(suspicion)], from: swimID(3), at: swimAddress(3), now: start)
        #expect(confirmed.suspicions[swimID(2)]?.confirmations == 0)
        _ = confirmed.receive(
            [.update(swimUpdate(2, status: .suspect, from: 4))], from: swimID(4), at: swimAddress(4),
            now: start)
        _ = confirmed.receive(
            [.update(swimUpdate(2, status: .suspect, from: 4))], from: swimID(4), at: swimAddress(4),
            now: start)
        #expect(confirmed.suspicions[swimID(2)]?.confirmations == 1)
        // One of K = 2: 24 − log 2 / log 3 × 20 ≈ 11.38 s.
        advance(&confirmed, to: start + .seconds(11.3))
        advance(&baseline, to: start + .seconds(11.3))
        #expect(confirmed.status(of: 2) == .suspect)
        advance(&confirmed, to: start + .seconds(11.4))
        advance(&baseline, to: start + .seconds(11.4))
        #expect(confirmed.status(of: 2) == .dead)
        #expect(baseline.status(of: 2) == .suspect)
    }

    @Test func allExpectedConfirmationsBringTheTimeoutToItsFloor() {
        var suspicion = Suspicion(
            from: swimID(3), start: at(10), expected: 2, minimum: .seconds(4), maximum: .seconds(24))
        #expect(suspicion.deadline == at(34))
        let first = suspicion.confirm(from: swimID(4))
        let repeated = suspicion.confirm(from: swimID(4))
        let second = suspicion.confirm(from: swimID(5))
        #expect(first && !repeated && second)
        #expect(suspicion.deadline == at(14))
        // Beyond K nothing more is counted (or re-gossiped).
        let beyond = suspicion.confirm(from: swimID(6))
        #expect(!beyond)
        #expect(
            Suspicion(
                from: swimID(3), start: .zero, expected: 0, minimum: .seconds(4), maximum: .seconds(24)
            ).deadline == at(4))
    }

    @Test func suspicionTimeoutScalesWithClusterSize() {
        #expect(
            Suspicion.minimumTimeout(suspicionMult: 4, members: 3, probeInterval: .seconds(1))
                == .seconds(4))
        #expect(
            Suspicion.minimumTimeout(suspicionMult: 4, members: 100, probeInterval: .seconds(1))
                == .seconds(8))
        #expect(
            Suspicion.minimumTimeout(suspicionMult: 4, members: 1000, probeInterval: .seconds(1))
                == .seconds(12))
        #expect(Suspicion.expectedConfirmations(suspicionMult: 4, members: 100) == 2)
        #expect(Suspicion.expectedConfirmations(suspicionMult: 4, members: 3) == 1)
        #expect(Suspicion.expectedConfirmations(suspicionMult: 4, members: 1) == 0)
        #expect(abs(Suspicion.naturalLog(10) - 2.302_585_092_994_046) < 1e-12)
        #expect(abs(Suspicion.naturalLog(0.5) + 0.693_147_180_559_945_3) < 1e-12)
    }

    @Test func refutationByHigherIncarnationRestoresAlive() {
        var node = swimInstance(count: 3)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3),
            now: at(1))
        #expect(node.status(of: 2) == .suspect)
        let effects = node.receive(
            [.update(swimUpdate(2, incarnation: 1, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(2))
        #expect(effects.changes.map(\.current) == [.alive])
        #expect(node.member(swimID(2))?.incarnation == 1)
        #expect(node.suspicions[swimID(2)] == nil)
        // The suspicion no longer fires.
        advance(&node, to: at(60))
        #expect(node.status(of: 2) == .alive)
    }

    @Test func selfRefutesSuspicionWithHigherIncarnation() {
        var node = swimInstance(count: 3)
        let effects = node.receive(
            [.update(swimUpdate(1, status: .suspect, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(1))
        #expect(node.myself.incarnation == 1)
        #expect(node.myself.status == .alive)
        #expect(node.localHealth == 1)
        #expect(effects.changes.map(\.member.incarnation) == [1])
        #expect(
            node.queue.queued(about: swimID(1)) == swimMember(1, incarnation: 1).update(from: swimID(1)))

        // Dead at the new incarnation is refuted too; anything older is stale.
        _ = node.receive(
            [.update(swimUpdate(1, incarnation: 1, status: .dead, from: 2))], from: swimID(2),
            at: swimAddress(2), now: at(2))
        #expect(node.myself.incarnation == 2)
        let stale = node.receive(
            [.update(swimUpdate(1, incarnation: 1, status: .suspect, from: 3))], from: swimID(3),
            at: swimAddress(3), now: at(3))
        #expect(stale.isEmpty)
        #expect(node.myself.incarnation == 2)

        // An alive from a previous life with a higher incarnation is overtaken too.
        _ = node.receive(
            [.update(swimUpdate(1, incarnation: 9, from: 3))], from: swimID(3), at: swimAddress(3),
            now: at(4))
        #expect(node.myself.incarnation == 10)
        // The refutation reaches the peers by gossip.
        let gossip = advance(&node, to: at(5))
        #expect(gossip.updates.contains(swimMember(1, incarnation: 10).update(from: swimID(1))))
    }

    @Test func departedNodeDoesNotRefute() {
        var node = swimInstance(count: 3)
        _ = node.depart(.stopped, now: at(1))
        let effects = node.receive(
            [.update(swimUpdate(1, status: .dead, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(2))
        #expect(effects.isEmpty)
        #expect(node.myself.status == .stopped)
        #expect(node.myself.incarnation == 0)
    }
}
