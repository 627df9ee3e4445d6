import Testing

@testable import ChorusCore

/// `SWIMSettings.lifeguard = false`: plain SWIM, for comparison in the simulator.
@Suite struct SWIMLifeguardOffTests {
    var plain: SWIMSettings {
        var settings = SWIMSettings()
        settings.lifeguard = false
        return settings
    }

    func nextPing(_ node: inout SWIMInstance) -> (sequence: UInt64, target: NodeID, at: MonotonicTime)? {
        for _ in 0..<100 {
            let now = node.nextDeadline
            if let ping = node.tick(now: now).pings.first { return (ping.sequence, ping.target, now) }
        }
        return nil
    }

    @Test func failedProbesLeaveLocalHealthAtZeroAndAskForNoNacks() throws {
        var node = swimInstance(count: 5, settings: plain)
        let ping = try #require(nextPing(&node))
        let timeout = node.tick(now: ping.at + .milliseconds(500))
        let requests = timeout.sends.compactMap { send -> Bool? in
            if case .pingRequest(ping.sequence, ping.target, _, let wantsNack) = send.messages.first {
                wantsNack
            } else {
                nil
            }
        }
        #expect(requests == [false, false, false])
        _ = node.tick(now: ping.at + .seconds(1))
        #expect(node.member(ping.target)?.status == .suspect)
        #expect(node.localHealth == 0)
        // The next round is not stretched: it starts one probe interval later.
        let next = try #require(nextPing(&node))
        #expect(next.at == ping.at + .seconds(2))
    }

    @Test func suspicionTimeoutIsTheFixedFloorAndTheSuspectIsNotToldDirectly() {
        // n = 6: floor 4 × max(1, log10 6) × 1 s = 4 s, whatever the confirmations.
        var node = swimInstance(count: 6, settings: plain)
        let start = at(1)
        advance(&node, to: start)
        let effects = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: start)
        #expect(effects.changes.map(\.current) == [.suspect])
        #expect(!effects.sends.contains { $0.to == swimAddress(2) })
        advance(&node, to: start + .milliseconds(3_999))
        #expect(node.status(of: 2) == .suspect)
        advance(&node, to: start + .seconds(4))
        #expect(node.status(of: 2) == .dead)
    }

    @Test func confirmationsAreNotRegossipedWithoutLifeguard() {
        var node = swimInstance(count: 6, settings: plain)
        let start = at(1)
        advance(&node, to: start)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: start)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 4))], from: swimID(4), at: swimAddress(4), now: start)
        #expect(node.queue.queued(about: swimID(2))?.source == swimID(3))
    }

    @Test func suspectTargetIsNotRemindedWithItsPing() {
        var node = swimInstance(count: 2, settings: plain)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 2))], from: swimID(2), at: swimAddress(2), now: at(0))
        // Drain the queued suspicion, so only a reminder could carry it.
        while !node.queue.isEmpty { _ = node.queue.take(budget: 1000, limit: 1) }
        var datagram: [SWIMMessage] = []
        for _ in 0..<20 where datagram.isEmpty {
            let effects = node.tick(now: node.nextDeadline)
            datagram =
                effects.sends.first { $0.messages.contains { if case .ping = $0 { true } else { false } } }?.messages
                ?? []
        }
        #expect(datagram.count == 1)
    }

    @Test func lifeguardIsOnByDefault() {
        #expect(SWIMSettings().lifeguard)
    }
}
