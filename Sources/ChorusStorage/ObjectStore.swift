// The storage interface (DESIGN §8). `LocalStore` implements it, with its objects in SQLite
// or in the object log (`ObjectBackend`); the protocol keeps the node independent of both.

/// A durable map `(partition, bucket, key) -> value`, ordered by partition first (anti-entropy and
/// ring changes scan one partition at a time), plus a small `meta` map for node state. A key's
/// partition is a function of the key (`Partitioner`): callers always pass the same one for a key.
///
/// Writes go through `update`: the transform runs inside the store's write transaction with the
/// currently stored value, so read-merge-write of one key is atomic. A completion fires only once
/// the write is durable per the store's `SyncPolicy`; a write that could not be committed is never
/// acknowledged: its completion gets the error.
public protocol ObjectStore: Sendable {
    /// The stored value, or nil when the key is absent.
    func get(partition: Int, bucket: String, key: String) throws(StoreError) -> [UInt8]?

    /// Up to `limit` objects of `partition`, ordered by `(bucket, key)`, strictly after `after`
    /// (nil: from the start). Pass the last object's `objectKey` to get the next page; an empty
    /// page means the partition is exhausted.
    func scan(partition: Int, after: ObjectKey?, limit: Int) throws(StoreError) -> [StoredRecord]

    /// Number of stored objects.
    func count() throws(StoreError) -> Int

    /// Atomically read-modify-write one key. `transform` runs on the store's writer thread, inside
    /// the transaction, with the stored value (nil when absent); it returns the value to store, or
    /// nil for "no change" (it cannot delete: use `delete`). It must be quick and must not call back
    /// into the store synchronously.
    ///
    /// `completion` gets the value stored after the operation (the unchanged stored value when the
    /// transform returned nil) once the commit is durable, or the error that prevented the commit.
    /// It runs on the writer thread, or on the caller's thread when the write is refused at once
    /// (store closed, queue full).
    func update(
        bucket: String, key: String, partition: Int,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void)

    /// Physically remove a key (tombstone reaping). `completion` gets whether the key existed, once
    /// the removal is durable.
    func delete(
        partition: Int, bucket: String, key: String, completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void)

    /// Physically remove a key only if its stored value still equals `expected` (the bytes the
    /// caller read and checked): the read-check-delete of tombstone reaping, atomic inside the
    /// write path, so a write that raced in keeps the key. `completion` gets whether it deleted,
    /// once the removal is durable.
    func delete(
        partition: Int, bucket: String, key: String, ifValue expected: [UInt8],
        completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void)

    /// A node-state value (see `MetaName`), or nil when never set.
    func meta(_ name: String) throws(StoreError) -> [UInt8]?

    /// Store a node-state value; returns once it is durable (fsynced whatever the sync policy).
    /// Must not be called from an `update` transform or completion.
    func setMeta(_ name: String, _ value: [UInt8]) throws(StoreError)

    /// Flush queued writes and close. Idempotent; later calls fail with `StoreError.closed`.
    func close()
}

/// Identifies one object; also the cursor of `scan(partition:after:limit:)`.
public struct ObjectKey: Hashable, Sendable, CustomStringConvertible {
    public var bucket: String
    public var key: String

    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    public var description: String { "\(bucket)/\(key)" }
}

/// One object returned by a scan.
public struct StoredRecord: Hashable, Sendable {
    public var bucket: String
    public var key: String
    public var value: [UInt8]

    public init(bucket: String, key: String, value: [UInt8]) {
        self.bucket = bucket
        self.key = key
        self.value = value
    }

    public var objectKey: ObjectKey { ObjectKey(bucket: bucket, key: key) }
}

/// Well-known names in the `meta` table.
public enum MetaName {
    public static let nodeID = "node.id"
    public static let incarnation = "node.incarnation"
    public static let partitionCount = "cluster.partitions"
    public static let clusterName = "cluster.name"
    /// Gossip addresses of the members last known, one per line: a restarted node
    /// rejoins through them even when no seed is configured (serf's `-rejoin`).
    public static let knownPeers = "cluster.peers"
    /// Where this node stands in the ring: `joining`, `member`, `leaving` or `left`
    /// (absent in data dirs from before ring changes were tracked: a member).
    public static let ringState = "node.ring"
}

/// Where a store keeps its objects (node state and hints are in the SQLite database always).
///
/// - `sqlite`: a table of the database, one B-tree ordered by partition.
/// - `log`: append-only segment files and an in-memory key directory (`ObjectLog`, as Riak's
///   Bitcask): 15-35 % less CPU per write; every key is held in memory (~150 bytes each).
public enum ObjectBackend: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case sqlite
    case log

    public var description: String { rawValue }
}

/// When a commit group reaches the disk.
///
/// - `batch`: every commit group is fsynced (SQLite `synchronous=FULL`) before any of its
///   completions fire. An acknowledged write survives `kill -9` of the process, a kernel crash
///   and power loss. Costs one fsync per group; concurrent writers share it.
/// - `periodic(interval)`: commits are written to the WAL in the OS page cache
///   (`synchronous=NORMAL`) and the store checkpoints/fsyncs every `interval`. An acknowledged
///   write still survives `kill -9` of the process (the kernel holds it), but writes of the last
///   `interval` can be lost on power loss or a kernel crash. The database stays consistent either
///   way. `setMeta` is always fsynced.
public enum SyncPolicy: Sendable, Equatable, CustomStringConvertible {
    case batch
    case periodic(Duration)

    public var description: String {
        switch self {
        case .batch: "batch"
        case .periodic(let interval): "periodic(\(interval))"
        }
    }
}

/// Bounds on the write path.
public struct StoreLimits: Sendable, Equatable {
    /// Operations per commit group.
    public var maxGroupOperations: Int
    /// Bytes of values written per commit group (a group closes after crossing it).
    public var maxGroupBytes: Int
    /// Writes waiting for the writer; beyond it `update` fails with `StoreError.overloaded`.
    public var maxQueuedOperations: Int
    /// How long a connection waits for a lock held by another process before failing.
    public var busyTimeoutMilliseconds: Int32
    /// Idle read-only connections kept open for `get`/`scan`.
    public var maxIdleReaders: Int
    /// Cap on the database size in pages (SQLite `max_page_count`); nil: no cap. Past it writes
    /// fail with `StoreError.diskFull`, as on a full disk.
    public var maxDatabasePages: Int?
    /// Cap on one stored row (value plus bucket and key, plus a few bytes of framing); nil:
    /// SQLite's default (1 GB). Past it that write alone fails with `StoreError.tooLarge`. A backstop:
    /// the HTTP layer enforces the configured value limit before this.
    public var maxRowBytes: Int?

    /// `maxRowBytes` as enforced: never below 1 KiB (room for a bucket, a key and framing).
    var rowLimit: Int? { maxRowBytes.map { max(1024, $0) } }
    /// Cap on the total size of stored hints (see `Hint.bytes`); past it `updateHint` fails with
    /// `StoreError.hintsFull` and other writes go on.
    public var maxHintBytes: Int
    /// Run `PRAGMA quick_check` when opening (the default: a damaged file stops the agent at
    /// start). Off only in tests that need to reach damage at run time.
    public var checkIntegrityAtOpen: Bool
    /// Group commit delay (MySQL's binlog_group_commit_sync_delay, PostgreSQL's commit_delay):
    /// while the store is busy — the last commit group held at least `commitSiblings`
    /// operations — the writer waits this long before taking the next group, so that more
    /// writes share its fsync. A lone writer is never delayed. Zero: off.
    public var commitDelay: Duration
    /// The group size from which `commitDelay` applies.
    public var commitSiblings: Int

    public init(
        maxGroupOperations: Int = 1000, maxGroupBytes: Int = 4 << 20, maxQueuedOperations: Int = 16384,
        busyTimeoutMilliseconds: Int32 = 5000, maxIdleReaders: Int = 4, maxDatabasePages: Int? = nil,
        maxRowBytes: Int? = nil, maxHintBytes: Int = 1 << 30, checkIntegrityAtOpen: Bool = true,
        commitDelay: Duration = .zero, commitSiblings: Int = 8
    ) {
        self.commitDelay = max(.zero, commitDelay)
        self.commitSiblings = max(1, commitSiblings)
        self.checkIntegrityAtOpen = checkIntegrityAtOpen
        self.maxGroupOperations = max(1, maxGroupOperations)
        self.maxGroupBytes = max(1, maxGroupBytes)
        self.maxQueuedOperations = max(1, maxQueuedOperations)
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.maxIdleReaders = max(0, maxIdleReaders)
        self.maxDatabasePages = maxDatabasePages
        self.maxRowBytes = maxRowBytes
        self.maxHintBytes = max(0, maxHintBytes)
    }
}

/// Whether the store can take writes, as the last failure left it (`chorus status`'s
/// storage line). Nothing is ever acknowledged that was not committed, whatever the state.
public enum StoreHealth: Sendable, Equatable, CustomStringConvertible {
    case ok
    /// The last commit failed for want of space (SQLITE_FULL, or the `maxDatabasePages`
    /// cap): writes fail until one commits again, which clears it (space was freed).
    /// Reads go on.
    case diskFull(detail: String)
    /// The last commit failed with an I/O error; cleared like `diskFull` by the next commit.
    case ioError(detail: String)
    /// SQLite found the file damaged (SQLITE_CORRUPT or SQLITE_NOTADB) at run time. Sticky:
    /// every later write is refused at once with `StoreError.corrupt`, so nothing more is
    /// written to a damaged file; a restart runs the integrity check at open and stops.
    case corrupt(detail: String)

    public var isWritable: Bool {
        switch self {
        case .ok: true
        case .diskFull, .ioError, .corrupt: false
        }
    }

    /// Short state for status output: `ok`, `read-only (disk full)`, ...
    public var summary: String {
        switch self {
        case .ok: "ok"
        case .diskFull: "read-only (disk full)"
        case .ioError: "read-only (I/O error)"
        case .corrupt: "failed (database corrupt)"
        }
    }

    public var detail: String? {
        switch self {
        case .ok: nil
        case .diskFull(let detail), .ioError(let detail), .corrupt(let detail): detail
        }
    }

    public var description: String { detail.map { "\(summary): \($0)" } ?? summary }

    /// The state a failed commit or read leaves; nil for errors that say nothing about
    /// the file (a single oversized value, a full queue).
    init?(after error: StoreError) {
        switch error {
        case .diskFull(_, let detail): self = .diskFull(detail: detail)
        case .io(_, let detail): self = .ioError(detail: detail)
        case .corrupt(_, let detail): self = .corrupt(detail: detail)
        case .notADatabase: self = .corrupt(detail: "file is not a database")
        default: return nil
        }
    }
}

/// Counters of the write path (for metrics and tests).
public struct StoreStatistics: Sendable, Equatable {
    /// Commit groups that committed.
    public var commits: Int = 0
    /// Commit groups that failed (every completion in them got the error).
    public var failedCommits: Int = 0
    /// Operations acknowledged as durable.
    public var operations: Int = 0
    /// The largest committed group, in operations.
    public var largestGroup: Int = 0
    /// Periodic checkpoints run (`SyncPolicy.periodic`).
    public var checkpoints: Int = 0
    /// Checkpoints the background checkpointer ran (each once the WAL reached its interval).
    public var backgroundCheckpoints: Int = 0
    /// Times the writer waited `StoreLimits.commitDelay` before taking a group.
    public var delayedGroups: Int = 0
    /// Operations waiting for the writer right now.
    public var queued: Int = 0

    public init() {}
}

/// Why the store refused to open, or a read or write failed. Worded for the operator.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be opened or created.
    case cannotOpen(path: String, detail: String)
    /// The file is not a SQLite database at all.
    case notADatabase(path: String)
    /// A SQLite database that Chorus did not create.
    case foreignDatabase(path: String, applicationID: Int32)
    /// SQLite found corruption (at open, by `quick_check`, or later).
    case corrupt(path: String, detail: String)
    /// Written by a newer Chorus with a schema this build does not know.
    case schemaTooNew(path: String, found: Int32, supported: Int32)
    /// The disk (or `maxDatabasePages`) is full; the failed commit was not acknowledged.
    case diskFull(path: String, detail: String)
    /// The OS reported an I/O error; the failed commit was not acknowledged.
    case io(path: String, detail: String)
    /// One write's value (with its bucket and key) exceeds `StoreLimits.maxRowBytes`; only that
    /// write failed.
    case tooLarge(path: String, detail: String)
    /// Any other SQLite failure.
    case sqlite(path: String, code: Int32, detail: String)
    /// Storing the hint would take the hints past `StoreLimits.maxHintBytes`; only that hint was
    /// refused.
    case hintsFull(path: String, limit: Int)
    /// Too many writes are waiting; nothing was queued.
    case overloaded(path: String, queued: Int)
    /// The store was closed.
    case closed(path: String)

    public var description: String {
        let remedy = "restore from a replica or remove the data dir"
        switch self {
        case .cannotOpen(let path, let detail):
            return "stopping: cannot open the database \(path) (\(detail)); check that the data dir is writable"
        case .notADatabase(let path):
            return "stopping: \(path) is not a SQLite database (damaged or overwritten); \(remedy)"
        case .foreignDatabase(let path, let applicationID):
            return "stopping: \(path) is a SQLite database that Chorus did not create "
                + "(application_id \(hex(applicationID)), expected \(hex(chorusApplicationID))); "
                + "check the data dir setting, or remove the data dir if it is a stale leftover"
        case .corrupt(let path, let detail):
            return "stopping: \(Self.file(path)) \(path) is corrupt (\(Self.origin(path))\(detail)); \(remedy)"
        case .schemaTooNew(let path, let found, let supported):
            return "stopping: the database \(path) has storage schema version \(found), this chorus "
                + "knows versions up to \(supported); run a newer chorus, or \(remedy)"
        case .diskFull(let path, let detail):
            return "write failed: disk full for \(path) (\(Self.origin(path))\(detail)); nothing of the failed commit "
                + "was acknowledged; free space on the data volume"
        case .io(let path, let detail):
            return "write failed: I/O error on \(path) (\(Self.origin(path))\(detail)); nothing of the failed commit "
                + "was acknowledged; check the disk"
        case .tooLarge(let path, let detail):
            return
                "write refused: the object is too large for \(path) (\(Self.origin(path))\(detail)); it was not stored"
        case .sqlite(let path, let code, let detail):
            return "storage error on \(path): SQLite error \(code): \(detail)"
        case .hintsFull(let path, let limit):
            return "hint refused: the hints in \(path) have reached their bound of \(limit) bytes; "
                + "the hint was not stored (anti-entropy repairs its key)"
        case .overloaded(let path, let queued):
            return "write refused: the storage queue of \(path) is full (\(queued) writes waiting); retry later"
        case .closed(let path):
            return "the store \(path) is closed"
        }
    }
}

extension StoreError {
    /// Whether `path` is the `log` backend's (a segment or its folder) rather than the database's.
    static func isObjectLog(_ path: String) -> Bool { path.hasSuffix(".seg") || path.hasSuffix("-objects") }

    static func file(_ path: String) -> String { isObjectLog(path) ? "the object log segment" : "the database" }

    /// Who reported the detail: SQLite, or (for the log backend) the file system or the log's checks.
    static func origin(_ path: String) -> String { isObjectLog(path) ? "" : "SQLite: " }
}

private func hex(_ value: Int32) -> String {
    "0x" + String(UInt32(bitPattern: value), radix: 16)
}

/// `PRAGMA application_id` of every Chorus database: "CHRS".
public let chorusApplicationID: Int32 = 0x4348_5253

/// `PRAGMA user_version`: the storage schema this build writes. 1: objects and meta; 2: adds
/// hints (a version-1 database is migrated when opened).
/// 1: objects + meta; 2: hints; 3: objects keyed by (partition, bucket, key), one B-tree (the
/// partition index of 1 and 2 dirtied a second page per write).
public let chorusSchemaVersion: Int32 = 3

extension ObjectStore {
    /// `update` for async callers: returns the stored value once durable.
    @discardableResult
    public func update(
        bucket: String, key: String, partition: Int,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?
    ) async throws(StoreError) -> [UInt8]? {
        let result: Result<[UInt8]?, StoreError> = await withCheckedContinuation { continuation in
            update(bucket: bucket, key: key, partition: partition, transform) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Store `value` unconditionally; returns once durable.
    public func put(bucket: String, key: String, partition: Int, value: [UInt8]) async throws(StoreError) {
        try await update(bucket: bucket, key: key, partition: partition) { _ in value }
    }

    /// `delete` for async callers: whether the key existed, once the removal is durable.
    @discardableResult
    public func delete(partition: Int, bucket: String, key: String) async throws(StoreError) -> Bool {
        let result: Result<Bool, StoreError> = await withCheckedContinuation { continuation in
            delete(partition: partition, bucket: bucket, key: key) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// `delete(ifValue:)` for async callers: whether it deleted, once durable.
    @discardableResult
    public func delete(
        partition: Int, bucket: String, key: String, ifValue expected: [UInt8]
    ) async throws(StoreError) -> Bool {
        let result: Result<Bool, StoreError> = await withCheckedContinuation { continuation in
            delete(partition: partition, bucket: bucket, key: key, ifValue: expected) {
                continuation.resume(returning: $0)
            }
        }
        return try result.get()
    }

    /// Every object of `partition`, read in pages of `pageSize`.
    public func scan(partition: Int, pageSize: Int = 1000) throws(StoreError) -> [StoredRecord] {
        var all: [StoredRecord] = []
        var cursor: ObjectKey? = nil
        while true {
            let page = try scan(partition: partition, after: cursor, limit: pageSize)
            all.append(contentsOf: page)
            guard let last = page.last, page.count == max(1, pageSize) else { return all }
            cursor = last.objectKey
        }
    }
}
