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
    let logger: Logger
    private let clock = NIOLockedValueBox(HybridLogicalClock())

    init(
        settings: StoreSettings, clusterName: String, membership: MembershipService, store: any ObjectStore,
        readers: NIOThreadPool, group: EventLoopGroup, logger: Logger
    ) {
        self.settings = settings
        self.clusterName = clusterName
        self.localID = membership.localID
        self.membership = membership
        self.replicas = ReplicaStore(
            store: store, buckets: settings.buckets,
            partitioner: Partitioner(partitionCount: settings.partitions), readers: readers)
        self.group = group
        self.logger = logger
    }

    // MARK: - Client requests

    /// Validates and serves a client request, coordinating it here or forwarding
    /// it to a home replica.
    func handle(_ request: KVRequest) -> EventLoopFuture<KVResponse> {
        let loop = group.next()
        let validated: ValidatedRequest
        do {
            validated = try validate(request)
        } catch {
            return loop.makeSucceededFuture(error.response)
        }
        let view = membership.view
        let partition = view.placement.partitioner.partition(bucket: request.bucket, key: request.key)
        let home = view.placement.homeReplicas(of: partition, n: validated.properties.n)
        switch request.operation {
        case .get:
            return read(validated, home: home, view: view, loop: loop)
        case .put, .delete:
            if home.contains(localID) {
                return write(validated, home: home, view: view, loop: loop)
            }
            return forward(request, home: home, view: view, loop: loop, required: validated.required)
        }
    }

    /// A request checked against the bucket and the limits.
    struct ValidatedRequest {
        var request: KVRequest
        var properties: BucketProperties
        var required: Int
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
        return ValidatedRequest(
            request: request, properties: properties, required: required, context: context,
            timeout: .milliseconds(Int64(request.timeoutMilliseconds)))
    }

    // MARK: - Writes

    private func write(_ request: ValidatedRequest, home: [NodeID], view: ClusterView, loop: EventLoop)
        -> EventLoopFuture<KVResponse>
    {
        let bucket = request.request.bucket
        let key = request.request.key
        let value: [UInt8]? = request.request.operation == .delete ? nil : request.request.value
        let localID = self.localID
        let mintStamp: @Sendable (Object?) -> LWWStamp = { [self] stored in
            if let stored { witness(stored) }
            return LWWStamp(timestamp: clock.withLockedValue { $0.now(wall: WallClock.nanoseconds()) }, node: localID)
        }
        return replicas.coordinate(
            bucket: bucket, key: key, value: value, context: request.context, replica: localID, mintStamp: mintStamp,
            on: loop
        ).flatMap { [self] object in
            if object.siblingCount >= ReplicaStore.siblingWarning {
                logger.warning(
                    "key has many siblings",
                    metadata: ["bucket": "\(bucket)", "key": "\(key)", "siblings": "\(object.siblingCount)"])
            }
            let others = home.filter { $0 != localID }
            return replicate(
                object, bucket: bucket, key: key, to: others, view: view, required: request.required,
                alreadyAcknowledged: 1, timeout: request.timeout, loop: loop
            ).map { outcome in
                guard outcome.met else {
                    return Self.quorumFailure(
                        "write", acknowledged: outcome.acknowledged, required: request.required, n: home.count,
                        failures: outcome.failures)
                }
                return KVResponse(
                    status: 204, context: CausalContext.encode(object.join, clusterName: self.clusterName))
            }
        }.flatMapErrorThrowing { error in
            if let refusal = error as? ReplicaStore.WriteError, case .tooManySiblings = refusal {
                return Self.errorResponse(409, "\(refusal)")
            }
            return Self.errorResponse(500, "local write failed: \(error)")
        }
    }

    struct ReplicationOutcome {
        var met: Bool
        var acknowledged: Int
        var failures: [String]
    }

    /// Sends `object` to `targets` in parallel; completes as soon as `required`
    /// acknowledgements (counting `alreadyAcknowledged`) are in, when they can no
    /// longer be, or at the timeout.
    private func replicate(
        _ object: Object, bucket: String, key: String, to targets: [NodeID], view: ClusterView, required: Int,
        alreadyAcknowledged: Int, timeout: TimeAmount, loop: EventLoop
    ) -> EventLoopFuture<ReplicationOutcome> {
        let promise = loop.makePromise(of: ReplicationOutcome.self)
        let state = NIOLockedValueBox((acknowledged: alreadyAcknowledged, failures: [String](), answered: 0))
        let total = targets.count
        @Sendable func settle() {
            let (acknowledged, failures, answered) = state.withLockedValue {
                ($0.acknowledged, $0.failures, $0.answered)
            }
            if acknowledged >= required {
                promise.succeed(ReplicationOutcome(met: true, acknowledged: acknowledged, failures: failures))
            } else if answered == total {
                // A quorum that can no longer be met still waits for the replies in
                // flight, so the error names how many replicas really acknowledged.
                promise.succeed(ReplicationOutcome(met: false, acknowledged: acknowledged, failures: failures))
            }
        }
        settle()
        let message = ClusterMessage.replicaWrite(
            ReplicaWrite(bucket: bucket, key: key, object: ObjectCodec.encode(object)))
        for target in targets {
            guard let member = view.members[target] else {
                state.withLockedValue {
                    $0.answered += 1
                    $0.failures.append("\(target): not a member")
                }
                settle()
                continue
            }
            membership.sessions.request(message, to: member.address, timeout: timeout).whenComplete { result in
                state.withLockedValue { state in
                    state.answered += 1
                    switch result {
                    case .success(.replicaWriteReply(nil)): state.acknowledged += 1
                    case .success(.replicaWriteReply(let error?)): state.failures.append("\(member.name): \(error)")
                    case .success(let other): state.failures.append("\(member.name): unexpected reply \(other)")
                    case .failure(let error): state.failures.append("\(member.name): \(error)")
                    }
                }
                settle()
            }
        }
        loop.scheduleTask(in: timeout) {
            let acknowledged = state.withLockedValue { $0.acknowledged }
            promise.succeed(
                ReplicationOutcome(met: acknowledged >= required, acknowledged: acknowledged, failures: ["timed out"]))
        }
        return promise.futureResult
    }

    /// A write reaching a node that is not a home replica of its key goes to one
    /// that is: the first reachable in preference order, then the next on failure.
    private func forward(
        _ request: KVRequest, home: [NodeID], view: ClusterView, loop: EventLoop, required: Int
    ) -> EventLoopFuture<KVResponse> {
        guard !request.forwarded else {
            return loop.makeSucceededFuture(Self.errorResponse(503, "forwarded to a node that is not a home replica"))
        }
        var copy = request
        copy.forwarded = true
        let forwarded = copy
        let candidates = home.filter { view.isReachable($0) } + home.filter { !view.isReachable($0) }
        let deadline = NIODeadline.now() + .milliseconds(Int64(request.timeoutMilliseconds))
        @Sendable func attempt(_ index: Int, failures: [String]) -> EventLoopFuture<KVResponse> {
            let remaining = deadline - NIODeadline.now()
            guard (index < candidates.count) && (remaining > .zero), let member = view.members[candidates[index]] else {
                return loop.makeSucceededFuture(
                    Self.quorumFailure(
                        request.operation == .delete ? "delete" : "write", acknowledged: 0, required: required,
                        n: home.count, failures: failures.isEmpty ? ["no home replica reachable"] : failures))
            }
            return membership.sessions.request(.forward(forwarded), to: member.address, timeout: remaining)
                .hop(to: loop)
                .flatMap { reply in
                    if case .forwardReply(let response) = reply { return loop.makeSucceededFuture(response) }
                    return attempt(index + 1, failures: failures + ["\(member.name): unexpected reply"])
                }
                .flatMapError { error in attempt(index + 1, failures: failures + ["\(member.name): \(error)"]) }
        }
        return attempt(0, failures: [])
    }

    // MARK: - Reads

    private func read(_ request: ValidatedRequest, home: [NodeID], view: ClusterView, loop: EventLoop)
        -> EventLoopFuture<KVResponse>
    {
        let bucket = request.request.bucket
        let key = request.request.key
        let promise = loop.makePromise(of: KVResponse.self)
        let state = NIOLockedValueBox(
            (merged: Object?.none, answered: 0, succeeded: 0, failures: [String](), done: false))
        let required = request.required
        let total = home.count
        let lww = request.properties.conflicts == .lww
        let clusterName = self.clusterName

        @Sendable func record(_ result: Result<Object?, Error>, from name: String) {
            let response: KVResponse? = state.withLockedValue { state in
                guard !state.done else { return nil }
                state.answered += 1
                switch result {
                case .success(let object):
                    state.succeeded += 1
                    if let object {
                        state.merged = state.merged.map { lww ? $0.lwwMerged(object) : $0.merged(object) } ?? object
                    }
                case .failure(let error):
                    state.failures.append("\(name): \(error)")
                }
                if state.succeeded >= required {
                    state.done = true
                    let merged = state.merged
                    return Self.readResponse(merged, clusterName: clusterName)
                }
                if state.answered == total {
                    state.done = true
                    return Self.quorumFailure(
                        "read", acknowledged: state.succeeded, required: required, n: total, failures: state.failures)
                }
                return nil
            }
            if let response { promise.succeed(response) }
        }

        for node in home {
            if node == localID {
                replicas.read(bucket: bucket, key: key, on: loop).whenComplete { result in
                    record(result.mapError { $0 }, from: "local")
                }
                continue
            }
            guard let member = view.members[node] else {
                record(.failure(SessionError.closed), from: "\(node)")
                continue
            }
            membership.sessions.request(
                .replicaRead(bucket: bucket, key: key), to: member.address, timeout: request.timeout
            )
            .whenComplete { result in
                switch result {
                case .success(.replicaReadReply(let bytes, nil)):
                    do {
                        record(.success(try bytes.map { try ObjectCodec.decode($0) }), from: member.name)
                    } catch {
                        record(.failure(error), from: member.name)
                    }
                case .success(.replicaReadReply(_, let error?)):
                    record(.failure(ReplicaError(message: error)), from: member.name)
                case .success(let other):
                    record(.failure(ReplicaError(message: "unexpected reply \(other)")), from: member.name)
                case .failure(let error):
                    record(.failure(error), from: member.name)
                }
            }
        }
        loop.scheduleTask(in: request.timeout) {
            let response: KVResponse? = state.withLockedValue { state in
                guard !state.done else { return nil }
                state.done = true
                return Self.quorumFailure(
                    "read", acknowledged: state.succeeded, required: required, n: total,
                    failures: state.failures + ["timed out"])
            }
            if let response { promise.succeed(response) }
        }
        return promise.futureResult
    }

    struct ReplicaError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// `?replica=local`: what this node stores, without coordination.
    func localRead(bucket: String, key: String) -> EventLoopFuture<KVResponse> {
        let loop = group.next()
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
    func handleReplicaRequest(_ message: ClusterMessage, from peer: NodeID) -> EventLoopFuture<ClusterMessage> {
        let loop = group.next()
        switch message {
        case .replicaWrite(let write):
            let incoming: Object
            do {
                incoming = try ObjectCodec.decode(write.object)
            } catch {
                return loop.makeSucceededFuture(.replicaWriteReply(error: "unreadable object: \(error)"))
            }
            witness(incoming)
            return replicas.merge(bucket: write.bucket, key: write.key, incoming: incoming, on: loop)
                .map { _ in ClusterMessage.replicaWriteReply(error: nil) }
                .recover { error in .replicaWriteReply(error: "\(error)") }
        case .replicaRead(let bucket, let key):
            return replicas.read(bucket: bucket, key: key, on: loop)
                .map { object in ClusterMessage.replicaReadReply(object: object.map(ObjectCodec.encode), error: nil) }
                .recover { error in .replicaReadReply(object: nil, error: "\(error)") }
        case .forward(let request):
            return handle(request).map { .forwardReply($0) }
        default:
            return loop.makeSucceededFuture(.refused(reason: "not a store request"))
        }
    }

    /// Keeps this node's hybrid logical clock ahead of every stamp it has seen, so
    /// its next write is ordered after them in LWW buckets.
    private func witness(_ object: Object) {
        guard let newest = object.values.map(\.stamp.timestamp).max() else { return }
        _ = clock.withLockedValue { $0.witness(newest, wall: WallClock.nanoseconds()) }
    }

    // MARK: - Responses

    static func errorResponse(_ status: UInt16, _ message: String) -> KVResponse {
        KVResponse(status: status, body: json(["error": message]))
    }

    static func quorumFailure(_ operation: String, acknowledged: Int, required: Int, n: Int, failures: [String])
        -> KVResponse
    {
        struct Body: Encodable {
            var error: String
            var acknowledged: Int
            var required: Int
            var replicas: Int
            var failures: [String]
        }
        let body = Body(
            error: "\(operation) quorum not met: \(acknowledged) of \(n) replicas acknowledged, \(required) required",
            acknowledged: acknowledged, required: required, replicas: n, failures: failures)
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
