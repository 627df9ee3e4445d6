import ChorusCore
import ChorusStorage
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Hinted handoff (Dynamo §4.6, DESIGN §5): hands the hints this node holds to
/// their targets once SWIM sees them alive again, throttled, over the encrypted
/// session transport, and deletes each hint only after the target has stored it
/// durably and acknowledged. Hints older than `max_hint_window` are dropped
/// (anti-entropy repairs those keys).
final class HintedHandoff: Sendable {
    /// Per target: last delivery error, for `chorus hints`.
    private let lastErrors = NIOLockedValueBox<[String: String]>([:])
    private let running = NIOLockedValueBox(false)
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)
    let store: any ObjectStore & HintStore
    let replicas: ReplicaStore
    let membership: MembershipService
    let settings: StoreSettings
    let loop: EventLoop
    let metrics: AgentMetrics
    let logger: Logger

    /// Hints fetched per page.
    static let batchSize = 100

    init(
        store: any ObjectStore & HintStore, replicas: ReplicaStore, membership: MembershipService,
        settings: StoreSettings, loop: EventLoop, metrics: AgentMetrics, logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
        self.replicas = replicas
        self.membership = membership
        self.settings = settings
        self.loop = loop
        self.logger = logger
    }

    /// Checks for deliverable hints every second (cheap when there are none).
    func start() {
        let repeated = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            round()
        }
        task.withLockedValue { $0 = repeated }
    }

    func stop() {
        task.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    func lastError(for target: String) -> String? {
        lastErrors.withLockedValue { $0[target] }
    }

    /// One round: expire old hints, then deliver to every alive target in turn.
    private func round() {
        guard
            running.withLockedValue({ running in
                defer { running = true }
                return !running
            })
        else { return }
        let window = UInt64(max(0, settings.maxHintWindow.nanosecondsClamped))
        let now = WallClock.nanoseconds()
        store.expireHints(olderThan: now > window ? now - window : 0) { [self] result in
            if case .success(let count) = result, count > 0 {
                metrics.hintExpired(count: count)
                logger.warning("hints expired past max_hint_window", metadata: ["count": "\(count)"])
            }
        }
        let summary = (try? store.hintSummary()) ?? []
        let view = membership.view
        // Alive targets get their hints; those of a node that left or was removed go
        // to its successors, the key's home replicas now.
        // (A node that has not joined yet knows too little to rehome anything.)
        let deliverable = summary.compactMap { entry -> Delivery? in
            guard let id = NodeID(hex: entry.target), let member = view.members[id] else { return nil }
            if member.status == .left { return membership.hasJoined ? .rehome(entry.target) : nil }
            return member.status == .alive ? .target(member) : nil
        }
        deliver(deliverable[...], throttled: true).whenComplete { [self] _ in running.withLockedValue { $0 = false } }
    }

    /// Where one target's hints go.
    enum Delivery: Sendable {
        /// To the node they were kept for.
        case target(Member)
        /// To the keys' reachable home replicas (and pending ones), this node
        /// included when it is one: the target left, was removed, or (when this node
        /// leaves) cannot be waited for.
        case rehome(String)

        var name: String {
            switch self {
            case .target(let member): member.id.description
            case .rehome(let name): name
            }
        }
    }

    /// Hands every hint this node holds to its target if alive, else to the keys'
    /// home replicas, unthrottled (a leaving node must not take its hints with it).
    /// Completes with how many hints remain.
    func handOffAll() -> EventLoopFuture<Int> {
        let summary = (try? store.hintSummary()) ?? []
        let view = membership.view
        let deliveries = summary.map { entry -> Delivery in
            if let id = NodeID(hex: entry.target), let member = view.members[id], member.status == .alive {
                return .target(member)
            }
            return .rehome(entry.target)
        }
        return deliver(deliveries[...], throttled: false).map { [self] in
            ((try? store.hintSummary()) ?? []).reduce(0) { $0 + $1.count }
        }
    }

    private func deliver(_ deliveries: ArraySlice<Delivery>, throttled: Bool) -> EventLoopFuture<Void> {
        guard let delivery = deliveries.first else { return loop.makeSucceededVoidFuture() }
        return deliver(delivery, after: nil, throttled: throttled).flatMap { [self] in
            deliver(deliveries.dropFirst(), throttled: throttled)
        }
    }

    /// Stores one hint's object where `delivery` says: succeeds once every
    /// destination holds it durably (at least one).
    private func send(_ hint: Hint, _ delivery: Delivery) -> EventLoopFuture<Bool> {
        let message = ClusterMessage.replicaWrite(ReplicaWrite(bucket: hint.bucket, key: hint.key, object: hint.value))
        switch delivery {
        case .target(let target):
            return membership.sessions.request(message, to: target.address, timeout: .seconds(5)).hop(to: loop)
                .map { [self] reply in
                    guard case .replicaWriteReply(nil) = reply else {
                        lastErrors.withLockedValue { $0[hint.target] = "target refused: \(reply)" }
                        return false
                    }
                    return true
                }
        case .rehome:
            let view = membership.view
            let partition = view.ring.partitioner.partition(bucket: hint.bucket, key: hint.key)
            let plan = view.ring.plan(partition: partition, n: settings.buckets.properties(of: hint.bucket).n)
            let destinations = plan.writeTargets.filter { $0.description != hint.target && view.isReachable($0) }
            guard !destinations.isEmpty else {
                lastErrors.withLockedValue { $0[hint.target] = "no home replica of the key is reachable" }
                return loop.makeSucceededFuture(false)
            }
            let object: StoredObject
            do {
                object = try ObjectCodec.decode(hint.value)
            } catch {
                lastErrors.withLockedValue { $0[hint.target] = "unreadable hint: \(error)" }
                return loop.makeSucceededFuture(false)
            }
            let stores = destinations.map { node -> EventLoopFuture<Bool> in
                if node == membership.localID {
                    return replicas.merge(bucket: hint.bucket, key: hint.key, incoming: object, on: loop).map { _ in
                        true
                    }
                }
                guard let member = view.members[node] else { return loop.makeSucceededFuture(false) }
                return membership.sessions.request(message, to: member.address, timeout: .seconds(5)).hop(to: loop)
                    .map { reply in
                        if case .replicaWriteReply(nil) = reply { return true }
                        return false
                    }
            }
            return EventLoopFuture.whenAllSucceed(stores, on: loop).map { $0.allSatisfy { $0 } }
        }
    }

    /// Streams one target's hints page by page, one at a time, at most
    /// `handoff_rate` per second when `throttled`.
    private func deliver(_ delivery: Delivery, after cursor: ObjectKey?, throttled: Bool) -> EventLoopFuture<Void> {
        let name = delivery.name
        let page: [Hint]
        do {
            page = try store.hints(target: name, after: cursor, limit: Self.batchSize)
        } catch {
            lastErrors.withLockedValue { $0[name] = "\(error)" }
            return loop.makeSucceededVoidFuture()
        }
        guard !page.isEmpty else {
            lastErrors.withLockedValue { $0[name] = nil }
            return loop.makeSucceededVoidFuture()
        }
        let pause = TimeAmount.nanoseconds(throttled ? 1_000_000_000 / Int64(max(1, settings.handoffRate)) : 0)
        @Sendable func next(_ index: Int) -> EventLoopFuture<Bool> {
            guard index < page.count else { return loop.makeSucceededFuture(true) }
            let hint = page[index]
            return send(hint, delivery)
                .flatMap { [self] stored -> EventLoopFuture<Bool> in
                    guard stored else { return loop.makeSucceededFuture(false) }
                    return deleteDelivered(hint).flatMap { [self] in
                        loop.scheduleTask(in: pause) {}.futureResult.flatMap { next(index + 1) }
                    }
                }
                .flatMapError { [self] error in
                    lastErrors.withLockedValue { $0[name] = "\(error)" }
                    return loop.makeSucceededFuture(false)
                }
        }
        return next(0).flatMap { [self] completed in
            guard completed, let last = page.last, page.count == Self.batchSize else {
                return loop.makeSucceededVoidFuture()
            }
            return deliver(delivery, after: ObjectKey(bucket: last.bucket, key: last.key), throttled: throttled)
        }
    }

    /// Deletes a delivered hint unless it merged a newer write meanwhile (that one
    /// goes out in a later round).
    private func deleteDelivered(_ hint: Hint) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        store.deleteHint(target: hint.target, bucket: hint.bucket, key: hint.key, ifValue: hint.value) {
            [self] result in
            if case .success(true) = result { metrics.hintDelivered() }
            promise.succeed(())
        }
        return promise.futureResult
    }
}
