import ChorusCore
import ChorusStorage
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A replica's objects: DVV-versioned values in the durable store. Every change
/// is a read-merge-write inside one store transaction, so concurrent writes to a
/// key on one replica never lose each other.
final class ReplicaStore: Sendable {
    typealias Object = ChorusCore.StoredObject

    /// Warn about a key with this many siblings (Riak's `max_siblings` warning).
    static let siblingWarning = 25
    /// Refuse writes that would leave a key with more siblings than this.
    static let siblingLimit = 100

    enum WriteError: Error, CustomStringConvertible {
        case tooManySiblings(Int)
        case storage(StoreError)
        case corruptObject(String)

        var description: String {
            switch self {
            case .tooManySiblings(let count):
                "the key would have \(count) siblings (limit \(ReplicaStore.siblingLimit)); read it and write back with its context to resolve them"
            case .storage(let error): "\(error)"
            case .corruptObject(let reason): "stored object is unreadable: \(reason)"
            }
        }
    }

    let store: any ObjectStore & HintStore
    let buckets: BucketTable
    let partitioner: Partitioner

    /// One durable change of a stored object, as anti-entropy's trees need it.
    struct Change: Sendable {
        var partition: Int
        var bucket: String
        var key: String
        /// `VersionDigest` of the object before the write; nil when the key was absent.
        var oldDigest: UInt64?
        /// `VersionDigest` of the object after the write; nil when the key was
        /// removed (a reaped tombstone).
        var newDigest: UInt64?

        /// Brings `tree` (the tree of `partition`) up to date with this change.
        func apply(to tree: inout TictacTree) {
            if let newDigest {
                tree.update(bucket: bucket, key: key, oldDigest: oldDigest, newDigest: newDigest)
            } else if let oldDigest {
                tree.remove(bucket: bucket, key: key, digest: oldDigest)
            }
        }
    }

    /// Called after every durable write made through `change` (on the store's
    /// writer thread): the one write path reports to anti-entropy without knowing it.
    private let changeHook = ChangeHook()

    /// Sets the closure told about every durable object change.
    func onChange(_ hook: @escaping @Sendable (Change) -> Void) {
        changeHook.set(hook)
    }

    /// Holds the hook with its concrete type: kept in a generic box, the closure
    /// was re-abstracted on every read, and the thunks cost more than the write.
    private final class ChangeHook: @unchecked Sendable {
        private let lock = NIOLock()
        private var hook: (@Sendable (Change) -> Void)?

        func set(_ hook: @escaping @Sendable (Change) -> Void) {
            lock.withLock { self.hook = hook }
        }

        func get() -> (@Sendable (Change) -> Void)? {
            lock.withLock { hook }
        }
    }

    init(store: any ObjectStore & HintStore, buckets: BucketTable, partitioner: Partitioner) {
        self.store = store
        self.buckets = buckets
        self.partitioner = partitioner
    }

    /// What this node holds for the key: its own copy merged with any hints it
    /// keeps for other replicas, so a fallback answers reads for the keys it holds
    /// until handoff.
    ///
    /// Read in place on the calling event loop: a primary-key lookup in SQLite's
    /// page cache takes microseconds, less than a hop to a thread pool, and reading
    /// inline keeps back-pressure (a pool's queue grew without bound under load).
    func read(bucket: String, key: String, on loop: EventLoop) -> EventLoopFuture<Object?> {
        let store = self.store
        let lww = buckets.properties(of: bucket).conflicts == .lww
        let partition = partitioner.partition(bucket: bucket, key: key)
        return loop.makeCompletedFuture {
            var object = try store.get(partition: partition, bucket: bucket, key: key).map {
                try ObjectCodec.decode($0)
            }
            for hint in try store.hints(bucket: bucket, key: key) {
                let held = try ObjectCodec.decode(hint.value)
                object = object.map { lww ? $0.lwwMerged(held) : $0.merged(held) } ?? held
            }
            return object
        }
    }

    /// Keeps `incoming` as a hint for `target` (merged with any hint already held
    /// for it), durably.
    func hold(bucket: String, key: String, incoming: Object, for target: NodeID, now: UInt64, on loop: EventLoop)
        -> EventLoopFuture<Void>
    {
        let lww = buckets.properties(of: bucket).conflicts == .lww
        let promise = loop.makePromise(of: Void.self)
        store.updateHint(
            target: target.description, bucket: bucket, key: key, now: now,
            { stored in
                guard let stored, let held = try? ObjectCodec.decode(stored) else {
                    return ObjectCodec.encode(incoming)
                }
                return ObjectCodec.encode(lww ? held.lwwMerged(incoming) : held.merged(incoming))
            },
            completion: { result in
                switch result {
                case .success: promise.succeed(())
                case .failure(let error): promise.fail(WriteError.storage(error))
                }
            })
        return promise.futureResult
    }

    /// Coordinator write (Dynamo §4.5, DVV §5): merges the client's value (or a
    /// tombstone), written with the context it read, into the stored object and mints
    /// this replica's next dot. Completes with the new object once durable.
    func coordinate(
        bucket: String, key: String, value: [UInt8]?, context: VersionVector, replica: NodeID,
        mintStamp: @escaping @Sendable (Object?) -> LWWStamp, on loop: EventLoop,
        computed: (@Sendable (Object) -> Void)? = nil
    ) -> EventLoopFuture<Object> {
        let lww = buckets.properties(of: bucket).conflicts == .lww
        return change(bucket: bucket, key: key, on: loop, computed: computed) { stored in
            var object = stored ?? Object()
            // Minted against what is stored, so in LWW buckets a write made after a
            // read is ordered after what it read.
            let stamp = mintStamp(stored)
            switch (value, lww) {
            case (let data?, false): object.put(data, context: context, replica: replica, stamp: stamp)
            case (nil, false): object.delete(context: context, replica: replica, stamp: stamp)
            case (let data?, true): object.lwwPut(data, context: context, replica: replica, stamp: stamp)
            case (nil, true): object.lwwDelete(context: context, replica: replica, stamp: stamp)
            }
            return object
        }
    }

    /// Replica write: merges an object pushed by a coordinator, read repair or
    /// handoff into what this replica holds (DVV sync), durably.
    func merge(bucket: String, key: String, incoming: Object, on loop: EventLoop) -> EventLoopFuture<Object> {
        let lww = buckets.properties(of: bucket).conflicts == .lww
        return change(bucket: bucket, key: key, on: loop) { stored in
            guard let stored else { return lww ? incoming.lwwResolved() : incoming }
            // LWW objects merge by stamp, not by dot: a plain sync can keep the loser
            // when the winner moved slots (a flaw of Riak's dvvset:lww).
            return lww ? stored.lwwMerged(incoming) : stored.merged(incoming)
        }
    }

    /// - Parameter computed: called on the store's writer thread with the new
    ///   object as soon as it is computed, before its commit is durable (the
    ///   coordinator starts replicating then, in parallel with its own fsync).
    /// Tombstone reaping (DESIGN §4, §6): physically removes the key if this replica's
    /// own copy (hints are never reaped) is a tombstone whose `VersionDigest` is still
    /// `digest`, the version every home replica was found to hold. Read, check and
    /// delete are atomic: the delete applies only if the stored bytes are still those
    /// checked (`ObjectStore.delete(ifValue:)`), so a write that raced in (a new digest)
    /// keeps the key and nothing newer is lost. Completes with whether it deleted; the
    /// change hook removes the key from anti-entropy's tree.
    func reap(bucket: String, key: String, digest: UInt64, on loop: EventLoop) -> EventLoopFuture<Bool> {
        let stored: [UInt8]
        let partition = partitioner.partition(bucket: bucket, key: key)
        do {
            guard let bytes = try store.get(partition: partition, bucket: bucket, key: key) else {
                return loop.makeSucceededFuture(false)
            }
            stored = bytes
        } catch {
            return loop.makeFailedFuture(WriteError.storage(error))
        }
        guard let object = try? ObjectCodec.decode(stored), object.isDeleted, VersionDigest.of(object) == digest else {
            return loop.makeSucceededFuture(false)
        }
        let promise = loop.makePromise(of: Bool.self)
        let hook = changeHook.get()
        store.delete(partition: partition, bucket: bucket, key: key, ifValue: stored) { result in
            switch result {
            case .success(let deleted):
                if deleted, let hook {
                    hook(Change(partition: partition, bucket: bucket, key: key, oldDigest: digest, newDigest: nil))
                }
                promise.succeed(deleted)
            case .failure(let error):
                promise.fail(WriteError.storage(error))
            }
        }
        return promise.futureResult
    }

    /// Removes a copy this node no longer owns (its partition moved to another node
    /// in a ring change), unless it changed since `record` was read. Completes with
    /// whether it deleted; the change hook removes the key from anti-entropy's tree.
    func drop(_ record: StoredRecord, on loop: EventLoop) -> EventLoopFuture<Bool> {
        let promise = loop.makePromise(of: Bool.self)
        let hook = changeHook.get()
        let partition = partitioner.partition(bucket: record.bucket, key: record.key)
        let digest = (try? ObjectCodec.decode(record.value)).map(VersionDigest.of)
        store.delete(partition: partition, bucket: record.bucket, key: record.key, ifValue: record.value) { result in
            switch result {
            case .success(let deleted):
                if deleted, let hook {
                    hook(
                        Change(
                            partition: partition, bucket: record.bucket, key: record.key, oldDigest: digest,
                            newDigest: nil))
                }
                promise.succeed(deleted)
            case .failure(let error):
                promise.fail(WriteError.storage(error))
            }
        }
        return promise.futureResult
    }

    private func change(
        bucket: String, key: String, on loop: EventLoop,
        computed: (@Sendable (Object) -> Void)? = nil,
        _ body: @escaping @Sendable (Object?) -> Object
    ) -> EventLoopFuture<Object> {
        let promise = loop.makePromise(of: Object.self)
        let state = ChangeState()
        let partition = partitioner.partition(bucket: bucket, key: key)
        let hook = changeHook.get()
        store.update(
            bucket: bucket, key: key, partition: partition,
            { stored in
                let current: Object?
                do {
                    current = try stored.map { try ObjectCodec.decode($0) }
                } catch {
                    state.outcome = .failure(.corruptObject("\(error)"))
                    return nil
                }
                let next = body(current)
                if next.siblingCount > Self.siblingLimit, next.siblingCount > (current?.siblingCount ?? 0) {
                    state.outcome = .failure(.tooManySiblings(next.siblingCount))
                    return nil
                }
                state.outcome = .success(next)
                state.previous = current
                computed?(next)
                return ObjectCodec.encode(next)
            },
            completion: { result in
                switch result {
                case .failure(let error):
                    promise.fail(WriteError.storage(error))
                case .success:
                    switch state.outcome {
                    case .success(let object)?:
                        if let hook {
                            hook(
                                Change(
                                    partition: partition, bucket: bucket, key: key,
                                    oldDigest: state.previous.map(VersionDigest.of),
                                    newDigest: VersionDigest.of(object)))
                        }
                        promise.succeed(object)
                    case .failure(let error)?: promise.fail(error)
                    case nil: promise.fail(WriteError.corruptObject("no outcome"))
                    }
                }
            })
        return promise.futureResult
    }
}

/// What one `change`'s transform found and decided, for its completion. Unlocked: the store
/// runs a write's transform and then its completion on its writer thread, one after the
/// other (a completion on another thread means the write was refused before any transform
/// ran, and reads nothing here). Two locked boxes per replica write cost more.
private final class ChangeState: @unchecked Sendable {
    var outcome: Result<ReplicaStore.Object, ReplicaStore.WriteError>?
    var previous: ReplicaStore.Object?
}
