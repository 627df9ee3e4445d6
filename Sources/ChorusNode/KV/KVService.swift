import ChorusCore
import ChorusStorage
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The key-value store's coordinator and replica (DESIGN §4). Any node takes a
/// client request; a write is coordinated by a home replica of its key (forwarded
/// there if needed), which mints the new dot, writes locally and in parallel to
/// the other home replicas, and answers after W acknowledgements. A read asks
/// every home replica and answers after R replies, merged.
final class KVService: Sendable {
    typealias Object = ChorusCore.StoredObject

    let settings: StoreSettings
    let clusterName: String
    let localID: NodeID
    let membership: MembershipService
    let replicas: ReplicaStore
    let group: EventLoopGroup
    let metrics: AgentMetrics
    let logger: Logger
    private let clock = NIOLockedValueBox(HybridLogicalClock())

    init(
        settings: StoreSettings, clusterName: String, membership: MembershipService, store: any ObjectStore & HintStore,
        group: EventLoopGroup, metrics: AgentMetrics, logger: Logger
    ) {
        self.metrics = metrics
        self.settings = settings
        self.clusterName = clusterName
        self.localID = membership.localID
        self.membership = membership
        self.replicas = ReplicaStore(
            store: store, buckets: settings.buckets,
            partitioner: Partitioner(partitionCount: settings.partitions))
        self.group = group
        self.logger = logger
    }

    // MARK: - Client requests

    /// Validates and serves a client request, coordinating it here or forwarding
    /// it to a home replica.
    /// Runs on `loop` (the caller's: the HTTP or session channel's), so a request
    /// does not hop threads on its way through.
    func handle(_ request: KVRequest, on loop: EventLoop) -> EventLoopFuture<KVResponse> {
        // A node that has not joined yet sees only itself: placing keys by that view
        // would name the wrong replicas. Clients and forwarders retry elsewhere.
        guard membership.hasJoined else {
            return loop.makeSucceededFuture(
                Self.errorResponse(503, "this node is still joining the cluster; retry on another node"))
        }
        let validated: ValidatedRequest
        do {
            validated = try validate(request)
        } catch {
            return loop.makeSucceededFuture(error.response)
        }
        let view = membership.view
        let partition = view.placement.partitioner.partition(bucket: request.bucket, key: request.key)
        let plan = view.ring.plan(partition: partition, n: validated.properties.n)
        switch request.operation {
        case .get:
            return read(validated, home: plan.home, fallbacks: plan.fallbacks, view: view, loop: loop)
        case .put, .delete:
            guard plan.home.contains(localID) else {
                return forward(request, home: plan.home, view: view, loop: loop, required: validated.required)
            }
            // While the ring changes, pending replicas get the write too, and the
            // quorum grows by the home replicas the change displaces (`ReplicaPlan`).
            let plan = plan.pending.isEmpty ? plan : plan.excludingPending(notIn: reachableMembers(view))
            var write = validated
            write.required = plan.writeRequired(validated.required)
            return self.write(write, home: plan.writeTargets, fallbacks: plan.fallbacks, view: view, loop: loop)
        }
    }

    /// A request checked against the bucket and the limits.
    struct ValidatedRequest {
        var request: KVRequest
        var properties: BucketProperties
        var required: Int
        var sloppy: Bool
        var context: VersionVector
        var timeout: TimeAmount
    }

    struct RequestError: Error {
        var response: KVResponse
        init(_ status: UInt16, _ message: String) {
            response = KVService.errorResponse(status, message)
        }
    }

    private func validate(_ request: KVRequest) throws(RequestError) -> ValidatedRequest {
        guard BucketName.isValid(request.bucket) else {
            throw RequestError(400, "bucket name must be 1-64 of A-Z a-z 0-9 _ - .")
        }
        guard !request.key.isEmpty, request.key.utf8.count <= ClusterCodec.maxKeyBytes else {
            throw RequestError(400, "key must be 1 to \(ClusterCodec.maxKeyBytes) bytes")
        }
        guard request.value.count <= settings.maxValueBytes else {
            throw RequestError(
                413, "value of \(request.value.count) bytes exceeds max_value_bytes \(settings.maxValueBytes)")
        }
        let properties = settings.buckets.properties(of: request.bucket)
        let parameter = request.operation == .get ? request.r : request.w
        let name = request.operation == .get ? "r" : "w"
        var quorum = request.operation == .get ? properties.r : properties.w
        if !parameter.isEmpty {
            guard let parsed = Quorum(parsing: parameter) else {
                throw RequestError(400, "\(name) must be one, quorum, all or a number, got '\(parameter)'")
            }
            quorum = parsed
        }
        let required: Int
        do {
            required = try quorum.required(outOf: properties.n)
        } catch {
            throw RequestError(400, "\(name): \(error)")
        }
        var context = VersionVector()
        if !request.context.isEmpty {
            do {
                context = try CausalContext.decode(request.context, clusterName: clusterName)
            } catch {
                throw RequestError(400, "X-Chorus-Context: \(error.message)")
            }
        }
        guard request.timeoutMilliseconds > 0, request.timeoutMilliseconds <= 120_000 else {
            throw RequestError(400, "timeout must be from 1ms to 120s")
        }
        var sloppy = properties.sloppy
        switch request.sloppy {
        case "": break
        case "true": sloppy = true
        case "false": sloppy = false
        default: throw RequestError(400, "sloppy must be true or false, got '\(request.sloppy)'")
        }
        return ValidatedRequest(
            request: request, properties: properties, required: required, sloppy: sloppy, context: context,
            timeout: .milliseconds(Int64(request.timeoutMilliseconds)))
    }

    // MARK: - Writes

    private func write(
        _ request: ValidatedRequest, home: [NodeID], fallbacks: [NodeID], view: ClusterView, loop: EventLoop
    ) -> EventLoopFuture<KVResponse> {
        let bucket = request.request.bucket
        let key = request.request.key
        let value: [UInt8]? = request.request.operation == .delete ? nil : request.request.value
        let localID = self.localID
        let mintStamp: @Sendable (Object?) -> LWWStamp = { [self] stored in
            if let stored { witness(stored) }
            return LWWStamp(timestamp: clock.withLockedValue { $0.now(wall: WallClock.nanoseconds()) }, node: localID)
        }
        // Replication starts as soon as the new version is computed, while the
        // local commit is still being fsynced; the local copy counts once durable.
        // It is set up on the request's loop, not on the store's writer thread that
        // computes the version: there its timers and sends were five cross-thread
        // task submissions per write (each a lock on the loop's queue, often an
        // eventfd wake-up), and the writer thread is the one every write waits for.
        // The local commit's completion reaches `loop` after this task (tasks submitted
        // from one thread run in order), so `replication` is set when it is read.
        let replication = NIOLockedValueBox<Replication?>(nil)
        let started: @Sendable (Object) -> Void = { [self] object in
            loop.execute { [self] in
                let started = replicate(
                    object, bucket: bucket, key: key, home: home, fallbacks: fallbacks, view: view, request: request,
                    loop: loop)
                replication.withLockedValue { $0 = started }
            }
        }
        let local = replicas.coordinate(
            bucket: bucket, key: key, value: value, context: request.context, replica: localID, mintStamp: mintStamp,
            on: loop, computed: started)
        return local.flatMap { [self] object in
            if object.siblingCount >= ReplicaStore.siblingWarning {
                logger.warning(
                    "key has many siblings",
                    metadata: ["bucket": "\(bucket)", "key": "\(key)", "siblings": "\(object.siblingCount)"])
            }
            guard let replication = replication.withLockedValue({ $0 }) else {
                return loop.makeSucceededFuture(Self.errorResponse(500, "local write produced no version"))
            }
            replication.coordinatorStored()
            return respond(to: request, object: object, outcome: replication.outcome, home: home, view: view)
        }.flatMapError { [self] error in
            if let refusal = error as? ReplicaStore.WriteError, case .tooManySiblings = refusal {
                return loop.makeSucceededFuture(Self.errorResponse(409, "\(refusal)"))
            }
            // The local commit failed after replication started: the other replicas
            // may still carry the write to its quorum.
            guard let replication = replication.withLockedValue({ $0 }), let object = replication.object else {
                return loop.makeSucceededFuture(Self.errorResponse(500, "local write failed: \(error)"))
            }
            replication.coordinatorFailed("local write failed: \(error)")
            return respond(to: request, object: object, outcome: replication.outcome, home: home, view: view)
        }
    }

    private func respond(
        to request: ValidatedRequest, object: Object, outcome: EventLoopFuture<SloppyWrite.Outcome>, home: [NodeID],
        view: ClusterView
    ) -> EventLoopFuture<KVResponse> {
        outcome.map { [clusterName] outcome in
            guard outcome.met else {
                return Self.quorumFailure(
                    request.request.operation == .delete ? "delete" : "write", acknowledged: outcome.counted,
                    required: request.required, n: home.count,
                    failures: outcome.failures.map { "\(view.members[$0.node]?.name ?? "\($0.node)"): \($0.reason)" },
                    hinted: outcome.sloppy ? nil : outcome.hintedAcknowledgements)
            }
            return KVResponse(status: 204, context: CausalContext.encode(object.join, clusterName: clusterName))
        }
    }

    /// One write's replication in flight: its outcome, and how to report the
    /// coordinator's own commit to it.
    struct Replication: Sendable {
        var object: Object?
        var outcome: EventLoopFuture<SloppyWrite.Outcome>
        var coordinatorStored: @Sendable () -> Void
        var coordinatorFailed: @Sendable (String) -> Void
    }

    /// Runs a `SloppyWrite`: sends the object to the other home replicas, to
    /// fallbacks with hints for those down or slow, and completes with the outcome
    /// the client gets. Sends the machine asks for after that still go out.
    private func replicate(
        _ object: Object, bucket: String, key: String, home: [NodeID], fallbacks: [NodeID], view: ClusterView,
        request: ValidatedRequest, loop: EventLoop
    ) -> Replication {
        let promise = loop.makePromise(of: SloppyWrite.Outcome.self)
        let encoded = ObjectCodec.encode(object)
        let reachable = Set(view.members.keys.filter { view.isReachable($0) })
        var initial: [SloppyWrite.Effect] = []
        let machine = NIOLockedValueBox(
            SloppyWrite(
                coordinator: localID, home: home, fallbacks: hintedHandoffFallbacks(fallbacks),
                required: request.required,
                sloppy: request.sloppy, reachable: reachable, coordinatorStored: false, effects: &initial))
        let replicaTimeout = min(settings.replicaTimeout.timeAmount, request.timeout)
        // Timers are cancelled as soon as they are moot: at load, thousands of
        // requests a second would otherwise keep their timers alive for seconds.
        let timers = NIOLockedValueBox((replicas: [NodeID: Scheduled<Void>](), request: Scheduled<Void>?.none))

        @Sendable func run(_ effects: [SloppyWrite.Effect]) {
            for effect in effects {
                switch effect {
                case .finish(let outcome):
                    timers.withLockedValue { $0.request }?.cancel()
                    promise.succeed(outcome)
                case .startReplicaTimer(let node):
                    let timer = loop.scheduleTask(in: replicaTimeout) {
                        run(machine.withLockedValue { $0.replicaTimedOut(node) })
                    }
                    timers.withLockedValue { $0.replicas[node] = timer }
                case .send(let node, let hintFor):
                    guard let member = view.members[node] else {
                        run(machine.withLockedValue { $0.failed(node, reason: "not a member") })
                        continue
                    }
                    let message = ClusterMessage.replicaWrite(
                        ReplicaWrite(bucket: bucket, key: key, object: encoded, hintFor: hintFor))
                    membership.sessions.request(message, to: member.address, timeout: request.timeout)
                        .whenComplete { [metrics] result in
                            timers.withLockedValue { $0.replicas.removeValue(forKey: node) }?.cancel()
                            metrics.replicaRequest(kind: "write", outcome: Self.replicaOutcome(result))
                            switch result {
                            case .success(.replicaWriteReply(nil)):
                                run(machine.withLockedValue { $0.acknowledged(by: node) })
                            case .success(.replicaWriteReply(let error?)):
                                run(machine.withLockedValue { $0.failed(node, reason: error) })
                            case .success(let other):
                                run(machine.withLockedValue { $0.failed(node, reason: "unexpected reply \(other)") })
                            case .failure(let error):
                                run(machine.withLockedValue { $0.failed(node, reason: "\(error)") })
                            }
                        }
                }
            }
        }
        let requestTimer = loop.scheduleTask(in: request.timeout) {
            run(machine.withLockedValue { $0.requestTimedOut() })
        }
        timers.withLockedValue { $0.request = requestTimer }
        run(initial)
        let localID = self.localID
        return Replication(
            object: object, outcome: promise.futureResult,
            coordinatorStored: { run(machine.withLockedValue { $0.coordinatorStored() }) },
            coordinatorFailed: { reason in run(machine.withLockedValue { $0.failed(localID, reason: reason) }) })
    }

    /// Whether this node is a home replica of the key now (an unknown bucket name
    /// takes the default bucket's n, as `validate` does).
    private func isHomeReplica(bucket: String, key: String) -> Bool {
        let view = membership.view
        let partition = view.placement.partitioner.partition(bucket: bucket, key: key)
        return view.placement.homeReplicas(of: partition, n: settings.buckets.properties(of: bucket).n).contains(
            localID)
    }

    private func reachableMembers(_ view: ClusterView) -> Set<NodeID> {
        Set(view.members.keys.filter { view.isReachable($0) })
    }

    /// With hinted handoff off, no fallback takes hints: down replicas are left
    /// to read repair and anti-entropy.
    private func hintedHandoffFallbacks(_ fallbacks: [NodeID]) -> [NodeID] {
        settings.hintedHandoff ? fallbacks : []
    }

    /// A write reaching a node that is not a home replica of its key goes to one
    /// that is: alive ones first, then suspect ones, then those SWIM holds down, each
    /// group in preference order, the next on failure.
    private func forward(
        _ request: KVRequest, home: [NodeID], view: ClusterView, loop: EventLoop, required: Int
    ) -> EventLoopFuture<KVResponse> {
        guard !request.forwarded else {
            return loop.makeSucceededFuture(Self.errorResponse(503, "forwarded to a node that is not a home replica"))
        }
        var copy = request
        copy.forwarded = true
        let forwarded = copy
        let alive = home.filter { view.members[$0]?.status == .alive }
        let suspect = home.filter { view.members[$0]?.status == .suspect }
        let down = home.filter { !view.isReachable($0) }
        let candidates = alive + suspect + down
        let deadline = NIODeadline.now() + .milliseconds(Int64(request.timeoutMilliseconds))
        // An alive replica may take the whole request's time (it coordinates, and may
        // wait for its own replicas). A suspect one gets a replica timeout, so that one
        // cut off by a partition (suspect for as long as the suspicion lasts) does not
        // use up the request before the next is tried. Those SWIM holds down share
        // one replica timeout: during a partition the client hears the 503 within
        // about a second and retries elsewhere.
        let replicaTimeout = settings.replicaTimeout.timeAmount
        let downTimeout = TimeAmount.nanoseconds(replicaTimeout.nanoseconds / Int64(max(1, down.count)))
        let suspectEnd = alive.count + suspect.count
        @Sendable func attempt(_ index: Int, failures: [String]) -> EventLoopFuture<KVResponse> {
            let left = deadline - NIODeadline.now()
            let remaining =
                index < alive.count ? left : index < suspectEnd ? min(left, replicaTimeout) : min(left, downTimeout)
            guard (index < candidates.count) && (remaining > .zero), let member = view.members[candidates[index]] else {
                return loop.makeSucceededFuture(
                    Self.quorumFailure(
                        request.operation == .delete ? "delete" : "write", acknowledged: 0, required: required,
                        n: home.count, failures: failures.isEmpty ? ["no home replica reachable"] : failures,
                        hinted: nil))
            }
            return membership.sessions.request(.forward(forwarded), to: member.address, timeout: remaining)
                .hop(to: loop)
                .flatMap { reply in
                    switch reply {
                    case .forwardReply(let response): return loop.makeSucceededFuture(response)
                    case .refused(let reason):
                        return attempt(index + 1, failures: failures + ["\(member.name): \(reason)"])
                    default: return attempt(index + 1, failures: failures + ["\(member.name): unexpected reply"])
                    }
                }
                .flatMapError { error in attempt(index + 1, failures: failures + ["\(member.name): \(error)"]) }
        }
        return attempt(0, failures: [])
    }

    // MARK: - Reads

    private func read(
        _ request: ValidatedRequest, home: [NodeID], fallbacks: [NodeID], view: ClusterView, loop: EventLoop
    ) -> EventLoopFuture<KVResponse> {
        let bucket = request.request.bucket
        let key = request.request.key
        let promise = loop.makePromise(of: KVResponse.self)
        let reachable = Set(view.members.keys.filter { view.isReachable($0) })
        let targets = QuorumRead.targets(home: home, fallbacks: fallbacks, reachable: reachable)
        let machine = NIOLockedValueBox(
            (
                read: QuorumRead(
                    targets: targets, n: home.count, required: request.required, sloppy: request.sloppy,
                    lww: request.properties.conflicts == .lww, preferred: localID),
                repaired: false, timer: Scheduled<Void>?.none, speculation: Scheduled<Void>?.none
            ))
        let clusterName = self.clusterName
        let required = request.required
        let n = home.count
        let replicas = self.replicas
        let localID = self.localID
        let sessions: SessionPool = membership.sessions
        let metrics = self.metrics
        let timeout = request.timeout
        let speculateAfter = TimeAmount(settings.readSpeculationDelay)

        @Sendable func decided(_ decision: QuorumRead.Decision?) {
            switch decision {
            case .respond(let merged)?:
                promise.succeed(Self.readResponse(merged, clusterName: clusterName))
            case .fail(let answered, let failures)?:
                promise.succeed(
                    Self.quorumFailure(
                        "read", acknowledged: answered, required: required, n: n, failures: failures, hinted: nil))
            case nil:
                break
            }
        }

        /// Read repair (Dynamo §4.7): once every reply is in (or the window
        /// closes), home replicas that returned an older copy or none get the merge.
        @Sendable func repairIfDone(force: Bool) {
            let plan: (Object, [NodeID])? = machine.withLockedValue { state in
                guard !state.repaired, force || state.read.awaiting == 0 else { return nil }
                state.repaired = true
                state.timer?.cancel()
                state.speculation?.cancel()
                guard let merged = state.read.merged else { return nil }
                return (merged, state.read.repairTargets)
            }
            guard let (merged, stale) = plan, !stale.isEmpty else { return }
            repair(merged, bucket: bucket, key: key, on: stale, view: view)
        }

        @Sendable func record(_ node: NodeID, _ result: Result<Object?, Error>) {
            let (decision, spare) = machine.withLockedValue { state -> (QuorumRead.Decision?, QuorumRead.Target?) in
                switch result {
                case .success(let object): return (state.read.answered(node, object), nil)
                case .failure(let error):
                    // A spare takes the failed target's place.
                    let decision = state.read.failed(node, reason: "\(view.members[node]?.name ?? "\(node)"): \(error)")
                    return (decision, decision == nil ? state.read.nextTarget() : nil)
                }
            }
            decided(decision)
            if let spare { ask(spare.node) }
            repairIfDone(force: false)
        }

        @Sendable func ask(_ node: NodeID) {
            if node == localID {
                replicas.read(bucket: bucket, key: key, on: loop).whenComplete { result in
                    record(node, result.mapError { $0 })
                }
                return
            }
            guard let member = view.members[node] else {
                record(node, .failure(ReplicaError(message: "not a member")))
                return
            }
            sessions.request(.replicaRead(bucket: bucket, key: key), to: member.address, timeout: timeout)
                .whenComplete { result in
                    metrics.replicaRequest(kind: "read", outcome: Self.replicaOutcome(result))
                    switch result {
                    case .success(.replicaReadReply(let bytes, nil)):
                        do {
                            record(node, .success(try bytes.map { try ObjectCodec.decode($0) }))
                        } catch {
                            record(node, .failure(error))
                        }
                    case .success(.replicaReadReply(_, let error?)):
                        record(node, .failure(ReplicaError(message: error)))
                    case .success(let other):
                        record(node, .failure(ReplicaError(message: "unexpected reply \(other)")))
                    case .failure(let error):
                        record(node, .failure(error))
                    }
                }
        }

        /// Speculative retry (Cassandra): while the quorum is still short after the
        /// delay, one more spare is asked, and again each delay after.
        @Sendable func speculate() {
            let spare = machine.withLockedValue { state -> QuorumRead.Target? in
                guard !state.repaired, let spare = state.read.nextTarget() else { return nil }
                state.speculation = loop.scheduleTask(in: speculateAfter) { speculate() }
                return spare
            }
            if let spare {
                metrics.readSpeculation()
                ask(spare.node)
            }
        }

        let (start, first) = machine.withLockedValue { state in
            (state.read.start(), Array(state.read.firstTargets(askAll: settings.readTargets == .all)))
        }
        decided(start)
        for target in first { ask(target.node) }
        let timer = loop.scheduleTask(in: request.timeout) {
            decided(machine.withLockedValue { $0.read.requestTimedOut() })
            repairIfDone(force: true)
        }
        let speculation: Scheduled<Void>? =
            first.count < targets.count ? loop.scheduleTask(in: speculateAfter) { speculate() } : nil
        machine.withLockedValue { state in
            if state.repaired {
                timer.cancel()
                speculation?.cancel()
            } else {
                state.timer = timer
                state.speculation = speculation
            }
        }
        return promise.futureResult
    }

    /// Sends the merged object to replicas whose copy was stale.
    private func repair(_ merged: Object, bucket: String, key: String, on nodes: [NodeID], view: ClusterView) {
        let message = ClusterMessage.replicaWrite(
            ReplicaWrite(bucket: bucket, key: key, object: ObjectCodec.encode(merged)))
        for node in nodes {
            if node == localID {
                _ = replicas.merge(bucket: bucket, key: key, incoming: merged, on: group.next())
            } else if let member = view.members[node] {
                _ = membership.sessions.request(message, to: member.address, timeout: .seconds(5))
            }
        }
        metrics.readRepair(count: nodes.count)
        logger.debug("read repair", metadata: ["bucket": "\(bucket)", "key": "\(key)", "replicas": "\(nodes.count)"])
    }

    struct ReplicaError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// `?replica=local`: what this node stores, without coordination.
    func localRead(bucket: String, key: String, on loop: EventLoop) -> EventLoopFuture<KVResponse> {
        guard BucketName.isValid(bucket), !key.isEmpty else {
            return loop.makeSucceededFuture(Self.errorResponse(400, "bad bucket or key"))
        }
        let clusterName = self.clusterName
        return replicas.read(bucket: bucket, key: key, on: loop).map { object in
            Self.readResponse(object, clusterName: clusterName)
        }.recover { error in Self.errorResponse(500, "local read failed: \(error)") }
    }

    // MARK: - Replica side

    /// Requests from other agents: replica writes and reads, forwarded client requests.
    func handleReplicaRequest(_ message: ClusterMessage, from peer: NodeID, on loop: EventLoop)
        -> EventLoopFuture<ClusterMessage>
    {
        switch message {
        case .replicaWrite(let write):
            let incoming: Object
            do {
                incoming = try ObjectCodec.decode(write.object)
            } catch {
                return loop.makeSucceededFuture(.replicaWriteReply(error: "unreadable object: \(error)"))
            }
            witness(incoming)
            if let target = write.hintFor, target != localID {
                return replicas.hold(
                    bucket: write.bucket, key: write.key, incoming: incoming, for: target, now: WallClock.nanoseconds(),
                    on: loop
                )
                .map { [metrics] in
                    metrics.hintStored()
                    return ClusterMessage.replicaWriteReply(error: nil)
                }
                .recover { [metrics] error in
                    if case .storage(.hintsFull)? = error as? ReplicaStore.WriteError {
                        metrics.hintDropped(reason: "full")
                    } else {
                        metrics.hintDropped(reason: "error")
                    }
                    return .replicaWriteReply(error: "cannot keep the hint: \(error)")
                }
            }
            return replicas.merge(bucket: write.bucket, key: write.key, incoming: incoming, on: loop)
                .map { _ in ClusterMessage.replicaWriteReply(error: nil) }
                .recover { error in .replicaWriteReply(error: "\(error)") }
        case .replicaRead(let bucket, let key):
            return replicas.read(bucket: bucket, key: key, on: loop)
                .map { object in ClusterMessage.replicaReadReply(object: object.map(ObjectCodec.encode), error: nil) }
                .recover { error in .replicaReadReply(object: nil, error: "\(error)") }
        case .forward(let request):
            // Refused (not answered) while joining, so the forwarding node tries the
            // next home replica instead of returning this node's 503.
            guard membership.hasJoined else {
                return loop.makeSucceededFuture(.refused(reason: "still joining the cluster"))
            }
            // Likewise when the ring just changed and this node is no longer a home
            // replica of the key in its view (the forwarder's view is older): the
            // forwarder tries the next one, which is.
            if request.operation != .get, !isHomeReplica(bucket: request.bucket, key: request.key) {
                return loop.makeSucceededFuture(.refused(reason: "not a home replica of the key in this node's view"))
            }
            return handle(request, on: loop).map { .forwardReply($0) }
        default:
            return loop.makeSucceededFuture(.refused(reason: "not a store request"))
        }
    }

    /// Keeps this node's hybrid logical clock ahead of every stamp it has seen, so
    /// its next write is ordered after them in LWW buckets.
    ///
    /// Walks the stored arrays in place: `DVVSet.values` is generic code in another module,
    /// unspecialized here, and building its array on every replica write cost 3 % of a
    /// write's CPU in the profile (runtime generic metadata lookups included).
    private func witness(_ object: Object) {
        var newest: HLCTimestamp?
        for value in object.anonymous where newest.map({ value.stamp.timestamp > $0 }) ?? true {
            newest = value.stamp.timestamp
        }
        for entry in object.entries {
            for value in entry.values where newest.map({ value.stamp.timestamp > $0 }) ?? true {
                newest = value.stamp.timestamp
            }
        }
        guard let newest else { return }
        _ = clock.withLockedValue { $0.witness(newest, wall: WallClock.nanoseconds()) }
    }

    // MARK: - Responses

    /// The `outcome` label of one replica request.
    static func replicaOutcome(_ result: Result<ClusterMessage, Error>) -> String {
        switch result {
        case .success(.replicaWriteReply(nil)), .success(.replicaReadReply(_, nil)): "ok"
        case .failure(SessionError.timedOut): "timeout"
        default: "error"
        }
    }

    static func errorResponse(_ status: UInt16, _ message: String) -> KVResponse {
        KVResponse(status: status, body: json(["error": message]))
    }

    /// 503 naming how many replicas acknowledged. `hinted`, for strict requests,
    /// counts the fallbacks that took the write but did not count.
    static func quorumFailure(
        _ operation: String, acknowledged: Int, required: Int, n: Int, failures: [String], hinted: Int?
    ) -> KVResponse {
        struct Body: Encodable {
            var error: String
            var acknowledged: Int
            var required: Int
            var replicas: Int
            var hinted: Int?
            var failures: [String]
        }
        var error = "\(operation) quorum not met: \(acknowledged) of \(n) replicas acknowledged, \(required) required"
        if let hinted { error += " (strict quorum; \(hinted) fallback nodes took hints that do not count)" }
        let body = Body(
            error: error, acknowledged: acknowledged, required: required, replicas: n, hinted: hinted,
            failures: failures)
        return KVResponse(status: 503, body: json(body))
    }

    /// 200 with the value, 300 with every sibling, or 404 (with the context of the
    /// tombstones, if any, so a client can write after a delete without conflict).
    static func readResponse(_ object: Object?, clusterName: String) -> KVResponse {
        guard let object else { return errorResponse(404, "not found") }
        let context = CausalContext.encode(object.join, clusterName: clusterName)
        let visible = object.visibleValues
        if visible.isEmpty {
            var response = errorResponse(404, "not found")
            response.context = context
            return response
        }
        if visible.count == 1 {
            return KVResponse(
                status: 200, context: context, contentType: "application/octet-stream", body: visible[0].data)
        }
        struct Sibling: Encodable {
            var value: String
            var timestamp: String
            var node: String
        }
        struct Body: Encodable {
            var siblings: [Sibling]
            var context: String
        }
        let siblings = visible.sorted { $0.stamp < $1.stamp }.map {
            Sibling(
                value: Data($0.data).base64EncodedString(), timestamp: "\($0.stamp.timestamp)",
                node: $0.stamp.node.description)
        }
        return KVResponse(status: 300, context: context, body: json(Body(siblings: siblings, context: context)))
    }

    static func json<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [0x0A]
    }
}
