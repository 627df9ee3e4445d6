/// The SWIM membership protocol with the Lifeguard refinements, as a pure state
/// machine: events in (with `now`), effects out. No I/O, no clock, no randomness of
/// its own (DESIGN §1).
///
/// The logic is split one concept per file: probing (`SWIMInstance+Probing.swift`,
/// `ProbeRound.swift`, `ProbeScheduler.swift`), state updates and suspicion
/// (`SWIMInstance+Updates.swift`, `Suspicion.swift`), dissemination
/// (`SWIMInstance+Gossip.swift`, `DisseminationQueue.swift`) and Lifeguard's local
/// health (`LocalHealth.swift`).
///
/// Determinism: every random choice comes from the one `SeededRandom`, and wherever
/// the order of a dictionary's traversal could reach an effect it is traversed sorted,
/// so the same seed and the same events give the same effects.
///
/// Choices where the issue left room:
/// - dead / stopped / left updates about ids this node never knew are recorded (the
///   ring keeps a dead or stopped member's place, so a newcomer must know of it);
///   forgotten members leave a tombstone so stale updates cannot resurrect them;
/// - after `depart` the instance no longer probes, gossips or refutes, but still acks
///   pings and relays ping requests (memberlist does the same);
/// - a change of this node's own incarnation (refutation, `setTags`) is reported as a
///   `memberChanged` about itself, so the shell can persist the incarnation.
public struct SWIMInstance: Sendable {
    public private(set) var settings: SWIMSettings

    let myID: NodeID
    /// This node's own entry (never in `peers`).
    var me: Member
    /// Every other member in the view, with the time its status last changed.
    /// Written only through `setPeer`, which keeps the two indexes below in step.
    private(set) var peers: [NodeID: PeerRecord] = [:]
    /// When each dead, stopped or left peer is due to be forgotten, so neither
    /// `nextDeadline` nor `reap` scans every peer.
    private(set) var reapDue: [NodeID: MonotonicTime] = [:]
    /// The peers' ids, sorted: gossip targets are sampled from it without a sort.
    private(set) var peerOrder: [NodeID] = []
    var random: SeededRandom
    var health: LocalHealth
    var scheduler = ProbeScheduler()
    var queue = DisseminationQueue()
    var suspicions: [NodeID: Suspicion] = [:]
    var probe: ProbeRound?
    var relays: [UInt64: RelayedProbe] = [:]
    var stats: [NodeID: ProbeStats] = [:]
    var tombstones: [NodeID: Tombstone] = [:]
    var nextProbeAt: MonotonicTime
    var nextGossipAt: MonotonicTime
    var lastSequence: UInt64
    /// The latest `now` seen, for a `nextDeadline` when no timer is pending.
    var lastNow: MonotonicTime

    struct PeerRecord: Hashable, Sendable {
        var member: Member
        /// When `member.status` last changed (memberlist `StateChange`): reaping and
        /// gossip-to-the-dead count from it.
        var since: MonotonicTime
    }

    /// Creates the instance for `myself` (status alive, incarnation as persisted).
    public init(myself: Member, settings: SWIMSettings, seed: UInt64, now: MonotonicTime) {
        self.settings = settings
        self.myID = myself.id
        var me = myself
        me.status = .alive
        self.me = me
        self.random = SeededRandom(seed: seed)
        // Without Lifeguard the score is pinned at 0: a ceiling of 1 clamps every change.
        self.health = LocalHealth(maximum: settings.uses(.localHealthProbe) ? settings.maxLocalHealth : 1)
        self.lastSequence = random.next() >> 1
        self.lastNow = now
        // Random first rounds so nodes started together do not probe and gossip in
        // lock step (memberlist staggers its tickers the same way).
        self.nextProbeAt =
            now + settings.probeInterval.scaled(by: Double(random.uniformIndex(below: 1000)) / 1000)
        self.nextGossipAt =
            now + settings.gossipInterval.scaled(by: Double(random.uniformIndex(below: 1000)) / 1000)
    }

    /// This node as it sees itself (incarnation bumps on refutation).
    public var myself: Member { me }

    /// Every member in the view, this node included, sorted by name (then id).
    public var members: [Member] {
        (peers.values.map(\.member) + [me]).sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// Lifeguard local health score, 0 (healthy) ... maxLocalHealth - 1.
    public var localHealth: Int { health.score }

    /// Probe observations per peer.
    public func probeStats(for id: NodeID) -> ProbeStats? { stats[id] }

    /// The member with `id`, this node included.
    public func member(_ id: NodeID) -> Member? {
        id == myID ? me : peers[id]?.member
    }

    /// Members in the view, this node included (SWIM's n).
    public var memberCount: Int { peers.count + 1 }

    /// Whether `depart` was called: the node no longer probes, gossips or refutes.
    public var hasDeparted: Bool { me.status == .stopped || me.status == .left }

    /// The earliest time at which `tick` has work to do; the shell calls `tick` then
    /// (or earlier: calling early is harmless).
    public var nextDeadline: MonotonicTime {
        var deadlines: [MonotonicTime] = []
        if !hasDeparted {
            deadlines.append(nextProbeAt)
            deadlines.append(nextGossipAt)
        }
        if let probe {
            if !probe.acked, !probe.escalated { deadlines.append(probe.ackDeadline) }
            deadlines.append(probe.end)
        }
        deadlines += relays.values.map(\.nackDeadline)
        deadlines += suspicions.values.map(\.deadline)
        deadlines += reapDue.values
        return deadlines.min() ?? lastNow + settings.probeInterval
    }

    /// Advance timers: start probe rounds, time out probes, expire suspicions,
    /// gossip, reap. Call at `nextDeadline`.
    public mutating func tick(now: MonotonicTime) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        var effects: [SWIMEffect] = []
        advanceProbe(now: now, effects: &effects)
        expireRelays(now: now, effects: &effects)
        expireSuspicions(now: now, effects: &effects)
        if !hasDeparted, probe == nil, now >= nextProbeAt {
            startProbe(now: now, effects: &effects)
        }
        if now >= nextGossipAt {
            nextGossipAt = nextGossipAt + settings.gossipInterval
            if nextGossipAt <= now { nextGossipAt = now + settings.gossipInterval }
            if !hasDeparted { gossip(now: now, effects: &effects) }
        }
        reap(now: now, effects: &effects)
        return effects
    }

    /// One datagram's messages from `sender` at `address`.
    public mutating func receive(
        _ messages: [SWIMMessage], from sender: NodeID, at address: Endpoint, now: MonotonicTime
    ) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        var effects: [SWIMEffect] = []
        for message in messages {
            switch message {
            case .ping(let sequence, let target):
                // A ping meant for another node (an address reused) is not acked.
                guard target == myID, let reply = datagram([.ack(sequence: sequence)], to: address) else {
                    continue
                }
                effects.append(reply)
            case .pingRequest(let sequence, let target, let targetAddress, let wantsNack):
                relay(
                    sequence: sequence, target: target, targetAddress: targetAddress, wantsNack: wantsNack,
                    requester: address, now: now, effects: &effects)
            case .ack(let sequence):
                acknowledged(sequence: sequence, from: sender, now: now, effects: &effects)
            case .nack(let sequence):
                if probe?.sequence == sequence, probe?.relays.contains(sender) == true {
                    probe?.nacksFrom.insert(sender)
                }
            case .update(let update):
                apply(update, now: now, effects: &effects)
            case .antiEntropy:
                // Anti-entropy's, not SWIM's: the shell routes these elsewhere.
                continue
            }
        }
        return effects
    }

    /// Result of a `probeOverTCP` effect.
    public mutating func tcpProbeAnswered(
        sequence: UInt64, target: NodeID, reachable: Bool, now: MonotonicTime
    )
        -> [SWIMEffect]
    {
        lastNow = max(lastNow, now)
        if reachable, probe?.sequence == sequence, probe?.target == target {
            probe?.reachableOverTCP = true
        }
        return []
    }

    /// Full state for push-pull (every member this node knows, itself included).
    public func fullState() -> [MemberUpdate] {
        (peers.values.map(\.member) + [me]).sorted { $0.id < $1.id }.map { $0.update(from: myID) }
    }

    /// Merge a peer's full state received by push-pull (memberlist `mergeState`).
    ///
    /// Each update is applied as if gossiped, except that a peer's verdict of dead or
    /// suspect about a member this node knows only makes it suspect, with this node as
    /// the suspecter: a whole-state exchange is no first-hand evidence, and the
    /// member keeps its chance to refute. Updates about unknown members are recorded
    /// as they are.
    public mutating func mergeFullState(_ updates: [MemberUpdate], now: MonotonicTime) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        var effects: [SWIMEffect] = []
        for var update in updates {
            if update.id != myID, update.status == .dead || update.status == .suspect,
                peers[update.id] != nil
            {
                update.status = .suspect
                update.source = myID
            }
            apply(update, now: now, effects: &effects)
        }
        return effects
    }

    /// Whether a node presenting `joiner` may join (a name held by another live id is refused).
    ///
    /// Refused only when another id holds the name and is alive or suspect. The same id
    /// (a restart, perhaps on a new address) is accepted, and so is a name whose holder
    /// is dead, stopped or left: the operator replaced that node.
    public func admit(_ joiner: MemberUpdate) -> JoinDecision {
        let holder = (peers.values.map(\.member) + [me])
            .filter { (member: Member) -> Bool in
                member.name == joiner.name && member.id != joiner.id && Self.isProbeable(member.status)
            }
            .min { $0.id < $1.id }
        guard let holder else { return .accept }
        return .refuse(reason: "name \(joiner.name) is taken by node \(holder.id) at \(holder.address)")
    }

    /// Announce a graceful departure: `left` (permanent) or `stopped` (restart expected).
    ///
    /// The announcement goes straight to every alive or suspect member (so each marks
    /// this node at once, with no suspicion wait) and into the gossip queue. Any other
    /// status, a repeat, or `stopped` after `left` is ignored.
    public mutating func depart(_ status: MemberStatus, now: MonotonicTime) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        guard status == .stopped || status == .left, me.status != status, me.status != .left else {
            return []
        }
        let previous = me.status
        me.status = status
        probe = nil
        var effects: [SWIMEffect] = [
            .memberChanged(MemberChange(previous: previous, current: status, member: me))
        ]
        let update = fitting(me.update(from: myID))
        enqueue(update)
        for record in peers.values.sorted(by: { $0.member.id < $1.member.id })
        where record.member.status == .alive || record.member.status == .suspect {
            if let effect = datagram([.update(update)], to: record.member.address, piggyback: false) {
                effects.append(effect)
            }
        }
        return effects
    }

    /// Tells every alive or suspect member directly that this node is alive at
    /// its current incarnation. The shell calls it once a (re)started node has
    /// joined: members that still hold it as stopped or dead do not probe it, so
    /// without this they would learn of the restart only by gossip, which a
    /// retransmit limit can leave short of some member until the next push-pull.
    public mutating func announce(now: MonotonicTime) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        guard me.status == .alive else { return [] }
        let update = fitting(me.update(from: myID))
        enqueue(update)
        var effects: [SWIMEffect] = []
        for record in peers.values.sorted(by: { $0.member.id < $1.member.id })
        where record.member.status != .left {
            if let effect = datagram([.update(update)], to: record.member.address, piggyback: false) {
                effects.append(effect)
            }
        }
        return effects
    }

    /// Sets (or, with nil, removes) a peer's record, keeping `reapDue` and
    /// `peerOrder` in step with `peers`.
    mutating func setPeer(_ id: NodeID, _ record: PeerRecord?) {
        let known = peers[id] != nil
        peers[id] = record
        reapDue[id] = record.flatMap { reapTime(of: $0) }
        var low = 0
        var high = peerOrder.count
        while low < high {
            let middle = (low + high) / 2
            if peerOrder[middle] < id { low = middle + 1 } else { high = middle }
        }
        if record == nil, known {
            peerOrder.remove(at: low)
        } else if record != nil, !known {
            peerOrder.insert(id, at: low)
        }
    }

    /// Change this node's tags (bumps incarnation and gossips alive).
    public mutating func setTags(_ tags: [String: String], now: MonotonicTime) -> [SWIMEffect] {
        lastNow = max(lastNow, now)
        me.tags = tags
        me.incarnation += 1
        enqueue(me.update(from: myID))
        return [.memberChanged(MemberChange(previous: me.status, current: me.status, member: me))]
    }
}
