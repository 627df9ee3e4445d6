/// Failure detection: this node's probe rounds and the probes it relays for others
/// (SWIM §3.1 and §4.3, Lifeguard §3.1 and §4.3, memberlist `probeNode`).
extension SWIMInstance {
    static func isProbeable(_ status: MemberStatus) -> Bool {
        status == .alive || status == .suspect
    }

    mutating func takeSequence() -> UInt64 {
        lastSequence &+= 1
        return lastSequence
    }

    /// Starts a round: ping the next member of the shuffled round-robin. The round
    /// lasts `probeInterval × (localHealth + 1)`; the direct ack is awaited for
    /// `probeTimeout × (localHealth + 1)` (Lifeguard §3.1 stretches both).
    mutating func startProbe(now: MonotonicTime, effects: inout [SWIMEffect]) {
        let interval = health.scale(settings.probeInterval)
        nextProbeAt = now + interval
        let peers = self.peers
        let target = scheduler.next(
            candidates: {
                peers.values.filter { Self.isProbeable($0.member.status) }.map(\.member.id).sorted()
            },
            isProbeable: { peers[$0].map { Self.isProbeable($0.member.status) } ?? false },
            random: &random)
        guard let target, let member = peers[target]?.member else { return }
        let sequence = takeSequence()
        let timeout = min(health.scale(settings.probeTimeout), interval)
        probe = ProbeRound(
            sequence: sequence, target: target, address: member.address, started: now,
            ackDeadline: now + timeout,
            end: now + interval)
        var messages: [SWIMMessage] = [.ping(sequence: sequence, target: target)]
        if member.status == .suspect, settings.uses(.buddySystem) {
            // memberlist: remind a suspect that it is suspected, so it can refute
            // (Lifeguard §3.3, the buddy system).
            messages.append(.update(fitting(member.update(from: myID))))
        }
        if let effect = datagram(messages, to: member.address) { effects.append(effect) }
    }

    /// Escalates a round whose direct ack timed out, and ends a round whose interval
    /// is over.
    mutating func advanceProbe(now: MonotonicTime, effects: inout [SWIMEffect]) {
        guard var round = probe else { return }
        if !round.acked, !round.escalated, now >= round.ackDeadline {
            escalate(&round, effects: &effects)
        }
        guard now >= round.end else {
            probe = round
            return
        }
        probe = nil
        finish(round, now: now, effects: &effects)
    }

    /// SWIM §3.1: ask `indirectChecks` random alive members to probe the target, with
    /// nacks (Lifeguard §3.1); and memberlist's TCP fallback.
    private mutating func escalate(_ round: inout ProbeRound, effects: inout [SWIMEffect]) {
        round.escalated = true
        let candidates = peers.values
            .filter { $0.member.status == .alive && $0.member.id != round.target }
            .map(\.member)
            .sorted { $0.id < $1.id }
        for relay in random.randomSample(candidates, count: settings.indirectChecks) {
            let request = SWIMMessage.pingRequest(
                sequence: round.sequence, target: round.target, targetAddress: round.address,
                wantsNack: settings.uses(.localHealthProbe))
            if let effect = datagram([request], to: relay.address) {
                effects.append(effect)
                if settings.uses(.localHealthProbe) { round.relays.insert(relay.id) }
            }
        }
        effects.append(
            .probeOverTCP(sequence: round.sequence, target: round.target, address: round.address))
    }

    /// The end of a round. Without any ack the target becomes suspect, and then this
    /// node's health score rises by one for the failed probe and one per relay that
    /// neither acked nor nacked (Lifeguard §4.3). In that order, as in memberlist: the
    /// suspicion's timeout is stretched by the health this node had before the round
    /// (a healthy node's one failed probe of a crashed member does not delay its
    /// verdict). An answer over TCP alone spares the target but records that UDP does
    /// not reach it.
    private mutating func finish(_ round: ProbeRound, now: MonotonicTime, effects: inout [SWIMEffect]) {
        guard !round.acked else { return }
        if round.reachableOverTCP {
            var observed = stats[round.target] ?? ProbeStats()
            observed.reachableOverUDP = false
            stats[round.target] = observed
            return
        }
        defer { health.apply(1 + round.missedNacks) }
        guard let member = peers[round.target]?.member, Self.isProbeable(member.status) else { return }
        var suspected = member.update(from: myID)
        suspected.status = .suspect
        apply(suspected, now: now, effects: &effects)
    }

    /// An ack: ends this node's round successfully (Lifeguard §4.3: health −1), or is
    /// relayed to the node whose ping request it answers.
    mutating func acknowledged(
        sequence: UInt64, from sender: NodeID, now: MonotonicTime, effects: inout [SWIMEffect]
    ) {
        if var round = probe, round.sequence == sequence {
            guard !round.acked else { return }
            round.acked = true
            probe = round
            health.apply(-1)
            var observed = stats[round.target] ?? ProbeStats()
            observed.reachableOverUDP = true
            if sender == round.target {
                observed.lastRoundTrip = now.since(round.started)
            }
            stats[round.target] = observed
        } else if let relayed = relays.removeValue(forKey: sequence) {
            if let effect = datagram([.ack(sequence: relayed.originalSequence)], to: relayed.requester) {
                effects.append(effect)
            }
        }
    }

    /// Most ping requests relayed at once: a bound on the state a flood of requests
    /// can create (each expires after `probeTimeout × 0.8`).
    static var maxPendingRelays: Int { 1024 }

    /// SWIM §3.1: probe `target` for `requester`, with a sequence of this node's own.
    mutating func relay(
        sequence: UInt64, target: NodeID, targetAddress: Endpoint, wantsNack: Bool, requester: Endpoint,
        now: MonotonicTime, effects: inout [SWIMEffect]
    ) {
        if target == myID {
            if let effect = datagram([.ack(sequence: sequence)], to: requester) { effects.append(effect) }
            return
        }
        guard relays.count < Self.maxPendingRelays else { return }
        let mine = takeSequence()
        relays[mine] = RelayedProbe(
            requester: requester, originalSequence: sequence, target: target, wantsNack: wantsNack,
            nackDeadline: now + settings.probeTimeout.scaled(by: 0.8))
        if let effect = datagram([.ping(sequence: mine, target: target)], to: targetAddress) {
            effects.append(effect)
        }
    }

    /// Relayed probes whose target stayed silent: nack the requester if it asked
    /// (Lifeguard §3.1), and forget them.
    mutating func expireRelays(now: MonotonicTime, effects: inout [SWIMEffect]) {
        for sequence in relays.keys.sorted() {
            guard let relayed = relays[sequence], now >= relayed.nackDeadline else { continue }
            relays[sequence] = nil
            if relayed.wantsNack,
                let effect = datagram([.nack(sequence: relayed.originalSequence)], to: relayed.requester)
            {
                effects.append(effect)
            }
        }
    }
}
