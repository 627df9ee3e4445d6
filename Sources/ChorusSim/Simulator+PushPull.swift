import ChorusCore

/// The shell's periodic full-state sync over TCP (DESIGN §2; memberlist push-pull,
/// serf reconnect), simulated as a reliable link that a partition cuts: the request
/// arrives one latency later and the reply one more; a crashed, paused or cut-off
/// peer simply never answers. A slow node serves requests on time (the stream
/// handler runs apart from the datagram loop, as in memberlist) but merges the
/// replies it gets behind its datagram backlog.
extension Simulator {
    func pushPullTimer(_ node: Int, reconnect: Bool) {
        guard !crashed[node] else { return }
        schedule(
            .pushPullTimer(node: node, reconnect: reconnect),
            after: reconnect ? scenario.reconnectInterval : scenario.pushPullInterval)
        guard !paused[node] else { return }
        let candidates = nodes[node].members.filter {
            $0.id != ids[node]
                && (reconnect
                    ? ($0.status == .dead || $0.status == .stopped) : ($0.status == .alive || $0.status == .suspect))
        }
        guard !candidates.isEmpty, let peer = index(of: candidates[random.index(below: candidates.count)].id) else {
            return
        }
        mixEvent(reconnect ? 5 : 4, node, peer)
        guard partitions.connects(node, peer) else { return }
        let state = nodes[node].fullState()
        traffic.sentOverTCP(state, at: now)
        schedule(
            .pushPullRequest(from: node, to: peer, state: state),
            after: network.latency(from: node, to: peer, random: &random))
    }

    func pushPullRequest(from: Int, to: Int, state: [MemberUpdate]) {
        guard !crashed[to], !paused[to], partitions.connects(from, to) else { return }
        mixEvent(6, to, from)
        let reply = nodes[to].fullState()
        traffic.sentOverTCP(reply, at: now)
        execute(to, nodes[to].mergeFullState(state, now: now))
        reschedule(to)
        schedule(
            .pushPullReply(to: from, from: to, state: reply),
            after: network.latency(from: to, to: from, random: &random))
    }

    func pushPullReply(to: Int, from: Int, state: [MemberUpdate]) {
        guard !crashed[to] else { return }
        if paused[to] {
            pending[to].append(.merge(state: state))
            return
        }
        if delayIfSlow(to, .merge(state: state)) { return }
        mixEvent(6, to, from)
        execute(to, nodes[to].mergeFullState(state, now: now))
        reschedule(to)
    }
}
