/// Dissemination: datagrams with piggybacked updates, sized to the payload limit, and
/// the periodic gossip round (SWIM §4.1, memberlist `gossip` and `getBroadcasts`).
extension SWIMInstance {
    /// Bytes available to messages in one datagram: `maxPayloadBytes` less the
    /// envelope header. Every `.send` this instance emits fits, so the shell may trust it.
    var messageBudget: Int { settings.maxPayloadBytes - SWIMCodec.envelopeHeaderSize }

    /// `retransmitMult × ceil(log10(n + 1))` for the current view.
    var retransmitLimit: Int {
        DisseminationQueue.retransmitLimit(
            retransmitMult: settings.retransmitMult, members: memberCount)
    }

    /// Queues `update` for gossip, replacing any queued update about the same member.
    mutating func enqueue(_ update: MemberUpdate) {
        queue.enqueue(fitting(update), maxSize: messageBudget)
    }

    /// `update`, without its tags if it would not fit in a datagram otherwise and is
    /// not an alive update (receivers take name, address and tags only from alive
    /// updates about members they know, so little is lost).
    func fitting(_ update: MemberUpdate) -> MemberUpdate {
        guard update.status != .alive, SWIMCodec.encodedSize(of: .update(update)) > messageBudget else {
            return update
        }
        var stripped = update
        stripped.tags = [:]
        return stripped
    }

    /// A `.send` of `messages` to `address`, filled up with queued updates
    /// (fewest-sent first) to the payload limit. Nil if `messages` alone do not fit.
    mutating func datagram(_ messages: [SWIMMessage], to address: Endpoint, piggyback: Bool = true)
        -> SWIMEffect?
    {
        let used = messages.reduce(0) { $0 + SWIMCodec.encodedSize(of: $1) }
        guard used <= messageBudget else { return nil }
        guard piggyback else { return .send(messages, to: address) }
        let present = Set(
            messages.compactMap { message -> NodeID? in
                if case .update(let update) = message { update.id } else { nil }
            })
        let updates = queue.take(budget: messageBudget - used, limit: retransmitLimit, excluding: present)
        return .send(messages + updates.map { .update($0) }, to: address)
    }

    /// SWIM §4.1: send queued updates to `gossipNodes` random members — alive or
    /// suspect, or dead for less than `gossipToTheDeadTime` so a wrongly declared node
    /// learns of it and refutes (memberlist). Nothing is sent when nothing is queued.
    mutating func gossip(now: MonotonicTime, effects: inout [SWIMEffect]) {
        guard !queue.isEmpty else { return }
        let toTheDead = settings.gossipToTheDeadTime
        let targets = samplePeers(count: settings.gossipNodes) {
            Self.isProbeable($0.member.status) || ($0.member.status == .dead && now < $0.since + toTheDead)
        }
        for target in targets {
            let updates = queue.take(budget: messageBudget, limit: retransmitLimit)
            guard !updates.isEmpty else { break }
            effects.append(.send(updates.map { .update($0) }, to: target.address))
        }
    }

    /// Up to `count` distinct peers that pass `isEligible`, a uniform random sample
    /// in random order. Draws random positions of `peerOrder` and keeps eligible ones
    /// (expected O(count) when most peers are eligible, as they are in a healthy
    /// cluster); after a few misses it completes the sample from the full list of
    /// eligible peers, so the result is uniform either way. This runs every gossip
    /// round, where sorting and shuffling every peer was an O(n log n) cost per round.
    mutating func samplePeers(count: Int, where isEligible: (PeerRecord) -> Bool) -> [Member] {
        var chosen: [Member] = []
        var tried: Set<Int> = []
        var misses = 0
        while chosen.count < count, misses < 2 * count + 4, tried.count < peerOrder.count {
            let position = random.uniformIndex(below: peerOrder.count)
            guard tried.insert(position).inserted else { continue }
            if let record = peers[peerOrder[position]], isEligible(record) {
                chosen.append(record.member)
            } else {
                misses += 1
            }
        }
        guard chosen.count < count, tried.count < peerOrder.count else { return chosen }
        let rest = peerOrder.indices.compactMap { position -> Member? in
            guard !tried.contains(position), let record = peers[peerOrder[position]], isEligible(record) else {
                return nil
            }
            return record.member
        }
        return chosen + random.randomSample(rest, count: count - chosen.count)
    }
}
