import ChorusCore
import ChorusStorage
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Ring changes (DESIGN §3, §9), so that every key keeps N replicas and no
/// acknowledged write is lost while nodes come and go:
///
/// - a joining node (`ring=joining`) takes writes for the partitions it will own
///   (`ReplicaPlan.pending`) and fetches what they already hold from their current
///   home replicas; then it becomes a member and serves reads for them;
/// - `chorus leave` streams each of this node's partitions to its next owners,
///   hands off its hints, and only then announces `left`;
/// - when a dead node is removed (`chorus remove`), the nodes that inherit its
///   partitions fetch them from the surviving home replicas.
///
/// Both directions move objects with plain replica writes and partition pages over
/// the encrypted sessions; objects merge by their version vectors, so repeating a
/// transfer is harmless.
final class RingHandoff: Sendable {
    typealias Progress = RingChangeView

    /// Objects asked for per partition page.
    static let pageLimit = 500
    /// Attempts per page or batch before a transfer gives up.
    static let attempts = 5

    let membership: MembershipService
    let replicas: ReplicaStore
    let handoff: HintedHandoff
    let antiEntropy: AntiEntropy
    let settings: StoreSettings
    let loop: EventLoop
    let logger: Logger
    /// Ends the process (after `left`).
    let exit: @Sendable (Int32) -> Void
    /// How long a phase change is given to reach every member before data moves:
    /// the change is sent to each member directly and gossiped, so a few protocol
    /// periods cover a lost datagram.
    let settle: TimeAmount

    private let state = NIOLockedValueBox(
        (progress: Progress.idle, started: NIODeadline.now(), busy: false, lastView: ClusterView?.none))
    /// The settled ring whose displaced copies are to be dropped, and since when it
    /// has been the ring; the last ring cleaned up after.
    private let cleanup = NIOLockedValueBox(
        (ring: [NodeID](), since: NIODeadline.now(), done: [NodeID]?.none))
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)

    init(
        membership: MembershipService, replicas: ReplicaStore, handoff: HintedHandoff, antiEntropy: AntiEntropy,
        settings: StoreSettings, loop: EventLoop, logger: Logger, exit: @escaping @Sendable (Int32) -> Void
    ) {
        self.membership = membership
        self.replicas = replicas
        self.handoff = handoff
        self.antiEntropy = antiEntropy
        self.settings = settings
        self.loop = loop
        self.logger = logger
        self.exit = exit
        self.settle = max(.seconds(1), membership.config.swim.probeInterval.timeAmount * 2)
    }

    var localID: NodeID { membership.localID }
    var maxN: Int { settings.buckets.maxReplication }

    /// Watches the view once a second: finishes a join, and fetches a removed node's
    /// partitions this node inherits.
    func start() {
        let repeated = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .seconds(1)) { [self] _ in
            tick()
        }
        task.withLockedValue { $0 = repeated }
    }

    func stop() {
        task.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    var progress: Progress {
        let phase = membership.ringPhase?.rawValue ?? "member"
        return state.withLockedValue { state in
            var progress = state.progress
            if progress.phase != "left" { progress.phase = phase }
            if progress.state != "idle", progress.state != "done", progress.state != "failed" {
                progress.seconds = Double((NIODeadline.now() - state.started).nanoseconds) / 1e9
            }
            return progress
        }
    }

    private func tick() {
        guard membership.hasJoined else { return }
        let view = membership.view
        let previous = state.withLockedValue { state -> ClusterView? in
            defer { state.lastView = view }
            return state.lastView
        }
        if view.members[localID]?.ringPhase == .joining {
            if begin("joining") { join() }
            return
        }
        scheduleCleanup(view)
        guard let previous, previous.placement != view.placement else { return }
        // Members that left the current ring without streaming their data first.
        let removed = previous.placement.nodes.filter { id in
            !view.placement.nodes.contains(id) && previous.members[id]?.ringPhase != .leaving
                && view.members[id]?.ringPhase != .joining
        }
        guard !removed.isEmpty, view.members[localID]?.ringPhase == nil else { return }
        let gained = (0..<view.placement.partitioner.partitionCount).filter { partition in
            view.placement.homeReplicas(of: partition, n: maxN).contains(localID)
                && !previous.placement.homeReplicas(of: partition, n: maxN).contains(localID)
        }
        guard !gained.isEmpty, begin("rebalancing") else { return }
        logger.notice(
            "fetching partitions inherited from removed members",
            metadata: [
                "removed": "\(removed.map { previous.members[$0]?.name ?? "\($0)" })", "partitions": "\(gained.count)",
            ])
        fetch(gained, settled: true).whenComplete { [self] result in
            finish(result.map { _ in () })
        }
    }

    /// Claims the one transfer slot; false when a transfer is running.
    private func begin(_ transfer: String) -> Bool {
        state.withLockedValue { state in
            guard !state.busy else { return false }
            state.busy = true
            state.started = .now()
            state.progress = Progress(
                phase: "", transfer: transfer, state: "settling", partitionsDone: 0, partitionsTotal: 0, objects: 0,
                bytes: 0, seconds: 0)
            return true
        }
    }

    private func update(_ change: (inout Progress) -> Void) {
        state.withLockedValue { change(&$0.progress) }
    }

    /// Ends the transfer; `left` marks the node gone for good.
    private func finish(_ result: Result<Void, Error>, left: Bool = false) {
        state.withLockedValue { state in
            state.progress.seconds = Double((NIODeadline.now() - state.started).nanoseconds) / 1e9
            switch result {
            case .success:
                state.progress.state = "done"
                if left { state.progress.phase = "left" }
            case .failure(let error):
                state.busy = false
                state.progress.state = "failed"
                state.progress.error = "\(error)"
                logger.error(
                    "ring handoff failed", metadata: ["transfer": "\(state.progress.transfer)", "error": "\(error)"])
            }
            // A node that left stays busy: it takes no further transfer before it exits.
            if !left { state.busy = false }
        }
    }

    /// Logs a finished transfer with what it moved.
    private func logTransfer(_ message: Logger.Message, since started: NIODeadline) {
        let progress = self.progress
        logger.notice(
            message,
            metadata: [
                "partitions": "\(progress.partitionsDone)", "objects": "\(progress.objects)",
                "bytes": "\(progress.bytes)", "seconds": "\(Double((NIODeadline.now() - started).nanoseconds) / 1e9)",
            ])
    }

    struct HandoffError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: - Dropping moved partitions

    /// Once the ring has been settled (nobody joining or leaving) for
    /// `cleanupDelay`, drops this node's copies of partitions it is no longer a
    /// home replica of: they moved to a joining node, which fetched them. Kept,
    /// they would hold stale versions and tombstones nobody reaps, and take disk.
    private func scheduleCleanup(_ view: ClusterView) {
        guard !view.ring.isChanging, view.members[localID]?.ringPhase == nil else { return }
        let ring = view.placement.nodes
        let due = cleanup.withLockedValue { cleanup -> Bool in
            if cleanup.ring != ring {
                cleanup.ring = ring
                cleanup.since = .now()
            }
            // Also once after a start: a restart may have missed the change that moved
            // a partition away.
            return cleanup.done != ring && NIODeadline.now() - cleanup.since >= cleanupDelay
        }
        guard due, begin("dropping moved partitions") else { return }
        let partitions = (0..<settings.partitions).filter {
            !view.placement.homeReplicas(of: $0, n: maxN).contains(localID)
        }
        forEach(partitions) { [self] partition in drop(partition, ring: ring) }.whenComplete { [self] result in
            let progress = self.progress
            if case .success = result {
                cleanup.withLockedValue { $0.done = ring }
                if progress.objects > 0 {
                    logger.notice(
                        "dropped copies of partitions that moved to other nodes",
                        metadata: ["objects": "\(progress.objects)", "bytes": "\(progress.bytes)"])
                }
            }
            finish(result)
        }
    }

    /// How long the ring must stay settled before moved copies are dropped: longer
    /// than any request or gossip round still using the old placement.
    var cleanupDelay: TimeAmount { max(.seconds(10), settle * 5) }

    private func drop(_ partition: Int, ring: [NodeID]) -> EventLoopFuture<Void> {
        // Stop if the ring changed meanwhile: the next settled ring decides again.
        guard membership.view.placement.nodes == ring, !membership.view.ring.isChanging else {
            return loop.makeFailedFuture(HandoffError("the ring changed"))
        }
        let records: [StoredRecord]
        do {
            records = try replicas.store.scan(partition: partition, after: nil, limit: Self.pageLimit)
        } catch {
            return loop.makeFailedFuture(error)
        }
        guard !records.isEmpty else { return loop.makeSucceededVoidFuture() }
        let drops = records.map { record in replicas.drop(record, on: loop) }
        return EventLoopFuture.whenAllSucceed(drops, on: loop).flatMap { [self] dropped in
            update {
                $0.objects += dropped.filter { $0 }.count
                $0.bytes += records.reduce(0) { $0 + $1.value.count }
            }
            // A record rewritten meanwhile is not dropped: stop rather than spin.
            guard dropped.contains(true) else { return loop.makeSucceededVoidFuture() }
            return drop(partition, ring: ring)
        }
    }

    // MARK: - Joining

    /// Fetches every partition this node will own, then becomes a member.
    private func join() {
        let started = NIODeadline.now()
        let incarnation = membership.view.members[localID]?.incarnation
        loop.scheduleTask(in: settle) {}.futureResult.flatMap { [self] () -> EventLoopFuture<Void> in
            let view = membership.view
            let partitions = view.ring.partitions(pendingOn: localID, n: maxN)
            logger.notice("joining: fetching partitions", metadata: ["partitions": "\(partitions.count)"])
            return fetch(partitions, settled: false)
        }.flatMapThrowing { [self] in
            // Suspected or declared dead meanwhile (it refuted with a higher incarnation):
            // coordinators may have skipped it as a pending replica, so fetch again.
            guard membership.view.members[localID]?.incarnation == incarnation else {
                throw HandoffError("this node was suspected while fetching; fetching again")
            }
        }.flatMap { [self] () -> EventLoopFuture<Void> in
            update { $0.state = "done" }
            return membership.setRingPhase(nil)
        }.whenComplete { [self] result in
            if case .success = result { logTransfer("joined the ring", since: started) }
            // On failure the node stays joining and the next tick tries again.
            finish(result)
        }
    }

    /// Pulls `partitions` from their home replicas, one partition at a time. While
    /// joining, the sources are the current home replicas and the objects kept are
    /// those of buckets whose future home replicas include this node; once settled
    /// (a removal), the sources are the other home replicas now.
    private func fetch(_ partitions: [Int], settled: Bool) -> EventLoopFuture<Void> {
        forEach(partitions) { [self] partition in fetchPartition(partition, settled: settled) }
    }

    /// Runs `body` on each partition in turn, counting them in the progress.
    private func forEach(_ partitions: [Int], _ body: @escaping @Sendable (Int) -> EventLoopFuture<Void>)
        -> EventLoopFuture<Void>
    {
        update {
            $0.state = "streaming"
            $0.partitionsTotal = partitions.count
        }
        @Sendable func next(_ index: Int) -> EventLoopFuture<Void> {
            guard index < partitions.count else { return loop.makeSucceededVoidFuture() }
            return body(partitions[index]).flatMap { [self] in
                update { $0.partitionsDone += 1 }
                return next(index + 1)
            }
        }
        return next(0)
    }

    private func fetchPartition(_ partition: Int, settled: Bool) -> EventLoopFuture<Void> {
        let view = membership.view
        let plan = view.ring.plan(partition: partition, n: maxN)
        let localID = self.localID
        let sources = (settled ? plan.home : plan.home + plan.pending).filter { $0 != localID }
        let reachable = sources.compactMap { id in view.isReachable(id) ? view.members[id] : nil }
        guard !reachable.isEmpty || sources.isEmpty else {
            return loop.makeFailedFuture(HandoffError("no replica of partition \(partition) is reachable"))
        }
        if reachable.count < sources.count {
            logger.warning(
                "fetching a partition without its unreachable replicas (anti-entropy repairs them later)",
                metadata: ["partition": "\(partition)", "reachable": "\(reachable.count)/\(sources.count)"])
        }
        // Keep only buckets this node holds the partition for.
        let ring = view.ring
        let keeps: @Sendable (String) -> Bool = { [settings] bucket in
            let plan = ring.plan(partition: partition, n: settings.buckets.properties(of: bucket).n)
            return (settled ? plan.home : plan.home + plan.pending).contains(localID)
        }
        // Everything from one replica; from the others, only what differs (key lists
        // with version digests, as anti-entropy's bulk repair exchanges them).
        @Sendable func next(_ index: Int) -> EventLoopFuture<Void> {
            guard index < reachable.count else { return loop.makeSucceededVoidFuture() }
            guard index > 0 else {
                return pull(partition, from: reachable[0], after: nil, keeps: keeps, attempt: 0).flatMap {
                    next(1)
                }
            }
            return antiEntropy.reconcile(partition: partition, with: reachable[index]).hop(to: loop).flatMap {
                [self] moved in
                update {
                    $0.objects += moved.keys
                    $0.bytes += moved.bytes
                }
                return next(index + 1)
            }
        }
        return next(0)
    }

    /// Pulls the rest of `partition` from `source`, page by page, merging each page
    /// durably before asking for the next.
    private func pull(
        _ partition: Int, from source: Member, after: RepairKey?, keeps: @escaping @Sendable (String) -> Bool,
        attempt: Int
    ) -> EventLoopFuture<Void> {
        let request = ClusterMessage.partitionPage(partition: partition, after: after, limit: Self.pageLimit)
        return membership.sessions.request(request, to: source.address, timeout: .seconds(30)).hop(to: loop)
            .flatMapThrowing { reply -> (entries: [PartitionEntry], complete: Bool) in
                guard case .partitionPageReply(let entries, let complete, let error) = reply else {
                    throw HandoffError("unexpected reply from \(source.name)")
                }
                if let error { throw HandoffError("\(source.name): \(error)") }
                return (entries, complete)
            }
            .flatMap { [self] page in
                let merges = page.entries.filter { keeps($0.bucket) }.map { entry -> EventLoopFuture<Int> in
                    do {
                        let object = try ObjectCodec.decode(entry.object)
                        return replicas.merge(bucket: entry.bucket, key: entry.key, incoming: object, on: loop)
                            .map { _ in entry.object.count }
                    } catch {
                        return loop.makeFailedFuture(
                            HandoffError("unreadable object \(entry.bucket)/\(entry.key) from \(source.name)"))
                    }
                }
                return EventLoopFuture.whenAllSucceed(merges, on: loop).flatMap { [self] sizes in
                    update {
                        $0.objects += sizes.count
                        $0.bytes += sizes.reduce(0, +)
                    }
                    guard !page.complete, let last = page.entries.last else { return loop.makeSucceededVoidFuture() }
                    return pull(
                        partition, from: source, after: RepairKey(bucket: last.bucket, key: last.key), keeps: keeps,
                        attempt: 0)
                }
            }
            .flatMapError { [self] error in
                guard attempt + 1 < Self.attempts else { return loop.makeFailedFuture(error) }
                return loop.scheduleTask(in: .seconds(1)) {}.futureResult.flatMap { [self] in
                    pull(partition, from: source, after: after, keeps: keeps, attempt: attempt + 1)
                }
            }
    }

    /// Answers a partition page request from what this replica stores (on the
    /// session's loop: a read of at most one page).
    static func partitionPage(_ message: ClusterMessage, replicas: ReplicaStore, partitions: Int) -> ClusterMessage {
        guard case .partitionPage(let partition, let after, let requested) = message,
            (0..<partitions).contains(partition)
        else {
            return .partitionPageReply(entries: [], complete: false, error: "no such partition")
        }
        let limit = max(1, min(requested, ClusterCodec.maxPageEntries))
        do {
            let records = try replicas.store.scan(
                partition: partition, after: after.map { ObjectKey(bucket: $0.bucket, key: $0.key) }, limit: limit)
            var entries: [PartitionEntry] = []
            var bytes = 0
            for record in records where bytes < ClusterCodec.partitionPageBytes {
                entries.append(PartitionEntry(bucket: record.bucket, key: record.key, object: record.value))
                bytes += record.value.count
            }
            let complete = entries.count == records.count && records.count < limit
            return .partitionPageReply(entries: entries, complete: complete, error: nil)
        } catch {
            return .partitionPageReply(entries: [], complete: false, error: "\(error)")
        }
    }

    // MARK: - Leaving

    /// `chorus leave`: starts the departure and returns at once; `progress` follows it.
    /// Refused while another transfer runs.
    func leave(force: Bool) -> Result<Progress, HandoffError> {
        guard membership.hasJoined else { return .failure(HandoffError("this node has not joined a cluster yet")) }
        let remaining = membership.view.members.values.filter {
            $0.id != localID && $0.status != .left && $0.ringPhase != .leaving
        }.count
        // Like Cassandra's decommission: refuse to take keys below their replication
        // factor unless told to.
        if remaining < maxN, !force {
            return .failure(
                HandoffError(
                    "after this node leaves, \(remaining) members would remain for a replication factor of \(maxN): keys would keep fewer copies; leave with force to do it anyway"
                ))
        }
        if membership.ringPhase == .joining {
            return leaveWhileJoining()
        }
        guard begin("leaving") else {
            return .failure(
                HandoffError("a ring change is under way on this node (\(progress.phase)); retry when it is done"))
        }
        let started = NIODeadline.now()
        logger.notice("leaving: announcing, then streaming partitions to their next owners")
        membership.setRingPhase(.leaving).flatMap { [self] in
            loop.scheduleTask(in: settle) {}.futureResult
        }.flatMap { [self] () -> EventLoopFuture<Void> in
            let partitions = membership.view.placement.partitions(homedOn: localID, n: maxN)
            return forEach(partitions) { [self] partition in push(partition, after: nil) }
        }.flatMap { [self] () -> EventLoopFuture<Int> in
            update { $0.state = "handing off hints" }
            return handoff.handOffAll()
        }.flatMapThrowing { remaining in
            guard remaining == 0 else {
                throw HandoffError("\(remaining) hints could not be handed to any replica; see `chorus hints`")
            }
        }.whenComplete { [self] result in
            switch result {
            case .success:
                logTransfer("handed off every partition; announcing left", since: started)
                departLeft()
            case .failure(let error):
                finish(.failure(error))
                logger.error("leave aborted; this node stays a member", metadata: ["error": "\(error)"])
                _ = membership.setRingPhase(nil)
            }
        }
        return .success(progress)
    }

    /// A joining node owns nothing yet: every write it took as a pending replica is
    /// also on a quorum of the current home replicas. It hands off its hints and goes.
    private func leaveWhileJoining() -> Result<Progress, HandoffError> {
        state.withLockedValue { state in
            state.busy = true
            state.started = .now()
            state.progress = Progress(
                phase: "", transfer: "leaving", state: "handing off hints", partitionsDone: 0, partitionsTotal: 0,
                objects: 0, bytes: 0, seconds: 0)
        }
        logger.notice("leaving before the join completed: nothing to stream")
        handoff.handOffAll().whenComplete { [self] result in
            if case .success(let remaining) = result, remaining > 0 {
                logger.warning("hints left undelivered", metadata: ["count": "\(remaining)"])
            }
            departLeft()
        }
        return .success(progress)
    }

    private func departLeft() {
        finish(.success(()), left: true)
        membership.recordLeft()
        membership.depart(.left).whenComplete { [self] _ in
            // Give `chorus leave` a moment to read the final progress.
            loop.scheduleTask(in: .milliseconds(300)) { [self] in exit(0) }
        }
    }

    /// Sends one page of `partition` to the objects' pending owners, then the next.
    private func push(_ partition: Int, after: ObjectKey?) -> EventLoopFuture<Void> {
        let records: [StoredRecord]
        do {
            records = try replicas.store.scan(partition: partition, after: after, limit: Self.pageLimit)
        } catch {
            return loop.makeFailedFuture(error)
        }
        guard let last = records.last else { return loop.makeSucceededVoidFuture() }
        let view = membership.view
        var sends: [EventLoopFuture<Void>] = []
        for record in records {
            let plan = view.ring.plan(partition: partition, n: settings.buckets.properties(of: record.bucket).n)
            for owner in plan.pending where owner != localID {
                sends.append(send(record, to: owner, attempt: 0))
            }
        }
        return EventLoopFuture.andAllSucceed(sends, on: loop).flatMap { [self] in
            update {
                $0.objects += records.count
                $0.bytes += records.reduce(0) { $0 + $1.value.count }
            }
            guard records.count == Self.pageLimit else { return loop.makeSucceededVoidFuture() }
            return push(partition, after: last.objectKey)
        }
    }

    private func send(_ record: StoredRecord, to owner: NodeID, attempt: Int) -> EventLoopFuture<Void> {
        guard let member = membership.view.members[owner], membership.view.isReachable(owner) else {
            return retry(record, to: owner, attempt: attempt, error: HandoffError("next owner \(owner) is unreachable"))
        }
        let message = ClusterMessage.replicaWrite(
            ReplicaWrite(bucket: record.bucket, key: record.key, object: record.value))
        return membership.sessions.request(message, to: member.address, timeout: .seconds(10)).hop(to: loop)
            .flatMapThrowing { reply in
                guard case .replicaWriteReply(nil) = reply else {
                    throw HandoffError("\(member.name) did not store \(record.bucket)/\(record.key): \(reply)")
                }
            }
            .flatMapError { [self] error in retry(record, to: owner, attempt: attempt, error: error) }
    }

    private func retry(_ record: StoredRecord, to owner: NodeID, attempt: Int, error: Error) -> EventLoopFuture<Void> {
        guard attempt + 1 < Self.attempts else { return loop.makeFailedFuture(error) }
        return loop.scheduleTask(in: .seconds(1)) {}.futureResult.flatMap { [self] in
            send(record, to: owner, attempt: attempt + 1)
        }
    }
}
