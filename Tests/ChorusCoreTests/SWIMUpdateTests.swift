import Testing

@testable import ChorusCore

@Suite struct SWIMUpdateTests {
    @Test func staleUpdatesAreIgnored() {
        var node = swimInstance(count: 3)
        _ = node.receive(
            [.update(swimUpdate(2, incarnation: 5, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(0))
        // Let the queue drain.
        advance(&node, to: at(10))
        #expect(node.queue.isEmpty)
        for stale in [
            swimUpdate(2, incarnation: 5, from: 3),
            swimUpdate(2, incarnation: 4, from: 3),
            swimUpdate(2, incarnation: 4, status: .suspect, from: 3),
            swimUpdate(2, incarnation: 3, status: .dead, from: 3),
            swimUpdate(2, incarnation: 4, status: .left, from: 3),
        ] {
            let effects = node.receive([.update(stale)], from: swimID(3), at: swimAddress(3), now: at(10))
            #expect(effects.isEmpty)
        }
        #expect(node.status(of: 2) == .alive)
        #expect(node.member(swimID(2))?.incarnation == 5)
        #expect(node.queue.isEmpty)
    }

    @Test func precedenceFollowsIncarnationThenStatus() {
        let current = swimMember(2, incarnation: 5, status: .alive)
        func wins(_ status: MemberStatus, _ incarnation: UInt64, over member: Member) -> Bool {
            SWIMInstance.supersedes(
                swimUpdate(2, incarnation: incarnation, status: status, from: 3), member)
        }
        #expect(!wins(.alive, 5, over: current))
        #expect(wins(.alive, 6, over: current))
        #expect(wins(.suspect, 5, over: current))
        #expect(!wins(.suspect, 5, over: swimMember(2, incarnation: 5, status: .suspect)))
        #expect(wins(.suspect, 6, over: swimMember(2, incarnation: 5, status: .suspect)))
        #expect(wins(.dead, 5, over: swimMember(2, incarnation: 5, status: .suspect)))
        #expect(!wins(.dead, 5, over: swimMember(2, incarnation: 5, status: .stopped)))
        #expect(wins(.stopped, 5, over: swimMember(2, incarnation: 5, status: .dead)))
        #expect(wins(.left, 5, over: swimMember(2, incarnation: 5, status: .stopped)))
        #expect(!wins(.stopped, 5, over: swimMember(2, incarnation: 5, status: .left)))
        #expect(wins(.alive, 6, over: swimMember(2, incarnation: 5, status: .left)))
        #expect(!wins(.alive, 5, over: swimMember(2, incarnation: 5, status: .dead)))
    }

    @Test func stoppedAnnouncementMarksMemberStoppedWithoutSuspicion() {
        var leaving = SWIMInstance(myself: swimMember(2), settings: SWIMSettings(), seed: 7, now: .zero)
        _ = leaving.mergeFullState([swimUpdate(1, from: 1), swimUpdate(3, from: 3)], now: .zero)
        var observer = swimInstance(count: 3)

        let announcement = leaving.depart(.stopped, now: at(1))
        #expect(leaving.myself.status == .stopped)
        #expect(announcement.changes.map(\.current) == [.stopped])
        let sends = announcement.sends
        #expect(Set(sends.map(\.to)) == [swimAddress(1), swimAddress(3)])
        let toObserver = sends.first { $0.to == swimAddress(1) }
        let effects = observer.receive(
            toObserver?.messages ?? [], from: swimID(2), at: swimAddress(2), now: at(1))
        #expect(effects.changes.map(\.previous) == [.alive])
        #expect(effects.changes.map(\.current) == [.stopped])
        #expect(observer.suspicions.isEmpty)
        #expect(observer.status(of: 2) == .stopped)

        // Stopped members are not probed, and the stopped node neither probes nor gossips.
        let later = advance(&observer, to: at(30))
        #expect(!later.pings.contains { $0.target == swimID(2) })
        #expect(observer.status(of: 2) == .stopped)
        let quiet = advance(&leaving, to: at(30))
        #expect(quiet.sends.isEmpty)
        // It still acks pings.
        let ack = leaving.receive(
            [.ping(sequence: 9, target: swimID(2))], from: swimID(1), at: swimAddress(1), now: at(31))
        #expect(ack.sends.first?.messages.first == .ack(sequence: 9))
    }

    @Test func restartWithHigherIncarnationOverridesStopped() {
        var node = swimInstance(count: 3)
        _ = node.receive(
            [.update(swimUpdate(2, incarnation: 3, status: .stopped, from: 2))], from: swimID(2),
            at: swimAddress(2), now: at(1))
        #expect(node.status(of: 2) == .stopped)
        let sameLife = node.receive(
            [.update(swimUpdate(2, incarnation: 3, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(2))
        #expect(sameLife.isEmpty)
        let moved = Endpoint(host: "10.0.0.2", port: 7000)
        let effects = node.receive(
            [.update(swimUpdate(2, incarnation: 4, from: 2, address: moved))], from: swimID(2), at: moved,
            now: at(3))
        #expect(effects.changes.map(\.previous) == [.stopped])
        #expect(effects.changes.map(\.current) == [.alive])
        #expect(node.member(swimID(2))?.address == moved)
        // Probed again.
        let later = advance(&node, to: at(10))
        #expect(later.pings.contains { $0.target == swimID(2) && $0.to == moved })
    }

    @Test func addressChangeAcceptedWithHigherIncarnation() {
        var node = swimInstance(count: 2)
        let moved = Endpoint(host: "::1", port: 8000)
        let tags = ["http": "127.0.0.2:7480"]
        let same = node.receive(
            [.update(swimUpdate(2, from: 2, address: moved, tags: tags))], from: swimID(2), at: moved,
            now: at(1))
        #expect(same.isEmpty)
        #expect(node.member(swimID(2))?.address == swimAddress(2))
        // A non-alive update never moves a member either.
        _ = node.receive(
            [.update(swimUpdate(2, incarnation: 1, status: .suspect, from: 2, address: moved))],
            from: swimID(2),
            at: moved, now: at(1))
        #expect(node.member(swimID(2))?.address == swimAddress(2))
        _ = node.receive(
            [.update(swimUpdate(2, incarnation: 2, from: 2, address: moved, tags: tags))],
            from: swimID(2), at: moved,
            now: at(2))
        #expect(node.member(swimID(2))?.address == moved)
        #expect(node.member(swimID(2))?.tags == tags)
        #expect(node.status(of: 2) == .alive)
    }

    @Test func deadMembersAreReaped() {
        var settings = SWIMSettings()
        settings.deadReapTime = .seconds(100)
        settings.leftReapTime = .seconds(300)
        var node = swimInstance(count: 4, settings: settings)
        _ = node.receive(
            [
                .update(swimUpdate(2, status: .dead, from: 3)),
                .update(swimUpdate(3, status: .left, from: 3)),
            ], from: swimID(3), at: swimAddress(3), now: at(10))
        advance(&node, to: at(109.9))
        #expect(node.status(of: 2) == .dead)
        let reaped = advance(&node, to: at(110))
        #expect(node.member(swimID(2)) == nil)
        #expect(
            reaped.changes.contains {
                $0.member.id == swimID(2) && $0.previous == .dead && $0.current == nil
            })
        #expect(node.members.map(\.id) == [swimID(1), swimID(3), swimID(4)])
        // A stale dead update does not bring it back; a new life does.
        #expect(
            node.receive(
                [.update(swimUpdate(2, status: .dead, from: 4))], from: swimID(4), at: swimAddress(4),
                now: at(111)
            ).isEmpty)
        #expect(node.member(swimID(2)) == nil)
        _ = node.receive(
            [.update(swimUpdate(2, incarnation: 1, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(112))
        #expect(node.status(of: 2) == .alive)

        advance(&node, to: at(309.9), silent: [2])
        #expect(node.status(of: 3) == .left)
        advance(&node, to: at(310), silent: [2])
        #expect(node.member(swimID(3)) == nil)
    }

    @Test func unknownDeadMembersAreRecorded() {
        var node = swimInstance(count: 2)
        let effects = node.receive(
            [.update(swimUpdate(9, status: .stopped, from: 2))], from: swimID(2), at: swimAddress(2),
            now: at(1))
        #expect(effects.changes.map(\.previous) == [nil])
        #expect(node.status(of: 9) == .stopped)
    }

    @Test func duplicateNameIsRefused() {
        var node = swimInstance(count: 3)
        var impostor = swimUpdate(2, from: 7)
        impostor.id = swimID(7)
        guard case .refuse(let reason) = node.admit(impostor) else {
            Issue.record("a second node-2 was admitted")
            return
        }
        #expect(reason == "name node-2 is taken by node \(swimID(2)) at 127.0.0.2:7946")
        // My own name is taken too.
        var myName = swimUpdate(1, from: 7)
        myName.id = swimID(7)
        #expect(node.admit(myName) != .accept)
        // The same id restarting, and a name whose holder is dead, are accepted.
        #expect(
            node.admit(
                swimUpdate(2, incarnation: 1, from: 2, address: Endpoint(host: "10.0.0.9", port: 1)))
                == .accept)
        _ = node.receive(
            [.update(swimUpdate(2, status: .dead, from: 3))], from: swimID(3), at: swimAddress(3),
            now: at(1))
        #expect(node.admit(impostor) == .accept)
    }

    @Test func setTagsBumpsIncarnationAndGossipsAlive() {
        var node = swimInstance(count: 3)
        let effects = node.setTags(["zone": "b"], now: at(1))
        #expect(node.myself.incarnation == 1)
        #expect(node.myself.tags == ["zone": "b"])
        #expect(effects.changes.map(\.member.incarnation) == [1])
        let gossip = advance(&node, to: at(2))
        #expect(
            gossip.updates.contains(
                swimMember(1, incarnation: 1, tags: ["zone": "b"]).update(from: swimID(1))))
    }

    @Test func pushPullTurnsDeadIntoSuspect() {
        var node = swimInstance(count: 3)
        let effects = node.mergeFullState(
            [
                swimUpdate(2, status: .dead, from: 3), swimUpdate(8, status: .dead, from: 3),
                swimUpdate(9, from: 3),
            ],
            now: at(1))
        #expect(node.status(of: 2) == .suspect)
        #expect(node.suspicions[swimID(2)] != nil)
        #expect(node.status(of: 8) == .dead)
        #expect(node.status(of: 9) == .alive)
        #expect(effects.changes.count == 3)
        #expect(node.fullState().map(\.id) == [1, 2, 3, 8, 9].map(swimID))
    }

    @Test func membersAreSortedByName() {
        var node = SWIMInstance(myself: swimMember(5), settings: SWIMSettings(), seed: 1, now: .zero)
        _ = node.mergeFullState(
            [swimUpdate(3, from: 3), swimUpdate(7, from: 7), swimUpdate(1, from: 1)], now: .zero)
        #expect(node.members.map(\.name) == ["node-1", "node-3", "node-5", "node-7"])
    }
}

@Suite struct SWIMAnnounceTests {
    @Test func announceSendsAliveToEveryMemberThatHasNotLeft() {
        let me = Member(
            id: NodeID(high: 1, low: 1), name: "me", address: Endpoint(host: "127.0.0.1", port: 1), incarnation: 3,
            status: .alive)
        var instance = SWIMInstance(myself: me, settings: SWIMSettings(), seed: 1, now: .zero)
        var updates: [MemberUpdate] = []
        for (index, status) in [MemberStatus.alive, .stopped, .dead, .left].enumerated() {
            let peer = Member(
                id: NodeID(high: 2, low: UInt64(index)), name: "p\(index)",
                address: Endpoint(host: "127.0.0.2", port: UInt16(index + 1)), incarnation: 1, status: status)
            updates.append(peer.update(from: peer.id))
        }
        _ = instance.mergeFullState(updates, now: .zero)
        let effects = instance.announce(now: .zero)
        var targets: Set<UInt16> = []
        for case .send(let messages, let address) in effects {
            #expect(messages.contains(.update(me.update(from: me.id))))
            targets.insert(address.port)
        }
        #expect(targets == [1, 2, 3])
    }
}
