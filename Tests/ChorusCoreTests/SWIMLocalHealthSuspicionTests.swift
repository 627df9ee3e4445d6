import Testing

@testable import ChorusCore

/// Lifeguard's local health multiplier stretching the suspicion timeouts a node
/// starts (`LifeguardParts.healthAwareSuspicion`), and each part left out on its own.
@Suite struct SWIMLocalHealthSuspicionTests {
    func nextPing(_ node: inout SWIMInstance) -> (sequence: UInt64, target: NodeID, at: MonotonicTime)? {
        for _ in 0..<100 {
            let now = node.nextDeadline
            if let ping = node.tick(now: now).pings.first { return (ping.sequence, ping.target, now) }
        }
        return nil
    }

    /// Node 1 refutes two suspicions of itself: local health 2, multiplier 3.
    func unhealthyNode(count: UInt64, settings: SWIMSettings = SWIMSettings()) -> SWIMInstance {
        var node = swimInstance(count: count, settings: settings)
        for incarnation in 0..<UInt64(2) {
            _ = node.receive(
                [.update(swimUpdate(1, incarnation: incarnation, status: .suspect, from: 2))], from: swimID(2),
                at: swimAddress(2), now: at(0.5))
        }
        return node
    }

    @Test func anUnhealthyNodeStretchesTheSuspicionsItStarts() {
        // n = 3: floor 4 s, ceiling 24 s, K = 1; health 2 stretches both × 3.
        var node = unhealthyNode(count: 3)
        #expect(node.localHealth == 2)
        let start = at(1)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: start)
        #expect(node.suspicions[swimID(2)]?.minimum == .seconds(12))
        #expect(node.suspicions[swimID(2)]?.maximum == .seconds(72))
        // Advancing with every ping acked: health falls, but a started suspicion keeps its timeout.
        advance(&node, to: start + .milliseconds(71_999))
        #expect(node.status(of: 2) == .suspect)
        advance(&node, to: start + .seconds(72))
        #expect(node.status(of: 2) == .dead)
    }

    @Test func withoutHealthAwareSuspicionTheTimeoutIsNominal() {
        var settings = SWIMSettings()
        settings.lifeguardParts.remove(.healthAwareSuspicion)
        var node = unhealthyNode(count: 3, settings: settings)
        #expect(node.localHealth == 2)
        let start = at(1)
        _ = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: start)
        #expect(node.suspicions[swimID(2)]?.maximum == .seconds(24))
        advance(&node, to: start + .seconds(24))
        #expect(node.status(of: 2) == .dead)
    }

    @Test func aFailedProbeStretchesTheNextSuspicionsNotItsOwn() throws {
        // n = 5: floor 4 s, ceiling 24 s. The round fails with three missed nacks.
        var node = swimInstance(count: 5)
        let ping = try #require(nextPing(&node))
        _ = node.tick(now: ping.at + .milliseconds(500))
        _ = node.tick(now: ping.at + .seconds(1))
        #expect(node.member(ping.target)?.status == .suspect)
        #expect(node.localHealth == 4)
        // Suspected with the health of before the round (memberlist applies the
        // round's health change after suspecting).
        #expect(node.suspicions[ping.target]?.maximum == .seconds(24))
        // A suspicion started now, with health 4, runs × 5.
        let other = try #require([2, 3, 4, 5].map { UInt64($0) }.first { swimID($0) != ping.target })
        _ = node.receive(
            [.update(swimUpdate(other, status: .suspect, from: other == 2 ? 3 : 2))], from: swimID(3),
            at: swimAddress(3), now: ping.at + .seconds(1))
        #expect(node.suspicions[swimID(other)]?.maximum == .seconds(120))
    }

    @Test func eachLifeguardPartCanBeLeftOut() throws {
        #expect(SWIMSettings().uses(.all))
        var off = SWIMSettings()
        off.lifeguard = false
        #expect(!off.uses(.buddySystem) && !off.uses(.localHealthProbe))

        // Without the buddy system: a dynamic timeout, but the suspect is not told.
        var noBuddy = SWIMSettings()
        noBuddy.lifeguardParts.remove(.buddySystem)
        var node = swimInstance(count: 6, settings: noBuddy)
        let effects = node.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: at(1))
        #expect(!effects.sends.contains { $0.to == swimAddress(2) })
        #expect(node.suspicions[swimID(2)]?.maximum == .seconds(24))

        // Without dynamic suspicion: the fixed floor, but the suspect is told.
        var fixed = SWIMSettings()
        fixed.lifeguardParts.remove(.dynamicSuspicion)
        var told = swimInstance(count: 6, settings: fixed)
        let direct = told.receive(
            [.update(swimUpdate(2, status: .suspect, from: 3))], from: swimID(3), at: swimAddress(3), now: at(1))
        #expect(direct.sends.contains { $0.to == swimAddress(2) })
        #expect(told.suspicions[swimID(2)]?.deadline == at(5))

        // Without the local health aware probe: no nacks asked, health stays 0.
        var noProbe = SWIMSettings()
        noProbe.lifeguardParts.remove(.localHealthProbe)
        var plain = swimInstance(count: 5, settings: noProbe)
        let ping = try #require(nextPing(&plain))
        let timeout = plain.tick(now: ping.at + .milliseconds(500))
        #expect(
            !timeout.sends.contains {
                if case .pingRequest(_, _, _, true) = $0.messages.first { true } else { false }
            })
        _ = plain.tick(now: ping.at + .seconds(1))
        #expect(plain.localHealth == 0)
    }
}
