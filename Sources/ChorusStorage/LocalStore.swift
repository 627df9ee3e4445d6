import CSQLite
import Foundation

/// This node's store (DESIGN §8): the SQLite database `chorus.db` (WAL mode) for node state
/// and hints, and the objects either in it (`ObjectBackend.sqlite`) or in the object log
/// beside it (`.log`, see ObjectLog.swift). One writer thread group-commits every queued
/// write: a group's database writes in one transaction, its object writes in one append;
/// SQLite reads go through a small pool of read connections, so reads never wait for the
/// writer.
///
/// Thread-safe. Opening checks that the file is a Chorus database (`application_id`), that its
/// schema is known (`user_version`) and that it is intact (`quick_check`); each failure is a
/// `StoreError` whose description tells the operator what to do.
public final class LocalStore: ObjectStore, Sendable {
    let engine: StoreEngine

    /// The database file.
    public var path: String { engine.path }
    public var sync: SyncPolicy { engine.sync }

    /// Opens (creating the file and its folder when missing) the database at `path`. With the
    /// `log` backend the objects live in the folder `<path>-objects` (see `ObjectLog`); node
    /// state and hints stay in the database either way.
    public init(
        path: String, sync: SyncPolicy = .batch, limits: StoreLimits = StoreLimits(),
        backend: ObjectBackend = .sqlite, logSettings: ObjectLogSettings = ObjectLogSettings()
    ) throws(StoreError) {
        engine = try StoreEngine(path: path, sync: sync, limits: limits, backend: backend, logSettings: logSettings)
        engine.start()
    }

    /// Where the objects are kept.
    public var backend: ObjectBackend { engine.objectLog == nil ? .sqlite : .log }

    /// The `log` backend's size and compaction counters (nil with `sqlite`).
    public var logStatistics: ObjectLogStatistics? { engine.objectLog?.statistics }

    /// Bytes of a torn write the `log` backend cut off its active segment at open (0 normally).
    public var truncatedAtOpen: Int { engine.objectLog?.truncatedAtOpen ?? 0 }

    deinit { engine.close() }

    /// Counters of the write path.
    public var statistics: StoreStatistics { engine.statistics }

    /// Whether writes are going through, as the last commit (or a read that found damage)
    /// left it.
    public var health: StoreHealth { engine.health }

    /// Calls `handler` (on the writer thread, or a reader's) each time `health` changes, with
    /// the new state: the agent logs it.
    public func onHealthChange(_ handler: @escaping @Sendable (StoreHealth) -> Void) {
        engine.setHealthHandler(handler)
    }

    public func get(partition: Int, bucket: String, key: String) throws(StoreError) -> [UInt8]? {
        if let log = engine.objectLog {
            return try engine.noticingDamage { () throws(StoreError) in
                try log.get(partition: partition, bucket: bucket, key: key)
            }
        }
        return try engine.withReader { connection throws(StoreError) in
            let statement = try connection.statement(StoreEngine.selectObject)
            defer { statement.reset() }
            try statement.bind(1, partition)
            try statement.bind(2, bucket)
            try statement.bind(3, key)
            return try statement.step() ? statement.blob(0) : nil
        }
    }

    public func scan(partition: Int, after: ObjectKey?, limit: Int) throws(StoreError) -> [StoredRecord] {
        if let log = engine.objectLog {
            return try engine.noticingDamage { () throws(StoreError) in
                try log.scan(partition: partition, after: after, limit: limit)
            }
        }
        return try engine.withReader { connection throws(StoreError) in
            try connection.keysetPage(
                select: "bucket, key, value", from: "objects", where: "partition", after: after, limit: limit,
                bindFilter: { statement throws(StoreError) in try statement.bind(1, partition) },
                row: { StoredRecord(bucket: $0.text(0), key: $0.text(1), value: $0.blob(2)) })
        }
    }

    public func count() throws(StoreError) -> Int {
        if let log = engine.objectLog { return try engine.noticingDamage { () throws(StoreError) in log.count() } }
        return try engine.withReader { connection throws(StoreError) in
            Int(try connection.integer("SELECT count(*) FROM objects"))
        }
    }

    public func update(
        bucket: String, key: String, partition: Int,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void
    ) {
        engine.submit(
            .update(bucket: bucket, key: key, partition: partition, transform: transform, completion: completion))
    }

    public func delete(
        partition: Int, bucket: String, key: String, completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void
    ) {
        engine.submit(.delete(partition: partition, bucket: bucket, key: key, expected: nil, completion: completion))
    }

    public func delete(
        partition: Int, bucket: String, key: String, ifValue expected: [UInt8],
        completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void
    ) {
        engine.submit(
            .delete(partition: partition, bucket: bucket, key: key, expected: expected, completion: completion))
    }

    public func meta(_ name: String) throws(StoreError) -> [UInt8]? {
        try engine.withReader { connection throws(StoreError) in
            let statement = try connection.statement("SELECT value FROM meta WHERE name = ?1")
            defer { statement.reset() }
            try statement.bind(1, name)
            return try statement.step() ? statement.blob(0) : nil
        }
    }

    public func setMeta(_ name: String, _ value: [UInt8]) throws(StoreError) {
        try engine.setMeta(name, value)
    }

    public func close() { engine.close() }
}

/// A queued write.
enum WriteOperation {
    case update(
        bucket: String, key: String, partition: Int, transform: @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @Sendable (Result<[UInt8]?, StoreError>) -> Void)
    /// `expected`: delete only if the stored value equals it (nil: unconditionally).
    case delete(
        partition: Int, bucket: String, key: String, expected: [UInt8]?,
        completion: @Sendable (Result<Bool, StoreError>) -> Void)
    case setMeta(name: String, value: [UInt8], completion: @Sendable (Result<Void, StoreError>) -> Void)
    case hint(HintOperation)

    func fail(_ error: StoreError) {
        switch self {
        case .update(_, _, _, _, let completion): completion(.failure(error))
        case .delete(_, _, _, _, let completion): completion(.failure(error))
        case .setMeta(_, _, let completion): completion(.failure(error))
        case .hint(let operation): operation.fail(error)
        }
    }

    var isMeta: Bool {
        if case .setMeta = self { return true }
        return false
    }

    /// An object write (`update`, `delete`): what the `log` backend takes.
    var isObjectWrite: Bool {
        switch self {
        case .update, .delete: true
        case .setMeta, .hint: false
        }
    }
}

/// What one applied operation does once its group commits (or fails).
struct PendingCompletion {
    let succeed: () -> Void
    let fail: (StoreError) -> Void
}

/// The shared state behind `LocalStore`. The writer thread holds it (not the store), so
/// dropping the store's last reference closes it.
///
/// `@unchecked Sendable`: the queue, state and counters are guarded by `condition`; the reader pool
/// by `poolLock`; `writer` is used only by the writer thread once started (and by `init` before).
final class StoreEngine: @unchecked Sendable {
    let path: String
    let sync: SyncPolicy
    let limits: StoreLimits

    private enum State { case open, closing, closed }

    private let condition = NSCondition()
    private var queue: [WriteOperation] = []
    private var state = State.open
    private var stats = StoreStatistics()
    private var writerThreadID: pthread_t? = nil
    private var writerFinished = false
    private var healthState = StoreHealth.ok
    private var healthHandler: (@Sendable (StoreHealth) -> Void)?

    private let poolLock = NSLock()
    private var idleReaders: [SQLiteConnection] = []
    private var poolClosed = false

    let writer: SQLiteConnection
    /// Checkpoints the WAL beside the writer (see WALCheckpointer.swift), in batch mode. The
    /// periodic policy keeps SQLite's automatic checkpoint: its timed checkpoint is what fsyncs
    /// the WAL, and must not find the checkpoint lock held by another connection.
    let checkpointer: WALCheckpointer?
    /// The running total of hint bytes (see SQLiteHintStore.swift).
    let hintLedger: HintLedger
    /// The objects, with the `log` backend (nil: in the database's `objects` table).
    let objectLog: ObjectLog?

    /// The `log` backend's folder for the database at `path`.
    static func objectLogFolder(forDatabase path: String) -> String { path + "-objects" }

    init(
        path: String, sync: SyncPolicy, limits: StoreLimits, backend: ObjectBackend = .sqlite,
        logSettings: ObjectLogSettings = ObjectLogSettings()
    ) throws(StoreError) {
        self.path = path
        self.sync = sync
        self.limits = limits
        try Self.prepareLocation(path)
        writer = try SQLiteConnection(
            path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
            busyTimeoutMilliseconds: limits.busyTimeoutMilliseconds)
        do throws(StoreError) {
            try Self.setUp(writer, sync: sync, limits: limits)
            hintLedger = HintLedger(total: Int(try writer.integer("SELECT coalesce(sum(bytes), 0) FROM hints")))
            checkpointer =
                sync == .batch
                ? try WALCheckpointer(path: path, sync: sync, busyTimeoutMilliseconds: limits.busyTimeoutMilliseconds)
                : nil
            let folder = Self.objectLogFolder(forDatabase: path)
            switch backend {
            case .sqlite:
                objectLog = nil
                if ObjectLog.holdsObjects(folder: folder) {
                    throw StoreError.cannotOpen(
                        path: path,
                        detail: "the objects of this data dir are in \(folder), written by the log backend; "
                            + "set store.backend = \"log\"")
                }
            case .log:
                // A group closes after crossing maxGroupBytes: at most one more record.
                let largestRecord = (limits.rowLimit ?? (1 << 20)) + 64
                let log = try ObjectLog(
                    folder: folder, sync: sync, settings: logSettings,
                    largestCommitBytes: limits.maxGroupBytes + largestRecord)
                try Self.moveObjects(of: writer, into: log, chunkBytes: limits.maxGroupBytes)
                objectLog = log
            }
        } catch {
            writer.close()
            throw error
        }
        // Replaces SQLite's automatic checkpoint (which runs inside a commit).
        checkpointer?.install(on: writer)
    }

    /// Moves the rows of the database's `objects` table (a data dir switched from the `sqlite`
    /// backend) into the log: appended and made durable first, then deleted from the table. A
    /// crash between the two copies them again at the next open (the same values).
    private static func moveObjects(of db: SQLiteConnection, into log: ObjectLog, chunkBytes: Int) throws(StoreError) {
        guard try db.integer("SELECT count(*) FROM (SELECT 1 FROM objects LIMIT 1)") > 0 else { return }
        let select = try db.statement("SELECT partition, bucket, key, value FROM objects")
        var staging = ObjectLog.Staging()
        do {
            while try select.step() {
                let key = ObjectLog.FullKey(
                    partition: Int(select.int64(0)), objectKey: ObjectKey(bucket: select.text(1), key: select.text(2)))
                log.stagePut(key, value: select.blob(3), in: &staging)
                if staging.bytes >= chunkBytes {
                    try log.commit(staging, enforcingCap: false)
                    staging = ObjectLog.Staging()
                }
            }
            select.reset()
        } catch {
            select.reset()
            throw error
        }
        try log.commit(staging, enforcingCap: false)
        log.flush()
        try db.execute("DELETE FROM objects")
    }

    /// Runs a read of the log backend; damage it finds stops writes, as a reader's does.
    func noticingDamage<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        poolLock.lock()
        let closed = poolClosed
        poolLock.unlock()
        if closed { throw .closed(path: path) }
        do {
            return try body()
        } catch {
            if let next = StoreHealth(after: error), next.isCorrupt { updateHealth(next) }
            throw error
        }
    }

    /// Creates the parent folder; refuses a directory in place of the file.
    private static func prepareLocation(_ path: String) throws(StoreError) {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .cannotOpen(path: path, detail: "it is a directory")
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty else { return }
        do {
            try files.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw .cannotOpen(path: path, detail: "cannot create \(parent): \(error.localizedDescription)")
        }
    }

    static let selectObject = "SELECT value FROM objects WHERE partition = ?1 AND bucket = ?2 AND key = ?3"

    /// Page size of a new database file, bytes (an existing file keeps its own).
    static let pageSize = 2048

    /// Page cache of the writer connection, KiB.
    static let writerCacheKiB = 32 << 10

    /// Checks identity, schema version and integrity, then configures WAL and creates the schema.
    /// Nothing is written to a file that turns out not to be a Chorus database.
    private static func setUp(_ db: SQLiteConnection, sync: SyncPolicy, limits: StoreLimits) throws(StoreError) {
        let applicationID = Int32(truncatingIfNeeded: try db.integer("PRAGMA application_id"))
        let version = Int32(truncatingIfNeeded: try db.integer("PRAGMA user_version"))
        let schemaObjects = try db.integer("SELECT count(*) FROM sqlite_schema")
        let fresh = applicationID == 0 && version == 0 && schemaObjects == 0
        if !fresh {
            guard applicationID == chorusApplicationID else {
                throw .foreignDatabase(path: db.path, applicationID: applicationID)
            }
            guard version <= chorusSchemaVersion else {
                throw .schemaTooNew(path: db.path, found: version, supported: chorusSchemaVersion)
            }
        }
        if limits.checkIntegrityAtOpen {
            // Linear in the file: 0.02 s for 100k objects of 200 bytes, 0.2 s for 1M, warm cache
            // (tools/bench-quickcheck). A damaged file stops the agent here rather than serving
            // wrong data.
            let check = try db.texts("PRAGMA quick_check")
            guard check == ["ok"] else {
                throw .corrupt(path: db.path, detail: check.prefix(5).joined(separator: "; "))
            }
        }
        if fresh {
            // Every write appends each page it dirties to the WAL and the checkpoint copies it
            // again: with scattered keys that is about one leaf page per object. 2 KiB pages
            // halve those bytes against SQLite's 4 KiB (values up to ~500 bytes still fit in a
            // leaf; larger ones spill to overflow pages). Before WAL mode: once in WAL mode the
            // page size of a database cannot change (it silently stayed 4 KiB until session 5).
            try db.execute("PRAGMA page_size = \(pageSize)")
        }
        let mode = try db.texts("PRAGMA journal_mode = WAL")
        guard mode == ["wal"] else {
            throw .cannotOpen(path: db.path, detail: "cannot switch to WAL mode (journal_mode is \(mode))")
        }
        try db.execute(sync == .batch ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        try db.execute("PRAGMA journal_size_limit = 67108864")
        // The writer's page cache (SQLite's default is 2 MiB): B-tree pages it misses are
        // read back with a pread each, and under a write load that scatters keys over the
        // tree (and the partition index) a small cache misses on most writes.
        try db.execute("PRAGMA cache_size = -\(writerCacheKiB)")
        // Checkpoints in batch mode: `WALCheckpointer`, on a thread of its own, not in a commit.
        if let bytes = limits.rowLimit { db.limitLength(bytes) }
        if let pages = limits.maxDatabasePages {
            _ = try db.integer("PRAGMA max_page_count = \(max(1, pages))")
        }
        if fresh {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(
                    """
                    \(objectsSchemaSQL)
                    CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
                    \(hintsSchemaSQL)
                    PRAGMA application_id = \(chorusApplicationID);
                    PRAGMA user_version = \(chorusSchemaVersion);
                    COMMIT;
                    """)
            } catch {
                if db.inTransaction { try? db.execute("ROLLBACK") }
                throw error
            }
        } else if version < chorusSchemaVersion {
            try migrate(db, from: version)
        }
    }

    func start() {
        checkpointer?.start()
        let thread = Thread { [self] in self.runWriter() }
        thread.name = "chorus-storage-writer"
        thread.start()
    }

    var statistics: StoreStatistics {
        condition.lock()
        defer { condition.unlock() }
        var copy = stats
        copy.queued = queue.count
        copy.backgroundCheckpoints = checkpointer?.checkpoints ?? 0
        return copy
    }

    // MARK: Write path

    var health: StoreHealth {
        condition.lock()
        defer { condition.unlock() }
        return healthState
    }

    func setHealthHandler(_ handler: @escaping @Sendable (StoreHealth) -> Void) {
        condition.lock()
        healthHandler = handler
        condition.unlock()
    }

    /// Moves to `next` (a failure's state, or `.ok` after a commit) and tells the handler.
    /// Damage is sticky: only a restart, with its integrity check, leaves `.corrupt`.
    private func updateHealth(_ next: StoreHealth) {
        condition.lock()
        guard next != healthState, !(healthState.isCorrupt && !next.isCorrupt) else {
            condition.unlock()
            return
        }
        healthState = next
        let handler = healthHandler
        condition.unlock()
        handler?(next)
    }

    func submit(_ operation: WriteOperation) {
        condition.lock()
        if state != .open {
            condition.unlock()
            operation.fail(.closed(path: path))
            return
        }
        if case .corrupt(let detail) = healthState {
            // Nothing more is written to a file SQLite found damaged.
            condition.unlock()
            operation.fail(.corrupt(path: path, detail: detail))
            return
        }
        if queue.count >= limits.maxQueuedOperations {
            let queued = queue.count
            condition.unlock()
            operation.fail(.overloaded(path: path, queued: queued))
            return
        }
        queue.append(operation)
        condition.signal()
        condition.unlock()
    }

    func setMeta(_ name: String, _ value: [UInt8]) throws(StoreError) {
        guard !isWriterThread else {
            throw .sqlite(
                path: path, code: SQLITE_MISUSE, detail: "setMeta called from an update transform or completion")
        }
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        submit(
            .setMeta(name: name, value: value) { result in
                box.set(result)
                done.signal()
            })
        done.wait()
        try box.get()
    }

    private var isWriterThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let id = writerThreadID else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    private func runWriter() {
        condition.lock()
        writerThreadID = pthread_self()
        condition.unlock()

        var lastFlush = Date()
        var unflushed = false
        let flushInterval: TimeInterval? =
            switch sync {
            case .batch: nil
            case .periodic(let interval):
                max(0.001, Double(interval.components.seconds) + Double(interval.components.attoseconds) * 1e-18)
            }

        var compactionPausedUntil = Date.distantPast
        var lastGroupSize = 0
        let commitDelayMicros = UInt32(
            clamping: limits.commitDelay.components.seconds * 1_000_000 + limits.commitDelay.components.attoseconds
                / 1_000_000_000_000)
        while true {
            condition.lock()
            while queue.isEmpty && state == .open
                && !(Date() >= compactionPausedUntil && objectLog?.wantsCompaction == true)
            {
                if let flushInterval, unflushed {
                    let deadline = lastFlush.addingTimeInterval(flushInterval)
                    if Date() >= deadline || !condition.wait(until: deadline) { break }
                } else {
                    condition.wait()
                }
            }
            if lastGroupSize >= limits.commitSiblings, commitDelayMicros > 0, !queue.isEmpty,
                queue.count < limits.maxGroupOperations, state == .open
            {
                // Busy: let more writes join this group (sleeping, not woken by each arrival).
                stats.delayedGroups += 1
                condition.unlock()
                usleep(commitDelayMicros)
                condition.lock()
            }
            let take = min(queue.count, limits.maxGroupOperations)
            let group = Array(queue.prefix(take))
            queue.removeFirst(take)
            let exiting = group.isEmpty && state != .open
            lastGroupSize = group.count
            condition.unlock()

            if !group.isEmpty {
                let leftover = commitGroup(group)
                if !leftover.isEmpty {
                    condition.lock()
                    queue.insert(contentsOf: leftover, at: 0)
                    condition.unlock()
                }
                unflushed = true
            }
            if let objectLog, !exiting, Date() >= compactionPausedUntil, healthState.isWritable,
                objectLog.wantsCompaction
            {
                do {
                    try objectLog.compactionStep()
                } catch {
                    recordFailure(error)
                    compactionPausedUntil = Date().addingTimeInterval(1)
                }
            }
            if let flushInterval, unflushed, Date().timeIntervalSince(lastFlush) >= flushInterval {
                checkpoint()
                lastFlush = Date()
                unflushed = false
            }
            if exiting { break }
        }
        finish()
    }

    /// Periodic durability: a checkpoint fsyncs the WAL, copies it into the database and fsyncs that.
    private func checkpoint() {
        objectLog?.flush()
        guard (try? writer.execute("PRAGMA wal_checkpoint(PASSIVE)")) != nil else { return }
        condition.lock()
        stats.checkpoints += 1
        condition.unlock()
    }

    /// Runs `group` in one transaction and fires its completions after the commit. Returns the
    /// operations left over when the group reached `maxGroupBytes`, to run next.
    private func commitGroup(_ group: [WriteOperation]) -> ArraySlice<WriteOperation> {
        guard let objectLog else { return commitDatabaseGroup(group) }
        var objects: [WriteOperation] = []
        var others: [WriteOperation] = []
        for operation in group {
            if operation.isObjectWrite { objects.append(operation) } else { others.append(operation) }
        }
        var leftover: [WriteOperation] = []
        if !others.isEmpty { leftover.append(contentsOf: commitDatabaseGroup(others)) }
        if !objects.isEmpty { leftover.append(contentsOf: commitLogGroup(objects, into: objectLog)) }
        return leftover[...]
    }

    /// The `log` backend's commit group: the object writes staged in order (each sees the
    /// ones before it), written in one append, fsynced per the policy, then acknowledged.
    private func commitLogGroup(_ group: [WriteOperation], into log: ObjectLog) -> ArraySlice<WriteOperation> {
        var staging = ObjectLog.Staging()
        var pending: [PendingCompletion] = []
        pending.reserveCapacity(group.count)
        var applied = 0
        var failedAlone = 0
        let maxRecord = limits.rowLimit
        for operation in group {
            if staging.bytes >= limits.maxGroupBytes { break }
            applied += 1
            do {
                switch operation {
                case .update(let bucket, let key, let partition, let transform, let completion):
                    let fullKey = ObjectLog.FullKey(
                        partition: partition, objectKey: ObjectKey(bucket: bucket, key: key))
                    let current = try log.current(fullKey, in: staging)
                    guard let value = transform(current) else {
                        pending.append(
                            PendingCompletion(
                                succeed: { completion(.success(current)) }, fail: { completion(.failure($0)) }))
                        continue
                    }
                    let size = value.count + bucket.utf8.count + key.utf8.count
                    if let maxRecord, size > maxRecord {
                        let error = StoreError.tooLarge(
                            path: log.folder, detail: "\(size) bytes, more than the limit of \(maxRecord)")
                        pending.append(
                            PendingCompletion(succeed: { operation.fail(error) }, fail: { operation.fail($0) }))
                        failedAlone += 1
                        continue
                    }
                    log.stagePut(fullKey, value: value, in: &staging)
                    pending.append(
                        PendingCompletion(succeed: { completion(.success(value)) }, fail: { completion(.failure($0)) }))
                case .delete(let partition, let bucket, let key, let expected, let completion):
                    let fullKey = ObjectLog.FullKey(
                        partition: partition, objectKey: ObjectKey(bucket: bucket, key: key))
                    let current = try log.current(fullKey, in: staging)
                    let deletes = current != nil && (expected == nil || expected == current)
                    if deletes { log.stageDelete(fullKey, in: &staging) }
                    pending.append(
                        PendingCompletion(
                            succeed: { completion(.success(deletes)) }, fail: { completion(.failure($0)) }))
                case .setMeta, .hint:
                    preconditionFailure("only object writes go to the object log")
                }
            } catch {
                recordFailure(error)
                for completion in pending { completion.fail(error) }
                operation.fail(error)
                return group[applied...]
            }
        }
        let bytes = staging.bytes
        do {
            try log.commit(staging)
        } catch {
            recordFailure(error)
            for completion in pending { completion.fail(error) }
            return group[applied...]
        }
        finishCommitted(pending, applied: applied, failedAlone: failedAlone, bytes: bytes)
        return group[applied...]
    }

    /// After a group's commit: counts it, clears a full-disk or I/O error state when it stored
    /// something, and fires the completions.
    private func finishCommitted(_ pending: [PendingCompletion], applied: Int, failedAlone: Int, bytes: Int) {
        condition.lock()
        stats.commits += 1
        stats.operations += applied - failedAlone
        stats.largestGroup = max(stats.largestGroup, applied)
        // Only a commit that stored something proves space was freed (or the I/O error
        // passed): a periodic delete of nothing (hint expiry) commits on a full disk too.
        let recovered = !healthState.isWritable && bytes > 0
        condition.unlock()
        if recovered { updateHealth(.ok) }
        for completion in pending { completion.succeed() }
    }

    /// The database's commit group: one SQLite transaction.
    private func commitDatabaseGroup(_ group: [WriteOperation]) -> ArraySlice<WriteOperation> {
        // setMeta is durable whatever the policy: fsync this group's commit.
        let forceFullSync = sync != .batch && group.contains(where: \.isMeta)
        if forceFullSync { try? writer.execute("PRAGMA synchronous = FULL") }
        defer { if forceFullSync { try? writer.execute("PRAGMA synchronous = NORMAL") } }
        hintLedger.beginGroup()

        do {
            try writer.execute("BEGIN IMMEDIATE")
        } catch {
            // The state first, so a client told of the failure finds it in `chorus status`.
            recordFailure(error)
            finishFailed(group[...], error: error)
            return []
        }
        var pending: [PendingCompletion] = []
        pending.reserveCapacity(group.count)
        var bytes = 0
        var applied = 0
        var failedAlone = 0
        for operation in group {
            if bytes >= limits.maxGroupBytes { break }
            applied += 1
            do {
                let (completion, written) = try apply(operation)
                pending.append(completion)
                bytes += written
            } catch {
                if !error.failsGroup && writer.inTransaction {
                    // This operation alone failed; its statement was rolled back, the group goes on.
                    pending.append(PendingCompletion(succeed: { operation.fail(error) }, fail: { operation.fail($0) }))
                    failedAlone += 1
                    continue
                }
                if writer.inTransaction { try? writer.execute("ROLLBACK") }
                recordFailure(error)
                for completion in pending { completion.fail(error) }
                operation.fail(error)
                return group[applied...]
            }
        }
        do {
            try writer.execute("COMMIT")
        } catch {
            if writer.inTransaction { try? writer.execute("ROLLBACK") }
            recordFailure(error)
            for completion in pending { completion.fail(error) }
            return group[applied...]
        }
        hintLedger.commitGroup()
        finishCommitted(pending, applied: applied, failedAlone: failedAlone, bytes: bytes)
        return group[applied...]
    }

    private func recordFailure(_ error: StoreError) {
        condition.lock()
        stats.failedCommits += 1
        condition.unlock()
        if let next = StoreHealth(after: error) { updateHealth(next) }
    }

    private func finishFailed(_ operations: ArraySlice<WriteOperation>, error: StoreError) {
        for operation in operations { operation.fail(error) }
    }

    /// Applies one operation inside the open transaction; returns its completion and the bytes written.
    private func apply(_ operation: WriteOperation) throws(StoreError) -> (PendingCompletion, Int) {
        switch operation {
        case .update(let bucket, let key, let partition, let transform, let completion):
            let select = try writer.statement(Self.selectObject)
            try select.bind(1, partition)
            try select.bind(2, bucket)
            try select.bind(3, key)
            let current: [UInt8]?
            do {
                current = try select.step() ? select.blob(0) : nil
                select.reset()
            } catch {
                select.reset()
                throw error
            }
            guard let value = transform(current) else {
                return (
                    PendingCompletion(succeed: { completion(.success(current)) }, fail: { completion(.failure($0)) }), 0
                )
            }
            // A key's partition never changes (Q is fixed): the row is the same one.
            let upsert = try writer.statement(
                "INSERT INTO objects(partition, bucket, key, value) VALUES (?1, ?2, ?3, ?4) "
                    + "ON CONFLICT(partition, bucket, key) DO UPDATE SET value = excluded.value")
            defer { upsert.reset() }
            try upsert.bind(1, partition)
            try upsert.bind(2, bucket)
            try upsert.bind(3, key)
            try upsert.bind(4, value)
            try upsert.run()
            return (
                PendingCompletion(succeed: { completion(.success(value)) }, fail: { completion(.failure($0)) }),
                value.count + bucket.utf8.count + key.utf8.count
            )
        case .delete(let partition, let bucket, let key, let expected, let completion):
            let delete = try writer.statement(
                expected == nil
                    ? "DELETE FROM objects WHERE partition = ?1 AND bucket = ?2 AND key = ?3"
                    : "DELETE FROM objects WHERE partition = ?1 AND bucket = ?2 AND key = ?3 AND value = ?4")
            defer { delete.reset() }
            try delete.bind(1, partition)
            try delete.bind(2, bucket)
            try delete.bind(3, key)
            if let expected { try delete.bind(4, expected) }
            try delete.run()
            let existed = writer.changes > 0
            return (
                PendingCompletion(succeed: { completion(.success(existed)) }, fail: { completion(.failure($0)) }), 0
            )
        case .setMeta(let name, let value, let completion):
            let upsert = try writer.statement(
                "INSERT INTO meta(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value")
            defer { upsert.reset() }
            try upsert.bind(1, name)
            try upsert.bind(2, value)
            try upsert.run()
            return (
                PendingCompletion(succeed: { completion(.success(())) }, fail: { completion(.failure($0)) }),
                value.count
            )
        case .hint(let operation):
            return try applyHint(operation)
        }
    }

    // MARK: Closing

    func close() {
        condition.lock()
        if state == .open {
            state = .closing
            condition.broadcast()
        }
        let onWriter = writerThreadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        if !onWriter {
            while !writerFinished { condition.wait() }
        }
        condition.unlock()
    }

    /// On the writer thread, once the queue is drained: stop the checkpointer, close readers,
    /// checkpoint, close the writer.
    private func finish() {
        checkpointer?.uninstall(from: writer)
        checkpointer?.stop()
        poolLock.lock()
        poolClosed = true
        let idle = idleReaders
        idleReaders.removeAll()
        poolLock.unlock()
        for reader in idle { reader.close() }

        // No checkpoint at close: every committed frame is in the WAL already (fsynced in
        // batch mode), and copying up to the checkpoint interval's 32 MiB into the database
        // and fsyncing it here was a burst of disk writes at every stop, which on a shared
        // disk stalled the other agents' commits during rolling restarts. The next open reads
        // the WAL's index back; the background checkpointer copies it when it is due.
        // Under the periodic policy the last frames may not be fsynced yet: a stop flushes them.
        writer.closeLeavingWAL()
        if sync != .batch {
            Self.fsyncFile(atPath: path + "-wal")
            objectLog?.flush()
        }

        condition.lock()
        state = .closed
        writerFinished = true
        condition.broadcast()
        condition.unlock()
    }

    /// fsync of the file at `path` if it exists (the WAL after the last connection closed).
    private static func fsyncFile(atPath path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }

    // MARK: Read path

    func withReader<T>(_ body: (SQLiteConnection) throws(StoreError) -> T) throws(StoreError) -> T {
        let reader = try borrowReader()
        defer { returnReader(reader) }
        do {
            return try body(reader)
        } catch {
            // A read that finds damage stops writes too; other read errors say nothing of the file.
            if let next = StoreHealth(after: error), next.isCorrupt { updateHealth(next) }
            throw error
        }
    }

    private func borrowReader() throws(StoreError) -> SQLiteConnection {
        poolLock.lock()
        if poolClosed {
            poolLock.unlock()
            throw .closed(path: path)
        }
        let idle = idleReaders.popLast()
        poolLock.unlock()
        if let idle { return idle }
        // Read-write without CREATE plus query_only: a read-only open could not take part in WAL
        // checkpoint-on-close and would fail if the -shm file were missing.
        let reader = try SQLiteConnection(
            path: path, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: limits.busyTimeoutMilliseconds)
        try reader.execute("PRAGMA query_only = 1")
        return reader
    }

    private func returnReader(_ reader: SQLiteConnection) {
        poolLock.lock()
        if !poolClosed && idleReaders.count < limits.maxIdleReaders {
            idleReaders.append(reader)
            poolLock.unlock()
        } else {
            poolLock.unlock()
            reader.close()
        }
    }
}

/// Carries setMeta's result from the writer thread to the waiting caller.
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Void, StoreError> = .success(())

    func set(_ result: Result<Void, StoreError>) {
        lock.withLock { self.result = result }
    }

    func get() throws(StoreError) {
        try lock.withLock { result }.get()
    }
}

extension StoreHealth {
    var isCorrupt: Bool {
        if case .corrupt = self { return true }
        return false
    }
}
