import ChorusCore
import Logging
import NIOCore

/// Runs anti-entropy catch-ups (README "Anti-entropy"): once a second it looks at the
/// membership and the placement; for every co-replica that returned (`ReturnWatch`:
/// alive again after dead, stopped or left; on a restarted node, also seen alive for the
/// first time since the start) it queues one exchange-and-repair per partition the two
/// share, and for every partition this node became a home replica of (`HomeWatch`) one
/// per live co-replica; it runs them `window` at a time beside the periodic exchanges.
///
/// Loop-confined: every member is touched on `loop` only.
final class CatchUpRunner: @unchecked Sendable {
    private let antiEntropy: AntiEntropy
    private let membership: MembershipService
    private let localID: NodeID
    private let loop: EventLoop
    private let logger: Logger
    private let replication: Int
    private let window: Int

    private var watch: ReturnWatch
    /// Made at the first look after the join, when it is known how the node joined.
    private var homes: HomeWatch?
    private var random = SystemRandomNumberGenerator()
    private var queue = CircularBuffer<(partition: Int, peer: NodeID, gained: Bool, attempt: Int)>()
    /// Tries per exchange: one that failed (a timeout on a loaded node, a dropped session) goes
    /// to the back of the queue again, so that a catch-up does not leave its partition to the
    /// periodic exchanges, which may take many minutes to come round to it.
    static let attempts = 3
    private var running = 0
    private var progress: [NodeID: Progress] = [:]
    private var task: RepeatedTask?
    /// The earliest start of the next exchange, and the task waiting for it.
    private var nextStart = NIODeadline.uptimeNanoseconds(0)
    private var pacing: Scheduled<Void>?
    /// At most this often an exchange with a returned peer starts (500 a second).
    static let spacing = TimeAmount.milliseconds(2)
    /// At most this often an exchange of a gained partition starts (20 a second): they
    /// are a safety net behind the ring handoff, found equal almost always, and a new
    /// 3-node cluster would otherwise spend seconds of CPU on them at its start.
    static let gainedSpacing = TimeAmount.milliseconds(50)

    /// One catch-up with one peer.
    private struct Progress {
        var name: String
        var total: Int
        var done = 0
        var keysRepaired = 0
        var failed = 0
        /// Exchanges that failed and went back to the queue.
        var retried = 0
        var started = NIODeadline.now()
    }

    init(antiEntropy: AntiEntropy, membership: MembershipService, replication: Int, window: Int, logger: Logger) {
        self.antiEntropy = antiEntropy
        self.membership = membership
        self.localID = membership.localID
        self.loop = antiEntropy.loop
        self.logger = logger
        self.replication = replication
        self.window = max(1, window)
        self.watch = ReturnWatch(restarted: membership.restarted)
    }

    func start(every interval: TimeAmount = .seconds(1)) {
        loop.execute { [self] in
            task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in poll() }
        }
    }

    /// Cancels the polling and drops what is queued. On `loop`.
    func stopOnLoop() {
        task?.cancel()
        task = nil
        pacing?.cancel()
        pacing = nil
        queue.removeAll()
        progress.removeAll()
    }

    /// Exchanges queued or running. On `loop`.
    var pending: Int { queue.count + running }

    private func poll() {
        // Before it has joined a node sees only itself and its seeds' first answers.
        guard membership.hasJoined else { return }
        let view = membership.view
        var statuses = view.members.mapValues(\.status)
        statuses[localID] = nil
        for returned in watch.observe(statuses) {
            let peer = returned.id
            let shared = CatchUpPlan.partitions(shared: peer, with: localID, in: view.placement, n: replication)
            guard !shared.isEmpty, let name = view.members[peer]?.name else { continue }
            let partitions = CatchUpPlan.ordered(shared, firstSight: returned.firstSight, using: &random)
            // A later return replaces what is left of an earlier catch-up with the peer.
            queue.removeAll { $0.peer == peer }
            queue.append(contentsOf: partitions.map { (partition: $0, peer: peer, gained: false, attempt: 1) })
            progress[peer] = Progress(name: name, total: partitions.count)
            logger.info(
                "anti-entropy catch-up started", metadata: ["peer": "\(name)", "partitions": "\(partitions.count)"])
        }
        // A node that joined a ring smaller than n became a home replica of everything
        // at once, without the join fetch: all it holds at the first look was gained.
        var homes = self.homes ?? HomeWatch(firstLookGained: membership.joinedWithoutFetch)
        let gained = homes.observe(view.placement.partitions(homedOn: localID, n: replication))
        self.homes = homes
        var gainedWith: [NodeID: (name: String, partitions: [Int])] = [:]
        for partition in gained {
            for peer in antiEntropy.coReplicas(of: partition, view: view) {
                gainedWith[peer.id, default: (peer.name, [])].partitions.append(partition)
            }
        }
        for (peer, gain) in gainedWith.sorted(by: { $0.key < $1.key }) {
            queue.append(contentsOf: gain.partitions.map { (partition: $0, peer: peer, gained: true, attempt: 1) })
            progress[peer, default: Progress(name: gain.name, total: 0)].total += gain.partitions.count
            logger.info(
                "anti-entropy catch-up started for gained partitions",
                metadata: ["peer": "\(gain.name)", "partitions": "\(gain.partitions.count)"])
        }
        pump()
    }

    private func pump() {
        while running < window, !queue.isEmpty {
            // Paced: a catch-up of a thousand equal partitions is a thousand round trips,
            // spread over a few seconds rather than run back to back.
            let now = NIODeadline.now()
            guard now >= nextStart else {
                if pacing == nil {
                    pacing = loop.scheduleTask(deadline: nextStart) { [self] in
                        pacing = nil
                        pump()
                    }
                }
                return
            }
            guard let item = queue.popFirst() else { return }
            nextStart = now + (item.gained ? Self.gainedSpacing : Self.spacing)
            guard let member = membership.view.members[item.peer], member.status == .alive else {
                // Gone again: the rest waits for its next return.
                let dropped = queue.filter { $0.peer == item.peer }.count + 1
                queue.removeAll { $0.peer == item.peer }
                if let left = progress.removeValue(forKey: item.peer) {
                    logger.info(
                        "anti-entropy catch-up stopped: the peer is not alive",
                        metadata: ["peer": "\(left.name)", "partitions_left": "\(dropped)"])
                }
                continue
            }
            running += 1
            antiEntropy.exchangeAndRepair(partition: item.partition, with: member).hop(to: loop).whenComplete {
                [self] result in
                running -= 1
                let keys: Int
                let failed: Bool
                switch result {
                case .success(let outcome): (keys, failed) = (outcome.keysRepaired, outcome.error != nil)
                case .failure: (keys, failed) = (0, true)
                }
                if failed && item.attempt < Self.attempts && progress[item.peer] != nil {
                    queue.append((item.partition, item.peer, item.gained, item.attempt + 1))
                    progress[item.peer]?.keysRepaired += keys
                    progress[item.peer]?.retried += 1
                } else {
                    record(item.peer, keys: keys, failed: failed)
                }
                pump()
            }
        }
    }

    private func record(_ peer: NodeID, keys: Int, failed: Bool) {
        guard var entry = progress[peer] else { return }
        entry.done += 1
        entry.keysRepaired += keys
        if failed { entry.failed += 1 }
        guard entry.done >= entry.total else {
            progress[peer] = entry
            return
        }
        progress[peer] = nil
        let seconds = Double((NIODeadline.now() - entry.started).nanoseconds) / 1e9
        logger.info(
            "anti-entropy catch-up finished",
            metadata: [
                "peer": "\(entry.name)", "partitions": "\(entry.total)", "keys_repaired": "\(entry.keysRepaired)",
                "failed": "\(entry.failed)", "retried": "\(entry.retried)",
                "seconds": "\(String(format: "%.2f", seconds))",
            ])
    }
}
