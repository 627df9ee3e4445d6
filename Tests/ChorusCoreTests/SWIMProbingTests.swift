import Testing

@testable import ChorusCore

@Suite struct SWIMProbingTests {
    /// Ticks `node` until it starts a probe round; returns the ping and its time.
    func nextPing(_ node: inout SWIMInstance) -> (
        sequence: UInt64, target: NodeID, at: MonotonicTime
    )? {
        for _ in 0..<100 {
            let now = node.nextDeadline
            if let ping = node.tick(now: now).pings.first { return (ping.sequence, ping.target, now) }
        }
        return nil
    }

    @Test func localHealthRisesOnMissedAcksAndNacks() throws {
        var node = swimInstance(count: 5)
        let ping = try #require(nextPing(&node))
        #expect(node.localHealth == 0)

        // No ack within the probe timeout: ping requests to the three other members, and TCP.
        let timeout = node.tick(now: ping.at + .milliseconds(500))
        let requests = timeout.sends.filter {
            if case .pingRequest(ping.sequence, ping.target, _, true) = $0.messages.first {
                true
            } else {
                false
            }
        }
        #expect(requests.count == 3)
        #expect(timeout.tcpProbes.map(\.target) == [ping.target])
        let relays = [1, 2, 3, 4, 5].map { swimID(UInt64($0)) }.filter {
            $0 != ping.target && $0 != swimID(1)
        }
        // One relay nacks; two stay silent.
        _ = node.receive(
            [.nack(sequence: ping.sequence)], from: relays[0], at: swimAddress(relays[0].low),
            now: ping.at + .milliseconds(900))
        _ = node.tcpProbeAnswered(
            sequence: ping.sequence, target: ping.target, reachable: false,
            now: ping.at + .milliseconds(900))

        let end = node.tick(now: ping.at + .seconds(1))
        #expect(node.member(ping.target)?.status == .suspect)
        #expect(end.changes.contains { $0.member.id == ping.target && $0.current == .suspect })
        // +1 for the failed probe, +1 for each of the two missed nacks.
        #expect(node.localHealth == 3)

        // The next round starts at once, stretched by (health + 1); an ack brings health down.
        let next = try #require(end.pings.first)
        let second = (sequence: next.sequence, target: next.target, at: ping.at + .seconds(1))
        #expect(node.probe?.end == second.at + .seconds(4))
        #expect(node.probe?.ackDeadline == second.at + .seconds(2))
        _ = node.receive(
            [.ack(sequence: second.sequence)], from: second.target, at: swimAddress(second.target.low),
            now: second.at + .milliseconds(3))
        #expect(node.localHealth == 2)
        #expect(
            node.probeStats(for: second.target)
                == ProbeStats(lastRoundTrip: .milliseconds(3), reachableOverUDP: true))
    }

    @Test func relayedAckCountsAsSuccess() throws {
        var node = swimInstance(count: 4)
        let ping = try #require(nextPing(&node))
        _ = node.tick(now: ping.at + .milliseconds(500))
        let relay = [2, 3, 4].map { swimID(UInt64($0)) }.first { $0 != ping.target }!
        _ = node.receive(
            [.ack(sequence: ping.sequence)], from: relay, at: swimAddress(relay.low),
            now: ping.at + .milliseconds(700))
        _ = node.tick(now: ping.at + .seconds(1))
        #expect(node.member(ping.target)?.status == .alive)
        #expect(node.localHealth == 0)
    }

    @Test func probeAnsweredOnlyOverTCPIsNotSuspected() throws {
        var node = swimInstance(count: 3)
        let ping = try #require(nextPing(&node))
        let timeout = node.tick(now: ping.at + .milliseconds(500))
        #expect(timeout.tcpProbes.first?.sequence == ping.sequence)
        _ = node.tcpProbeAnswered(
            sequence: ping.sequence, target: ping.target, reachable: true,
            now: ping.at + .milliseconds(600))
        _ = node.tick(now: ping.at + .seconds(1))
        #expect(node.member(ping.target)?.status == .alive)
        #expect(node.probeStats(for: ping.target)?.reachableOverUDP == false)
    }

    @Test func pingIsAckedOnlyWhenAddressedToMe() {
        var node = swimInstance(count: 3)
        let effects = node.receive(
            [.ping(sequence: 5, target: swimID(1))], from: swimID(2), at: swimAddress(2), now: at(1))
        #expect(effects.sends.count == 1)
        #expect(effects.sends.first?.to == swimAddress(2))
        #expect(effects.sends.first?.messages.first == .ack(sequence: 5))
        // Piggybacked gossip rides along.
        #expect(effects.updates.count >= 1)
        #expect(
            node.receive(
                [.ping(sequence: 6, target: swimID(9))], from: swimID(2), at: swimAddress(2), now: at(1)
            ).isEmpty)
    }

    @Test func pingRequestIsRelayedAndNackedOnTimeout() throws {
        var node = swimInstance(count: 3)
        let requester = swimAddress(3)
        // Answered: the target's ack is relayed under the requester's sequence.
        let relayed = node.receive(
            [
                .pingRequest(
                    sequence: 77, target: swimID(2), targetAddress: swimAddress(2), wantsNack: true)
            ],
            from: swimID(3), at: requester, now: at(1))
        let ping = try #require(relayed.pings.first)
        #expect(ping.target == swimID(2))
        #expect(ping.to == swimAddress(2))
        #expect(ping.sequence != 77)
        let answer = node.receive(
            [.ack(sequence: ping.sequence)], from: swimID(2), at: swimAddress(2), now: at(1.1))
        #expect(answer.sends.first?.to == requester)
        #expect(answer.sends.first?.messages.first == .ack(sequence: 77))

        // Unanswered: a nack after probeTimeout × 0.8, and nothing else.
        let second = node.receive(
            [
                .pingRequest(
                    sequence: 78, target: swimID(2), targetAddress: swimAddress(2), wantsNack: true)
            ],
            from: swimID(3), at: requester, now: at(2))
        let secondPing = try #require(second.pings.first)
        #expect(node.nextDeadline <= at(2.4))
        #expect(!node.tick(now: at(2.399)).sends.contains { $0.messages.contains(.nack(sequence: 78)) })
        let nack = node.tick(now: at(2.4))
        #expect(nack.sends.contains { $0.to == requester && $0.messages.first == .nack(sequence: 78) })
        // A late ack is not relayed.
        let late = node.receive(
            [.ack(sequence: secondPing.sequence)], from: swimID(2), at: swimAddress(2), now: at(2.5))
        #expect(!late.sends.contains { $0.messages.contains(.ack(sequence: 78)) })

        // Without wantsNack, silence.
        _ = node.receive(
            [
                .pingRequest(
                    sequence: 79, target: swimID(2), targetAddress: swimAddress(2), wantsNack: false)
            ],
            from: swimID(3), at: requester, now: at(3))
        #expect(!node.tick(now: at(4)).sends.contains { $0.messages.contains(.nack(sequence: 79)) })
    }

    @Test func probeRoundRobinVisitsEveryMemberBeforeRepeating() {
        var node = swimInstance(count: 6)
        var targets: [NodeID] = []
        let effects = advance(&node, to: at(10.5))
        targets = effects.pings.map(\.target)
        #expect(targets.count >= 10)
        #expect(Set(targets[0..<5]).count == 5)
        #expect(Set(targets[5..<10]).count == 5)
        #expect(!targets.contains(swimID(1)))
    }

    @Test func nextDeadlineCoversEveryTimer() {
        var node = swimInstance(count: 3)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3),
            now: at(0))
        // Ticking only at deadlines still fires the suspicion on time (24 s for n = 3).
        var now = MonotonicTime.zero
        while node.status(of: 2) == .suspect, now < at(100) {
            now = node.nextDeadline
            let effects = node.tick(now: now)
            // Even the suspect acks (an ack is no refutation), so only the timer ends it.
            for ping in effects.pings {
                _ = node.receive([.ack(sequence: ping.sequence)], from: ping.target, at: ping.to, now: now)
            }
        }
        #expect(node.status(of: 2) == .dead)
        #expect(now == at(24))
    }

    @Test func localHealthIsClampedAndScalesTimeouts() {
        var health = LocalHealth(maximum: 8)
        health.apply(-3)
        #expect(health.score == 0)
        #expect(health.scale(.milliseconds(500)) == .milliseconds(500))
        health.apply(20)
        #expect(health.score == 7)
        #expect(health.scale(.seconds(1)) == .seconds(8))
    }

    @Test func suspectTargetIsRemindedWithItsPing() throws {
        var node = swimInstance(count: 2)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 2))], from: swimID(2), at: swimAddress(2), now: at(0))
        var datagram: [SWIMMessage] = []
        for _ in 0..<20 where datagram.isEmpty {
            let effects = node.tick(now: node.nextDeadline)
            datagram =
                effects.sends.first { $0.messages.contains { if case .ping = $0 { true } else { false } } }?.messages
                ?? []
        }
        let reminders = datagram.filter { if case .update(let update) = $0 { update.id == swimID(2) } else { false } }
        #expect(reminders == [.update(swimUpdate(2, status: .suspect, from: 1))])
    }
}
