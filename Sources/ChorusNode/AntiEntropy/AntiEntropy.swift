import ChorusCore
import ChorusStorage
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Anti-entropy (DESIGN §6): keeps a `TictacTree` per partition this node stores,
/// current on every write (`ReplicaStore.onChange`), rebuilt from storage at start-up;
/// periodically compares one partition's tree with a live co-replica's over the
/// encrypted UDP channel (`TreeExchange`), then repairs the differing segments over a
/// TCP session: key/digest lists, then the objects one side lacks or holds at another
/// version, merged with DVV sync on both sides.
///
/// It also reaps tombstones (DESIGN §4; README "Anti-entropy"): see `reaperPass`.
///
/// Thread-safety: the trees are behind a lock (the store's writer thread updates
/// them); everything else is touched only on `loop`.
final class AntiEntropy: @unchecked Sendable {
    let settings: StoreSettings
    let localID: NodeID
    let membership: MembershipService
    let replicas: ReplicaStore
    let loop: EventLoop
    let logger: Logger
    let shape = TictacShape.standard
    let exchangeSettings = TreeExchange.Settings()
    /// Object moves in flight at once within one repair.
    static let repairWindow = 16

    private let trees = NIOLockedValueBox<[Int: TictacTree]>([:])
    private let rebuildInfo = NIOLockedValueBox((trees: 0, keys: 0, seconds: 0.0))

    // Loop-confined state.
    private var initiators: [UInt64: ExchangeRun] = [:]
    private var stats = Stats()
    /// Per partition: when it was last exchanged, with whom, and keys that moved.
    private var lastExchange: [Int: AntiEntropyView.PartitionExchange] = [:]
    private var cursor = 0
    private var backgroundRunning = 0
    private var task: RepeatedTask?
    private var nextSlot = NIODeadline.now()
    private var round: RoundState?
    private var roundCounter: UInt64 = 0
    private var rng = SystemRandomNumberGenerator()
    private var reaperTask: RepeatedTask?
    /// Catch-ups with returning co-replicas (nil while background anti-entropy is off).
    private var catchUp: CatchUpRunner?
    /// Set by `stop()`: no new exchange starts.
    private var stopping = false
    private var reaping = false
    /// Where the next reaper pass resumes: a partition and the last key scanned in it.
    private var reapCursor: (partition: Int, after: ObjectKey?) = (0, nil)
    /// Objects one reaper pass scans at most (it resumes where the last one stopped).
    static let reapScanBudget = 20_000
    /// Expired tombstones one reaper pass checks with the replicas at most.
    static let reapCandidateLimit = 1_000

    struct Stats {
        var exchanges: UInt64 = 0
        var equal: UInt64 = 0
        /// Exchanges that found differing segments and finished their repair.
        var repaired: UInt64 = 0
        var failed: UInt64 = 0
        /// Tombstones this node physically removed (as primary or at its request).
        var tombstonesReaped: UInt64 = 0
        var answered: UInt64 = 0
        var malformed: UInt64 = 0
        var keysRepaired: UInt64 = 0
        var udpBytes: UInt64 = 0
        var tcpBytes: UInt64 = 0
    }

    /// One exchange this node initiated.
    final class ExchangeRun: @unchecked Sendable {
        var exchange: TreeExchange
        let peer: Member
        let promise: EventLoopPromise<[Int]>
        var timer: Scheduled<Void>?
        var udpBytes = 0

        init(exchange: TreeExchange, peer: Member, promise: EventLoopPromise<[Int]>) {
            self.exchange = exchange
            self.peer = peer
            self.promise = promise
        }
    }

    /// What one exchange (and its repair) did.
    struct Outcome: Sendable {
        var partition: Int
        var peer: String
        var differingSegments = 0
        var keysRepaired = 0
        var udpBytes = 0
        var tcpBytes = 0
        var error: String?
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(
        settings: StoreSettings, membership: MembershipService, replicas: ReplicaStore, loop: EventLoop, logger: Logger
    ) {
        self.settings = settings
        self.localID = membership.localID
        self.membership = membership
        self.replicas = replicas
        self.loop = loop
        self.logger = logger
        replicas.onChange { [trees, shape] change in
            trees.withLockedValue { trees in
                change.apply(to: &trees[change.partition, default: TictacTree(shape: shape)])
            }
        }
        membership.antiEntropyReceiver = { [self] sender, address, payload, size in
            loop.execute { self.received(payload, from: sender, at: address, size: size) }
        }
    }

    /// The tree of `partition` now (empty if this node stores none of its keys).
    func tree(_ partition: Int) -> TictacTree {
        trees.withLockedValue { $0[partition] } ?? TictacTree(shape: shape)
    }

    // MARK: - Rebuild

    /// Builds every partition's tree from storage. Run before the node serves
    /// writes, so no change can slip between the scan and the hook.
    func rebuild() throws {
        let started = NIODeadline.now()
        let partitions = settings.partitions
        var lastLog = started
        let (built, keys) = try Self.buildTrees(from: replicas.store, partitions: partitions, shape: shape) {
            partition, keys in
            let now = NIODeadline.now()
            guard now - lastLog > .seconds(5) else { return }
            lastLog = now
            logger.info(
                "rebuilding anti-entropy trees",
                metadata: ["partitions": "\(partition + 1)/\(partitions)", "keys": "\(keys)"])
        }
        let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        trees.withLockedValue { $0 = built }
        rebuildInfo.withLockedValue { $0 = (built.count, keys, seconds) }
        logger.info(
            "anti-entropy trees rebuilt",
            metadata: [
                "partitions": "\(partitions)", "trees": "\(built.count)", "keys": "\(keys)",
                "seconds": "\(String(format: "%.3f", seconds))",
            ])
    }

    /// The tree of every partition of `store` holding keys, scanned page by page;
    /// `progress(partition, keys so far)` after each partition. Unreadable objects
    /// are skipped (a read of them fails the same way).
    static func buildTrees(
        from store: any ObjectStore, partitions: Int, shape: TictacShape, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> (trees: [Int: TictacTree], keys: Int) {
        var built: [Int: TictacTree] = [:]
        var keys = 0
        for partition in 0..<partitions {
            var tree = TictacTree(shape: shape)
            var after: ObjectKey?
            var count = 0
            while true {
                let page = try store.scan(partition: partition, after: after, limit: 1000)
                guard let last = page.last else { break }
                for record in page {
                    guard let object = try? ObjectCodec.decode(record.value) else { continue }
                    tree.insert(bucket: record.bucket, key: record.key, digest: VersionDigest.of(object))
                    count += 1
                }
                after = last.objectKey
            }
            if count > 0 { built[partition] = tree }
            keys += count
            progress(partition, keys)
        }
        return (built, keys)
    }

    // MARK: - Schedule

    /// Starts the periodic exchanges (none when the concurrency is 0) and the
    /// tombstone reaper (on the same interval, whatever the concurrency: it checks
    /// every replica's copy itself, so it does not depend on the exchanges).
    func start() {
        let interval = max(settings.antiEntropyInterval, .milliseconds(10)).timeAmount
        loop.execute { [self] in
            reaperTask = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                reaperPass()
            }
            guard settings.antiEntropyConcurrency > 0 else { return }
            task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                backgroundRound()
            }
            let runner = CatchUpRunner(
                antiEntropy: self, membership: membership, replication: replication,
                window: settings.antiEntropyConcurrency, logger: logger)
            runner.start()
            catchUp = runner
        }
    }

    /// Stops the schedule and fails the exchanges in flight, so no promise outlives the
    /// event loops unfulfilled; later exchanges fail at once. Waits for that unless
    /// called on `loop`.
    func stop() {
        let stopped = loop.submit { [self] in
            stopping = true
            task?.cancel()
            task = nil
            reaperTask?.cancel()
            reaperTask = nil
            catchUp?.stopOnLoop()
            catchUp = nil
            for run in Array(initiators.values) { finish(run, .failure(Failure(description: "anti-entropy stopped"))) }
        }
        if !loop.inEventLoop { try? stopped.wait() }
    }

    /// Replication factor the trees cover: the largest of any bucket.
    private var replication: Int { settings.buckets.maxReplication }

    /// Live co-replicas of `partition` (home replicas other than this node).
    func coReplicas(of partition: Int, view: ClusterView) -> [Member] {
        view.placement.homeReplicas(of: partition, n: replication)
            .filter { $0 != localID && view.members[$0]?.status == .alive }
            .compactMap { view.members[$0] }
    }

    private func backgroundRound() {
        let view = membership.view
        let homed = view.placement.partitions(homedOn: localID, n: replication)
        guard !homed.isEmpty else { return }
        var attempts = 0
        while backgroundRunning < settings.antiEntropyConcurrency, attempts < homed.count {
            attempts += 1
            let partition = homed[cursor % homed.count]
            cursor = (cursor + 1) % max(homed.count, 1)
            let peers = coReplicas(of: partition, view: view)
            guard let peer = peers.randomElement(using: &rng) else { continue }
            backgroundRunning += 1
            exchangeAndRepair(partition: partition, with: peer).whenComplete { [self] result in
                backgroundRunning -= 1
                if case .success(let outcome) = result, outcome.keysRepaired > 0 {
                    logger.info(
                        "anti-entropy repaired keys",
                        metadata: [
                            "partition": "\(partition)", "peer": "\(outcome.peer)",
                            "keys": "\(outcome.keysRepaired)", "segments": "\(outcome.differingSegments)",
                        ])
                }
            }
        }
    }

    // MARK: - Exchange (initiator)

    /// Compares `partition` with `peer`, then repairs what differs. On `loop`.
    func exchangeAndRepair(partition: Int, with peer: Member) -> EventLoopFuture<Outcome> {
        let started = exchange(partition: partition, with: peer)
        return started.future.flatMap { [self] segments -> EventLoopFuture<Outcome> in
            var outcome = Outcome(partition: partition, peer: peer.name)
            outcome.udpBytes = started.run.udpBytes
            outcome.differingSegments = segments.count
            stats.exchanges += 1
            lastExchange[partition] = AntiEntropyView.PartitionExchange(
                at: WallClock.nanoseconds(), peer: peer.name, segments: segments.count, keysRepaired: 0)
            guard !segments.isEmpty else {
                stats.equal += 1
                return loop.makeSucceededFuture(outcome)
            }
            let base = outcome
            return repair(partition: partition, segments: segments, with: peer).map { [self] moved in
                var outcome = base
                outcome.keysRepaired = moved.keys
                outcome.tcpBytes = moved.bytes
                lastExchange[partition]?.keysRepaired = moved.keys
                stats.keysRepaired += UInt64(moved.keys)
                stats.repaired += 1
                return outcome
            }
        }.flatMapError { [self] error in
            stats.failed += 1
            logger.debug(
                "anti-entropy exchange failed",
                metadata: ["partition": "\(partition)", "peer": "\(peer.name)", "error": "\(error)"])
            var outcome = Outcome(partition: partition, peer: peer.name)
            outcome.udpBytes = started.run.udpBytes
            outcome.error = "\(error)"
            return loop.makeSucceededFuture(outcome)
        }
    }

    /// Runs the summary exchange; completes with the differing segments.
    private func exchange(partition: Int, with peer: Member) -> (future: EventLoopFuture<[Int]>, run: ExchangeRun) {
        let id = UInt64.random(in: 1...UInt64.max, using: &rng)
        let run = ExchangeRun(
            exchange: TreeExchange(
                initiating: id, partition: partition, tree: tree(partition), settings: exchangeSettings),
            peer: peer, promise: loop.makePromise())
        guard !stopping else {
            run.promise.fail(Failure(description: "anti-entropy stopped"))
            return (run.promise.futureResult, run)
        }
        initiators[id] = run
        drive(run, run.exchange.start(now: MembershipService.monotonicNow()))
        return (run.promise.futureResult, run)
    }

    /// Carries out an exchange's effects and arms its timer.
    private func drive(_ run: ExchangeRun, _ initial: [TreeExchange.Effect]) {
        var effects = initial
        while !effects.isEmpty {
            let effect = effects.removeFirst()
            switch effect {
            case .send(let message):
                send(message, to: run.peer.address, run: run)
            case .finished(let segments):
                finish(run, .success(segments))
            case .failed(let failure):
                finish(run, .failure(Failure(description: "\(failure)")))
            }
        }
        run.timer?.cancel()
        run.timer = nil
        guard !run.exchange.isDone, let deadline = run.exchange.nextDeadline else { return }
        let now = MembershipService.monotonicNow()
        let delay = deadline > now ? deadline.since(now) : .zero
        run.timer = loop.scheduleTask(in: max(.milliseconds(1), delay.timeAmount)) { [self] in
            run.timer = nil
            drive(run, run.exchange.tick(now: MembershipService.monotonicNow()))
        }
    }

    private func finish(_ run: ExchangeRun, _ result: Result<[Int], Error>) {
        initiators[run.exchange.exchangeID] = nil
        run.timer?.cancel()
        run.timer = nil
        run.promise.completeWith(result)
    }

    private func send(_ message: ExchangeMessage, to address: Endpoint, run: ExchangeRun?) {
        membership.sendAntiEntropy(ExchangeCodec.encode(message), to: address).hop(to: loop).whenSuccess {
            [self] size in
            stats.udpBytes += UInt64(size)
            run?.udpBytes += size
        }
    }

    // MARK: - Exchange (responder and replies)

    private func received(_ payload: [UInt8], from sender: NodeID, at address: Endpoint, size: Int) {
        let message: ExchangeMessage
        do {
            message = try ExchangeCodec.decode(payload)
        } catch {
            stats.malformed += 1
            return
        }
        if let run = initiators[message.exchangeID] {
            guard run.peer.id == sender else { return }
            stats.udpBytes += UInt64(size)
            run.udpBytes += size
            drive(run, run.exchange.received(message, now: MembershipService.monotonicNow()))
            return
        }
        // Responder: stateless, from the current tree.
        let reply: ExchangeMessage?
        if message.partition < 0 || message.partition >= settings.partitions {
            reply = ExchangeMessage(
                exchangeID: message.exchangeID, partition: message.partition, body: .refused(.badRequest))
        } else if !membership.view.placement.homeReplicas(of: message.partition, n: replication).contains(localID) {
            reply =
                TreeExchange.answer(message, from: tree(message.partition)).map { _ in
                    ExchangeMessage(
                        exchangeID: message.exchangeID, partition: message.partition, body: .refused(.notReplica))
                }
        } else {
            reply = TreeExchange.answer(message, from: tree(message.partition))
        }
        guard let reply else { return }
        stats.answered += 1
        send(reply, to: address, run: nil)
    }

    // MARK: - Bulk repair (TCP)

    /// This node's (key, digest) entries of `segments` of `partition`, from storage.
    /// The keys of `partition` in `segments` (nil: all of them) with their version digests.
    func entries(partition: Int, segments: Set<Int>?) throws -> [RepairEntry] {
        var entries: [RepairEntry] = []
        var after: ObjectKey?
        while true {
            let page = try replicas.store.scan(partition: partition, after: after, limit: 1000)
            guard let last = page.last else { break }
            for record in page
            where segments?.contains(TictacTree.segment(bucket: record.bucket, key: record.key, shape: shape)) ?? true {
                guard let object = try? ObjectCodec.decode(record.value) else { continue }
                entries.append(RepairEntry(bucket: record.bucket, key: record.key, digest: VersionDigest.of(object)))
                if entries.count >= ClusterCodec.maxRepairEntries { return entries }
            }
            after = last.objectKey
        }
        return entries
    }

    /// A peer's `repairKeys` request.
    func handleRepairKeys(_ message: ClusterMessage) -> EventLoopFuture<ClusterMessage> {
        guard case .repairKeys(let partition, let segmentCount, let segments) = message else {
            return loop.makeSucceededFuture(.refused(reason: "not a repair request"))
        }
        // Segment count 0 with no segments asks for the whole partition (ring handoff).
        let whole = segmentCount == 0 && segments.isEmpty
        guard partition >= 0, partition < settings.partitions, whole || segmentCount == shape.segmentCount,
            segments.allSatisfy({ $0 >= 0 && $0 < segmentCount })
        else {
            return loop.makeSucceededFuture(.repairKeysReply(entries: [], error: "bad repair request"))
        }
        return loop.submit { [self] in
            do {
                return .repairKeysReply(
                    entries: try entries(partition: partition, segments: whole ? nil : Set(segments)), error: nil)
            } catch {
                return .repairKeysReply(entries: [], error: "\(error)")
            }
        }
    }

    /// Approximate wire size of a key list reply.
    private static func size(of entries: [RepairEntry]) -> Int {
        entries.reduce(10) { $0 + 16 + $1.bucket.utf8.count + $1.key.utf8.count }
    }

    /// Exchanges key lists for `segments` with `peer` and moves what differs.
    /// `segments` nil: the whole partition.
    private func repair(partition: Int, segments: [Int]?, with peer: Member)
        -> EventLoopFuture<(keys: Int, bytes: Int)>
    {
        let request = ClusterMessage.repairKeys(
            partition: partition, segmentCount: segments == nil ? 0 : shape.segmentCount, segments: segments ?? [])
        let requestBytes = 13 + 4 * (segments?.count ?? 0)
        return membership.sessions.request(request, to: peer.address, timeout: .seconds(30)).hop(to: loop)
            .flatMapThrowing { [self] reply -> (RepairPlan, Int) in
                guard case .repairKeysReply(let theirs, let error) = reply else {
                    throw Failure(description: "unexpected reply to repairKeys")
                }
                if let error { throw Failure(description: "peer: \(error)") }
                let ours = try entries(partition: partition, segments: segments.map(Set.init))
                let plan = RepairPlan(
                    ours: ours.map { ($0.repairKey, $0.digest) }, theirs: theirs.map { ($0.repairKey, $0.digest) })
                stats.tcpBytes += UInt64(requestBytes + Self.size(of: theirs))
                return (plan, requestBytes + Self.size(of: theirs))
            }
            .flatMap { [self] plan, listBytes in
                move(plan, partition: partition, peer: peer).map { moved in
                    (moved.keys, listBytes + moved.bytes)
                }
            }
    }

    /// Ring handoff: after a joining node has pulled `partition` from one replica, it
    /// reconciles with each other replica by key lists, moving only what differs.
    func reconcile(partition: Int, with peer: Member) -> EventLoopFuture<(keys: Int, bytes: Int)> {
        repair(partition: partition, segments: nil, with: peer)
    }

    /// Pushes our copies of `plan.keysToSend`, fetches and merges theirs of
    /// `plan.keysToFetch`, throttled to `repair_rate` objects a second.
    private func move(_ plan: RepairPlan, partition: Int, peer: Member) -> EventLoopFuture<(keys: Int, bytes: Int)> {
        let ring = membership.view.ring
        // Home replicas, and pending ones while the ring changes.
        let homes = { (bucket: String) -> [NodeID] in
            ring.plan(partition: partition, n: self.settings.buckets.properties(of: bucket).n).writeTargets
        }
        // Only to and from home replicas of each key's bucket.
        let sends = plan.keysToSend.filter { homes($0.bucket).contains(peer.id) }
        let fetches = plan.keysToFetch.filter { homes($0.bucket).contains(localID) }
        var operations: [@Sendable () -> EventLoopFuture<(moved: Bool, bytes: Int)>] = []
        for key in sends {
            operations.append { [self] in push(key, partition: partition, to: peer) }
        }
        for key in fetches {
            operations.append { [self] in fetch(key, from: peer) }
        }
        let keys = sends + fetches
        return runThrottled(operations).map { outcomes in
            var repaired = Set<RepairKey>()
            var bytes = 0
            for (index, outcome) in outcomes.enumerated() {
                guard let outcome else { continue }
                bytes += outcome.bytes
                if outcome.moved { repaired.insert(keys[index]) }
            }
            return (repaired.count, bytes)
        }
    }

    private func push(_ key: RepairKey, partition: Int, to peer: Member) -> EventLoopFuture<(moved: Bool, bytes: Int)> {
        let stored: [UInt8]?
        do {
            stored = try replicas.store.get(partition: partition, bucket: key.bucket, key: key.key)
        } catch {
            return loop.makeSucceededFuture((false, 0))
        }
        guard let stored else { return loop.makeSucceededFuture((false, 0)) }
        let message = ClusterMessage.replicaWrite(ReplicaWrite(bucket: key.bucket, key: key.key, object: stored))
        let bytes = 20 + key.bucket.utf8.count + key.key.utf8.count + stored.count
        return membership.sessions.request(message, to: peer.address, timeout: .seconds(10)).hop(to: loop)
            .map { [self] reply in
                stats.tcpBytes += UInt64(bytes + 2)
                if case .replicaWriteReply(nil) = reply { return (true, bytes + 2) }
                return (false, bytes)
            }
            .recover { _ in (false, 0) }
    }

    private func fetch(_ key: RepairKey, from peer: Member) -> EventLoopFuture<(moved: Bool, bytes: Int)> {
        let message = ClusterMessage.replicaRead(bucket: key.bucket, key: key.key)
        let requestBytes = 9 + key.bucket.utf8.count + key.key.utf8.count
        return membership.sessions.request(message, to: peer.address, timeout: .seconds(10)).hop(to: loop)
            .flatMap { [self] reply -> EventLoopFuture<(moved: Bool, bytes: Int)> in
                guard case .replicaReadReply(let bytes?, nil) = reply, let object = try? ObjectCodec.decode(bytes)
                else { return loop.makeSucceededFuture((false, requestBytes)) }
                let total = requestBytes + 7 + bytes.count
                stats.tcpBytes += UInt64(total)
                return replicas.merge(bucket: key.bucket, key: key.key, incoming: object, on: loop)
                    .map { _ in (true, total) }
                    .recover { _ in (false, total) }
            }
            .recover { _ in (false, 0) }
    }

    // MARK: - Tombstone reaping

    /// A tombstone this node's scan found past the grace period, in a partition it is
    /// the primary of.
    struct ReapCandidate: Sendable {
        var partition: Int
        var bucket: String
        var key: String
        var object: StoredObject
    }

    enum ReapResult: Sendable {
        case reaped
        /// A home replica is down or unreachable: not even asked.
        case replicaDown
        /// Checked, and not every replica holds the same tombstone (or a write raced in).
        case kept
    }

    /// One pass of the tombstone reaper (on `loop`, every `anti_entropy_interval`).
    ///
    /// A deleted key's tombstone may be removed only once every home replica holds it,
    /// or a replica that missed the delete would bring the value back through read
    /// repair, handoff or anti-entropy. The pass:
    ///
    /// 1. scans (at most `reapScanBudget` objects, resuming where the last pass
    ///    stopped) the partitions this node is the *primary* of (first of the
    ///    partition's ranking), so exactly one node starts the reap of a key, for
    ///    tombstones whose newest stamp is older than `store.tombstone_grace`
    ///    (`TombstoneReaping.isExpiredTombstone`);
    /// 2. for each, skips it if any other home replica is not alive, else reads every
    ///    other home replica's copy (`replicaRead`) and goes on only if each is the same
    ///    tombstone: deleted, causally equal, same `VersionDigest`
    ///    (`TombstoneReaping.decide`);
    /// 3. sends `reapTombstone(bucket, key, digest)` to each of them: each deletes its
    ///    own copy only if its digest still equals `digest`, atomically in the store's
    ///    write path (`ReplicaStore.reap`), and drops the key from its tree;
    /// 4. if all of them did, deletes its own copy the same way, last: until then the
    ///    primary still holds the tombstone, and anti-entropy hands it back to any
    ///    replica that reaped while another did not.
    ///
    /// A write that raced in changes the digest, so the conditional deletes keep it.
    /// Hints are never reaped: one carrying the tombstone merges as a delete.
    private func reaperPass() {
        guard !reaping else { return }
        let view = membership.view
        let primaries = (0..<settings.partitions).filter { view.placement.ranking(of: $0).first == localID }
        guard !primaries.isEmpty else { return }
        let now = WallClock.nanoseconds()
        let grace = UInt64(max(0, settings.tombstoneGrace.timeAmount.nanoseconds))
        let candidates: [ReapCandidate]
        do {
            candidates = try reapCandidates(primaries: primaries, now: now, grace: grace)
        } catch {
            logger.warning("tombstone reaper cannot scan the store", metadata: ["error": "\(error)"])
            return
        }
        guard !candidates.isEmpty else { return }
        reaping = true
        let results = candidates.map { candidate -> @Sendable () -> EventLoopFuture<ReapResult> in
            { [self] in reap(candidate, view: view, now: now, grace: grace) }
        }
        let outcomes = NIOLockedValueBox<[ReapResult]>([])
        let operations: [@Sendable () -> EventLoopFuture<Void>] = results.map { operation in
            { operation().map { result in outcomes.withLockedValue { $0.append(result) } } }
        }
        runWindowed(operations, window: 8).whenComplete { [self] _ in
            reaping = false
            let results = outcomes.withLockedValue { $0 }
            let reaped = results.filter { if case .reaped = $0 { true } else { false } }.count
            guard reaped > 0 else { return }
            let down = results.filter { if case .replicaDown = $0 { true } else { false } }.count
            logger.info(
                "reaped tombstones",
                metadata: [
                    "keys": "\(reaped)", "checked": "\(results.count)", "kept": "\(results.count - reaped - down)",
                    "replica_down": "\(down)",
                ])
        }
    }

    /// Expired tombstones of `primaries`, scanning from `reapCursor` on.
    private func reapCandidates(primaries: [Int], now: UInt64, grace: UInt64) throws -> [ReapCandidate] {
        var candidates: [ReapCandidate] = []
        var scanned = 0
        var index = primaries.firstIndex { $0 >= reapCursor.partition } ?? 0
        var after = primaries[index] == reapCursor.partition ? reapCursor.after : nil
        for _ in 0..<primaries.count {
            let partition = primaries[index]
            while true {
                let page = try replicas.store.scan(partition: partition, after: after, limit: 500)
                guard let last = page.last else { break }
                scanned += page.count
                for record in page {
                    guard let object = try? ObjectCodec.decode(record.value),
                        TombstoneReaping.isExpiredTombstone(object, now: now, grace: grace)
                    else { continue }
                    candidates.append(
                        ReapCandidate(partition: partition, bucket: record.bucket, key: record.key, object: object))
                }
                after = last.objectKey
                if scanned >= Self.reapScanBudget || candidates.count >= Self.reapCandidateLimit {
                    reapCursor = (partition, after)
                    return candidates
                }
            }
            index = (index + 1) % primaries.count
            after = nil
            reapCursor = (primaries[index], nil)
        }
        return candidates
    }

    /// Steps 2 to 4 of `reaperPass` for one key.
    private func reap(_ candidate: ReapCandidate, view: ClusterView, now: UInt64, grace: UInt64)
        -> EventLoopFuture<ReapResult>
    {
        // Pending replicas (a ring change under way) must hold the tombstone too.
        let plan = view.ring.plan(
            partition: candidate.partition, n: settings.buckets.properties(of: candidate.bucket).n)
        let homes = plan.writeTargets
        guard homes.first == localID else { return loop.makeSucceededFuture(.kept) }
        var alive: [Member] = []
        for id in homes.dropFirst() where id != localID {
            guard let member = view.members[id], member.status == .alive else {
                return loop.makeSucceededFuture(.replicaDown)
            }
            alive.append(member)
        }
        let peers = alive
        let (bucket, key) = (candidate.bucket, candidate.key)
        let reads = peers.map { peer in
            membership.sessions.request(.replicaRead(bucket: bucket, key: key), to: peer.address, timeout: .seconds(10))
                .map { reply -> StoredObject? in
                    guard case .replicaReadReply(let bytes?, nil) = reply else { return nil }
                    return try? ObjectCodec.decode(bytes)
                }
                .recover { _ in nil }
        }
        return EventLoopFuture.whenAllSucceed(reads, on: loop).flatMap { [self] copies in
            let decision = TombstoneReaping.decide(ours: candidate.object, copies: copies, now: now, grace: grace)
            guard decision == .reap else {
                logger.debug(
                    "tombstone kept", metadata: ["bucket": "\(bucket)", "key": "\(key)", "reason": "\(decision)"])
                return loop.makeSucceededFuture(.kept)
            }
            let digest = VersionDigest.of(candidate.object)
            let reaps = peers.map { peer in
                membership.sessions.request(
                    .reapTombstone(bucket: bucket, key: key, digest: digest), to: peer.address, timeout: .seconds(10)
                )
                .map { reply in
                    if case .reapTombstoneReply(true, nil) = reply { return true }
                    return false
                }
                .recover { _ in false }
            }
            return EventLoopFuture.whenAllSucceed(reaps, on: loop).flatMap { [self] reaped in
                guard reaped.allSatisfy({ $0 }) else { return loop.makeSucceededFuture(.kept) }
                return reapLocally(bucket: bucket, key: key, digest: digest).map { $0 ? .reaped : .kept }
            }
        }
    }

    /// Deletes this node's copy if it is still the tombstone of `digest`; counts it.
    private func reapLocally(bucket: String, key: String, digest: UInt64) -> EventLoopFuture<Bool> {
        replicas.reap(bucket: bucket, key: key, digest: digest, on: loop).hop(to: loop)
            .map { [self] reaped in
                if reaped { stats.tombstonesReaped += 1 }
                return reaped
            }
            .recover { [self] error in
                logger.warning(
                    "cannot reap tombstone", metadata: ["bucket": "\(bucket)", "key": "\(key)", "error": "\(error)"])
                return false
            }
    }

    /// A primary's `reapTombstone` request.
    func handleReapTombstone(_ message: ClusterMessage) -> EventLoopFuture<ClusterMessage> {
        guard case .reapTombstone(let bucket, let key, let digest) = message else {
            return loop.makeSucceededFuture(.refused(reason: "not a reap request"))
        }
        return reapLocally(bucket: bucket, key: key, digest: digest).map {
            ClusterMessage.reapTombstoneReply(reaped: $0, error: nil)
        }
    }

    // MARK: - Full rounds (`chorus repair`)

    /// A full round: every partition this node replicates (or `partition`),
    /// compared with every live co-replica (or `node`).
    final class RoundState: @unchecked Sendable {
        let id: UInt64
        let startedAt = NIODeadline.now()
        var total = 0
        var done = 0
        var finished = false
        var compared = Set<Int>()
        var skipped: [Int] = []
        var outcomes: [Outcome] = []

        init(id: UInt64) { self.id = id }
    }

    /// Starts a full round now (or returns the one running). On any thread.
    func startRound(partition: Int?, node: String?) -> EventLoopFuture<RepairView> {
        loop.submit { [self] in
            if let round, !round.finished { return view(of: round) }
            roundCounter += 1
            let state = RoundState(id: roundCounter)
            round = state
            let view = membership.view
            var partitions = view.placement.partitions(homedOn: localID, n: replication)
            if let partition { partitions = partitions.filter { $0 == partition } }
            var work: [(partition: Int, peers: [Member])] = []
            for p in partitions {
                var peers = coReplicas(of: p, view: view)
                if let node { peers = peers.filter { $0.name == node } }
                if peers.isEmpty { state.skipped.append(p) } else { work.append((p, peers)) }
            }
            state.total = work.reduce(0) { $0 + $1.peers.count }
            logger.info("anti-entropy repair round started", metadata: ["exchanges": "\(state.total)"])
            @Sendable func one(_ partition: Int, _ peer: Member) -> EventLoopFuture<Void> {
                exchangeAndRepair(partition: partition, with: peer).flatMap { [self] outcome in
                    // One retry for a lost or refused exchange.
                    outcome.error == nil
                        ? loop.makeSucceededFuture(outcome) : exchangeAndRepair(partition: partition, with: peer)
                }.map { outcome in
                    state.done += 1
                    state.outcomes.append(outcome)
                    if outcome.error == nil { state.compared.insert(outcome.partition) }
                }
            }
            // A partition's co-replicas one after the other (what the first repair
            // brought is not fetched again from the second); partitions in parallel.
            let operations: [@Sendable () -> EventLoopFuture<Void>] = work.map { item in
                { [self] in
                    item.peers.reduce(loop.makeSucceededVoidFuture()) { previous, peer in
                        previous.flatMap { one(item.partition, peer) }
                    }
                }
            }
            runWindowed(operations, window: 4).whenComplete { [self] _ in
                state.finished = true
                let report = self.view(of: state)
                logger.info(
                    "anti-entropy repair round finished",
                    metadata: [
                        "partitions": "\(report.partitions)", "keys_repaired": "\(report.keysRepaired)",
                        "udp_bytes": "\(report.udpBytes)", "tcp_bytes": "\(report.tcpBytes)",
                        "failed": "\(report.failed)",
                    ])
            }
            return self.view(of: state)
        }
    }

    /// The running or last round; nil if none ran.
    func roundView() -> EventLoopFuture<RepairView?> {
        loop.submit { [self] in round.map { view(of: $0) } }
    }

    private func view(of state: RoundState) -> RepairView {
        let failed = state.outcomes.filter { $0.error != nil }
        return RepairView(
            round: state.id, running: !state.finished, exchangesTotal: state.total, exchangesDone: state.done,
            partitions: state.compared.count, skippedPartitions: state.skipped,
            keysRepaired: state.outcomes.reduce(0) { $0 + $1.keysRepaired },
            udpBytes: state.outcomes.reduce(0) { $0 + $1.udpBytes },
            tcpBytes: state.outcomes.reduce(0) { $0 + $1.tcpBytes }, failed: failed.count,
            seconds: Double((NIODeadline.now() - state.startedAt).nanoseconds) / 1e9,
            repairs: state.outcomes.filter { $0.keysRepaired > 0 || $0.error != nil }.map {
                RepairView.Exchange(
                    partition: $0.partition, peer: $0.peer, segments: $0.differingSegments,
                    keysRepaired: $0.keysRepaired, udpBytes: $0.udpBytes, tcpBytes: $0.tcpBytes, error: $0.error)
            })
    }

    /// Runs `operations` at most `window` at a time (no rate limit).
    private func runWindowed<T: Sendable>(_ operations: [@Sendable () -> EventLoopFuture<T>], window: Int)
        -> EventLoopFuture<Void>
    {
        guard !operations.isEmpty else { return loop.makeSucceededVoidFuture() }
        let promise = loop.makePromise(of: Void.self)
        let state = Throttle<T>(count: operations.count)
        @Sendable func launch() {
            guard state.next < operations.count else { return }
            let index = state.next
            state.next += 1
            operations[index]().hop(to: loop).whenComplete { _ in
                state.done += 1
                if state.done == operations.count { promise.succeed(()) } else { launch() }
            }
        }
        for _ in 0..<min(window, operations.count) { launch() }
        return promise.futureResult
    }

    // MARK: - Status

    func statusView() -> EventLoopFuture<AntiEntropyView> {
        loop.submit { [self] in
            let info = rebuildInfo.withLockedValue { $0 }
            let now = WallClock.nanoseconds()
            let ages = lastExchange.values.map { Double(now &- $0.at) / 1e9 }
            return AntiEntropyView(
                trees: trees.withLockedValue { $0.count }, treesRebuilt: info.trees, keysIndexed: info.keys,
                rebuildSeconds: info.seconds, exchanges: stats.exchanges, exchangesEqual: stats.equal,
                exchangesRepaired: stats.repaired, exchangesFailed: stats.failed, answered: stats.answered,
                malformed: stats.malformed,
                keysRepaired: stats.keysRepaired, udpBytes: stats.udpBytes, tcpBytes: stats.tcpBytes,
                tombstonesReaped: stats.tombstonesReaped, catchUpPending: catchUp?.pending ?? 0,
                partitionsExchanged: lastExchange.count,
                partitionsReplicated: membership.view.placement.partitions(homedOn: localID, n: replication).count,
                oldestExchangeAgeSeconds: ages.max(), newestExchangeAgeSeconds: ages.min(),
                lastExchanges: Dictionary(uniqueKeysWithValues: lastExchange.map { (String($0.key), $0.value) }))
        }
    }

    /// `GET /v1/antientropy/roots`: the root hash of every partition this node holds a
    /// tree for, as 16 hex digits, keyed by partition number. Equal roots on every home
    /// replica of a partition mean its replicas hold the same keys at the same versions.
    func rootsView() -> [String: String] {
        trees.withLockedValue { trees in
            Dictionary(
                uniqueKeysWithValues: trees.map { partition, tree in
                    (String(partition), Self.hex(tree.root))
                })
        }
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// Loop-confined progress of one `runThrottled`.
    private final class Throttle<T>: @unchecked Sendable {
        var results: [T?]
        var next = 0
        var done = 0
        init(count: Int) { results = Array(repeating: nil, count: count) }
    }

    /// Runs `operations` at most `repairWindow` at a time, each started no sooner
    /// than its slot under `repair_rate`; completes with their results in order
    /// (nil for one that could not run).
    private func runThrottled<T: Sendable>(_ operations: [@Sendable () -> EventLoopFuture<T>]) -> EventLoopFuture<[T?]>
    {
        guard !operations.isEmpty else { return loop.makeSucceededFuture([]) }
        let promise = loop.makePromise(of: [T?].self)
        let state = Throttle<T>(count: operations.count)
        let rate = max(settings.repairRate, 1)
        let spacing = TimeAmount.nanoseconds(1_000_000_000 / Int64(rate))
        @Sendable func launch() {
            guard state.next < operations.count else { return }
            let index = state.next
            state.next += 1
            let slot = max(NIODeadline.now(), nextSlot)
            nextSlot = slot + spacing
            loop.scheduleTask(deadline: slot) {}.futureResult.flatMap { operations[index]() }.hop(to: loop)
                .whenComplete { result in
                    if case .success(let value) = result { state.results[index] = value }
                    state.done += 1
                    if state.done == operations.count {
                        promise.succeed(state.results)
                    } else {
                        launch()
                    }
                }
        }
        for _ in 0..<min(Self.repairWindow, operations.count) { launch() }
        return promise.futureResult
    }
}
