/// Applying membership updates: precedence by incarnation, refutation, suspicion
/// timers and reaping (SWIM §4.2, Lifeguard §3.2, memberlist `state.go`).
extension SWIMInstance {
    /// Whether `incoming` overrides `current` (SWIM §4.2, extended to Chorus's
    /// graceful states).
    ///
    /// A higher incarnation is a newer life of the node and always wins. At equal
    /// incarnation: suspect beats alive; dead beats alive and suspect; stopped beats
    /// alive, suspect and dead; left beats all of those and stopped (an operator may
    /// force a stopped node out). Alive never wins at equal incarnation: refutation
    /// takes a higher one. Anything else is stale and ignored — no state change, no
    /// re-gossip.
    static func supersedes(_ incoming: MemberUpdate, _ current: Member) -> Bool {
        if incoming.incarnation != current.incarnation {
            return incoming.incarnation > current.incarnation
        }
        switch incoming.status {
        case .alive: return false
        case .suspect: return current.status == .alive
        case .dead: return current.status == .alive || current.status == .suspect
        case .stopped: return current.status != .stopped && current.status != .left
        case .left: return current.status != .left
        }
    }

    /// Applies one update, received by gossip or merged from push-pull.
    mutating func apply(_ incoming: MemberUpdate, now: MonotonicTime, effects: inout [SWIMEffect]) {
        if incoming.id == myID {
            applyAboutMyself(incoming, effects: &effects)
            return
        }
        if let tombstone = tombstones[incoming.id] {
            if now < tombstone.until, incoming.incarnation <= tombstone.incarnation { return }
            tombstones[incoming.id] = nil
        }
        guard let current = peers[incoming.id]?.member else {
            learn(incoming, now: now, effects: &effects)
            return
        }
        if incoming.status == .suspect, current.status == .suspect,
            incoming.incarnation == current.incarnation
        {
            // Lifeguard §3.2: an independent confirmation shortens the timeout; only a
            // new one is gossiped on, so confirmations flow without echoing (memberlist).
            if suspicions[incoming.id]?.confirm(from: incoming.source) == true {
                enqueue(current.update(from: incoming.source))
            }
            return
        }
        guard Self.supersedes(incoming, current) else { return }
        var next = current
        next.incarnation = incoming.incarnation
        next.status = incoming.status
        if incoming.status == .alive {
            // Only an alive update, which needs a higher incarnation to win, may move
            // a member to a new address or rename or retag it.
            next.name = incoming.name
            next.address = incoming.address
            next.tags = incoming.tags
        }
        transition(from: current, to: next, source: incoming.source, now: now, effects: &effects)
    }

    /// A member new to this view. Dead, stopped and left members are recorded too:
    /// the ring keeps their place, so this node must know of them.
    private mutating func learn(
        _ incoming: MemberUpdate, now: MonotonicTime, effects: inout [SWIMEffect]
    ) {
        let member = incoming.member
        setPeer(member.id, PeerRecord(member: member, since: now))
        if Self.isProbeable(member.status) { scheduler.insert(member.id, random: &random) }
        if member.status == .suspect {
            startSuspicion(of: member, source: incoming.source, now: now, effects: &effects)
        }
        enqueue(member.update(from: incoming.source))
        effects.append(
            .memberChanged(MemberChange(previous: nil, current: member.status, member: member)))
    }

    /// Records a winning update about a known member: suspicion timer, gossip, change.
    mutating func transition(
        from current: Member, to next: Member, source: NodeID, now: MonotonicTime,
        effects: inout [SWIMEffect]
    ) {
        let since = current.status == next.status ? (peers[next.id]?.since ?? now) : now
        setPeer(next.id, PeerRecord(member: next, since: since))
        if next.status == .suspect {
            if current.status == .suspect, suspicions[next.id] != nil {
                _ = suspicions[next.id]?.confirm(from: source)
            } else {
                startSuspicion(of: next, source: source, now: now, effects: &effects)
            }
        } else {
            suspicions[next.id] = nil
        }
        if Self.isProbeable(next.status), !Self.isProbeable(current.status) {
            scheduler.insert(next.id, random: &random)
        }
        enqueue(next.update(from: source))
        effects.append(
            .memberChanged(MemberChange(previous: current.status, current: next.status, member: next)))
    }

    /// Lifeguard §3.2: a suspicion whose timeout starts at `suspicionMaxTimeoutMult ×`
    /// the floor and shrinks towards the floor with each independent confirmation.
    /// The suspect hears of it directly (Lifeguard's buddy system), so it can refute
    /// even if gossip would reach it late. Without Lifeguard the timeout is the floor,
    /// fixed (SWIM §4.2), and the suspect learns of it by gossip only.
    ///
    /// Both bounds are stretched by this node's local health multiplier, as its probes
    /// are (`healthAwareSuspicion`): a node slow to read its datagrams — the one that
    /// accuses healthy members — would otherwise time its suspicions out before it
    /// reads their refutations, and declare them dead in its own view (Lifeguard §2).
    /// A healthy node (score 0) keeps the nominal timeouts, and its dead verdict, not
    /// the slow node's, is what gossip spreads about a real failure.
    private mutating func startSuspicion(
        of member: Member, source: NodeID, now: MonotonicTime, effects: inout [SWIMEffect]
    ) {
        let count = memberCount
        var minimum = Suspicion.minimumTimeout(
            suspicionMult: settings.suspicionMult, members: count, probeInterval: settings.probeInterval)
        if settings.uses(.healthAwareSuspicion) { minimum = health.scale(minimum) }
        let dynamic = settings.uses(.dynamicSuspicion)
        suspicions[member.id] = Suspicion(
            from: source, start: now,
            expected: dynamic
                ? Suspicion.expectedConfirmations(suspicionMult: settings.suspicionMult, members: count) : 0,
            minimum: minimum, maximum: dynamic ? minimum * max(1, settings.suspicionMaxTimeoutMult) : minimum)
        if settings.uses(.buddySystem), !hasDeparted,
            let effect = datagram([.update(fitting(member.update(from: source)))], to: member.address)
        {
            effects.append(effect)
        }
    }

    /// Suspicions not refuted in time: the member is dead, by this node's word.
    mutating func expireSuspicions(now: MonotonicTime, effects: inout [SWIMEffect]) {
        for id in suspicions.keys.sorted() {
            guard let suspicion = suspicions[id], now >= suspicion.deadline else { continue }
            suspicions[id] = nil
            guard let current = peers[id]?.member, current.status == .suspect else { continue }
            var next = current
            next.status = .dead
            transition(from: current, to: next, source: myID, now: now, effects: &effects)
        }
    }

    /// An update about this node. While it runs, any claim that it is suspect, dead,
    /// stopped or left at its incarnation or later is refuted with a higher
    /// incarnation (SWIM §4.2), which costs health (Lifeguard §4.3); so is an alive
    /// claim from a previous life (a higher incarnation, or the same one with other
    /// details). After `depart` nothing is refuted.
    private mutating func applyAboutMyself(_ incoming: MemberUpdate, effects: inout [SWIMEffect]) {
        guard !hasDeparted, incoming.incarnation >= me.incarnation else { return }
        if incoming.status == .alive {
            let sameLife =
                incoming.incarnation == me.incarnation && incoming.name == me.name
                && incoming.address == me.address && incoming.tags == me.tags
            guard !sameLife else { return }
        } else {
            health.apply(1)
        }
        me.incarnation = incoming.incarnation + 1
        enqueue(me.update(from: myID))
        effects.append(
            .memberChanged(MemberChange(previous: me.status, current: me.status, member: me)))
    }

    /// When a dead, stopped or left member is due to be forgotten.
    func reapTime(of record: PeerRecord) -> MonotonicTime? {
        switch record.member.status {
        case .dead, .stopped: record.since + settings.deadReapTime
        case .left: record.since + settings.leftReapTime
        case .alive, .suspect: nil
        }
    }

    /// Forgets members dead or stopped for `deadReapTime`, or left for `leftReapTime`.
    mutating func reap(now: MonotonicTime, effects: inout [SWIMEffect]) {
        if tombstones.values.contains(where: { now >= $0.until }) {
            tombstones = tombstones.filter { now < $0.value.until }
        }
        // Only members in `reapDue` can be due: no scan of every peer per tick.
        for id in reapDue.filter({ now >= $0.value }).keys.sorted() {
            guard let record = peers[id], let due = reapTime(of: record), now >= due else { continue }
            setPeer(id, nil)
            suspicions[id] = nil
            stats[id] = nil
            scheduler.remove(id)
            tombstones[id] = Tombstone(
                incarnation: record.member.incarnation, until: now + due.since(record.since))
            effects.append(
                .memberChanged(
                    MemberChange(previous: record.member.status, current: nil, member: record.member)))
        }
    }
}
