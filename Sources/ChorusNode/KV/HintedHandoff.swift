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
    let membership: MembershipService
    let settings: StoreSettings
    let loop: EventLoop
    let metrics: AgentMetrics
    let logger: Logger

    /// Hints fetched per page.
    static let batchSize = 100

    init(
        store: any ObjectStore & HintStore, membership: MembershipService, settings: StoreSettings, loop: EventLoop,
        metrics: AgentMetrics, logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
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
        guard running.withLockedValue({ running in
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
        let deliverable = summary.compactMap { entry -> Member? in
            guard let id = NodeID(hex: entry.target), let member = view.members[id], member.status == .alive else {
                return nil
            }
            return member
        }
        deliver(to: deliverable[...]).whenComplete { [self] _ in running.withLockedValue { $0 = false } }
    }

    private func deliver(to targets: ArraySlice<Member>) -> EventLoopFuture<Void> {
        guard let target = targets.first else { return loop.makeSucceededVoidFuture() }
        return deliver(to: target, after: nil).flatMap { [self] in deliver(to: targets.dropFirst()) }
    }

    /// Streams `target`'s hints page by page, one at a time, at most
    /// `handoff_rate` per second.
    private func deliver(to target: Member, after cursor: ObjectKey?) -> EventLoopFuture<Void> {
        let name = target.id.description
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
        let pause = TimeAmount.nanoseconds(1_000_000_000 / Int64(max(1, settings.handoffRate)))
        @Sendable func send(_ index: Int) -> EventLoopFuture<Bool> {
            guard index < page.count else { return loop.makeSucceededFuture(true) }
            let hint = page[index]
            let message = ClusterMessage.replicaWrite(
                ReplicaWrite(bucket: hint.bucket, key: hint.key, object: hint.value))
            return membership.sessions.request(message, to: target.address, timeout: .seconds(5))
                .hop(to: loop)
                .flatMap { [self] reply -> EventLoopFuture<Bool> in
                    guard case .replicaWriteReply(nil) = reply else {
                        lastErrors.withLockedValue { $0[name] = "target refused: \(reply)" }
                        return loop.makeSucceededFuture(false)
                    }
                    return deleteDelivered(hint).flatMap { [self] in
                        loop.scheduleTask(in: pause) {}.futureResult.flatMap { send(index + 1) }
                    }
                }
                .flatMapError { [self] error in
                    lastErrors.withLockedValue { $0[name] = "\(error)" }
                    return loop.makeSucceededFuture(false)
                }
        }
        return send(0).flatMap { [self] completed in
            guard completed, let last = page.last, page.count == Self.batchSize else {
                return loop.makeSucceededVoidFuture()
            }
            return deliver(to: target, after: ObjectKey(bucket: last.bucket, key: last.key))
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
