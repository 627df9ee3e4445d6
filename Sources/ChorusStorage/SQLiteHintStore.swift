import CSQLite
import Foundation

// Hints in the SQLite engine: the `hints` table (schema version 2), written by the same writer
// thread and commit groups as objects, read through the reader pool.

/// The `hints` table: created with a fresh database and by the migration from version 1.
/// Objects, one B-tree ordered by partition (schema version 3).
let objectsSchemaSQL = """
    CREATE TABLE IF NOT EXISTS objects(
        partition INTEGER NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
        PRIMARY KEY (partition, bucket, key)) WITHOUT ROWID;
    """

let hintsSchemaSQL = """
    CREATE TABLE IF NOT EXISTS hints(
        target TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
        created INTEGER NOT NULL, updated INTEGER NOT NULL, bytes INTEGER NOT NULL,
        PRIMARY KEY (target, bucket, key)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS hints_by_key ON hints(bucket, key);
    """

private let hintColumns = "target, bucket, key, value, created, updated, bytes"

extension LocalStore: HintStore {
    public func updateHint(
        target: String, bucket: String, key: String, now: UInt64,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void
    ) {
        engine.submit(
            .hint(
                .update(
                    target: target, bucket: bucket, key: key, now: now, transform: transform, completion: completion))
        )
    }

    public func hints(target: String, after: ObjectKey?, limit: Int) throws(StoreError) -> [Hint] {
        try engine.withReader { connection throws(StoreError) in
            try connection.keysetPage(
                select: hintColumns, from: "hints", where: "target", after: after, limit: limit,
                bindFilter: { statement throws(StoreError) in try statement.bind(1, target) },
                row: { $0.hint() })
        }
    }

    public func hints(bucket: String, key: String) throws(StoreError) -> [Hint] {
        try engine.withReader { connection throws(StoreError) in
            let statement = try connection.statement(
                "SELECT \(hintColumns) FROM hints WHERE bucket = ?1 AND key = ?2 ORDER BY target")
            defer { statement.reset() }
            try statement.bind(1, bucket)
            try statement.bind(2, key)
            var hints: [Hint] = []
            while try statement.step() { hints.append(statement.hint()) }
            return hints
        }
    }

    public func deleteHint(
        target: String, bucket: String, key: String, ifValue expected: [UInt8],
        completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void
    ) {
        engine.submit(
            .hint(.delete(target: target, bucket: bucket, key: key, expected: expected, completion: completion)))
    }

    public func hintSummary() throws(StoreError) -> [HintSummary] {
        try engine.withReader { connection throws(StoreError) in
            let statement = try connection.statement(
                "SELECT target, count(*), sum(bytes), min(created) FROM hints GROUP BY target ORDER BY target")
            defer { statement.reset() }
            var summaries: [HintSummary] = []
            while try statement.step() {
                summaries.append(
                    HintSummary(
                        target: statement.text(0), count: Int(statement.int64(1)), bytes: Int(statement.int64(2)),
                        oldest: UInt64(clamping: statement.int64(3))))
            }
            return summaries
        }
    }

    public func expireHints(olderThan: UInt64, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void) {
        engine.submit(.hint(.expire(olderThan: olderThan, completion: completion)))
    }

    public var hintBytes: Int { engine.hintLedger.total }
}

/// A queued hint write.
enum HintOperation {
    case update(
        target: String, bucket: String, key: String, now: UInt64, transform: @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @Sendable (Result<[UInt8]?, StoreError>) -> Void)
    case delete(
        target: String, bucket: String, key: String, expected: [UInt8],
        completion: @Sendable (Result<Bool, StoreError>) -> Void)
    case expire(olderThan: UInt64, completion: @Sendable (Result<Int, StoreError>) -> Void)

    func fail(_ error: StoreError) {
        switch self {
        case .update(_, _, _, _, _, let completion): completion(.failure(error))
        case .delete(_, _, _, _, let completion): completion(.failure(error))
        case .expire(_, let completion): completion(.failure(error))
        }
    }
}

/// The running total of hint bytes, so the bound is checked without a scan.
///
/// `total` is what committed (read by any thread, under the lock). The writer thread adds each
/// applied hint write's change to `groupDelta`, and folds it into `total` only once the group
/// commits; a group that rolls back leaves `total` as it was.
final class HintLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var committed: Int
    /// Writer thread only.
    private(set) var groupDelta = 0
    /// Writer thread only: `committed` as of the start of the current group.
    private var groupBase: Int

    init(total: Int) {
        committed = total
        groupBase = total
    }

    var total: Int { lock.withLock { committed } }

    /// The total including the current group's uncommitted changes (writer thread).
    var projected: Int { groupBase + groupDelta }

    func beginGroup() {
        groupBase = total
        groupDelta = 0
    }

    func add(_ bytes: Int) { groupDelta += bytes }

    func commitGroup() {
        let delta = groupDelta
        groupDelta = 0
        lock.withLock { committed += delta }
    }
}

extension StoreEngine {
    /// Brings a database of an older schema version up to `chorusSchemaVersion`, in one transaction.
    static func migrate(_ db: SQLiteConnection, from version: Int32) throws(StoreError) {
        try db.execute("BEGIN IMMEDIATE")
        do {
            if version < 2 { try db.execute(hintsSchemaSQL) }
            if version < 3 {
                // One B-tree keyed by partition first, in place of (bucket, key) plus a partition
                // index: the rows are copied over in one transaction.
                try db.execute(
                    """
                    ALTER TABLE objects RENAME TO objects_v2;
                    DROP INDEX IF EXISTS objects_by_partition;
                    \(objectsSchemaSQL)
                    INSERT INTO objects(partition, bucket, key, value)
                        SELECT partition, bucket, key, value FROM objects_v2;
                    DROP TABLE objects_v2;
                    """)
            }
            try db.execute("PRAGMA user_version = \(chorusSchemaVersion)")
            try db.execute("COMMIT")
        } catch {
            if db.inTransaction { try? db.execute("ROLLBACK") }
            throw error
        }
    }

    /// Applies one hint write inside the open transaction (writer thread); returns its completion
    /// and the bytes written.
    func applyHint(_ operation: HintOperation) throws(StoreError) -> (PendingCompletion, Int) {
        switch operation {
        case .update(let target, let bucket, let key, let now, let transform, let completion):
            let select = try writer.statement(
                "SELECT value, bytes FROM hints WHERE target = ?1 AND bucket = ?2 AND key = ?3")
            try select.bind(1, target)
            try select.bind(2, bucket)
            try select.bind(3, key)
            let current: [UInt8]?
            let currentBytes: Int
            do {
                if try select.step() {
                    current = select.blob(0)
                    currentBytes = Int(select.int64(1))
                } else {
                    current = nil
                    currentBytes = 0
                }
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
            let bytes = Hint.size(target: target, bucket: bucket, key: key, value: value)
            let growth = bytes - currentBytes
            // A hint that does not grow is always stored, even past the bound (say, after it was lowered).
            if growth > 0 && hintLedger.projected + growth > limits.maxHintBytes {
                throw .hintsFull(path: path, limit: limits.maxHintBytes)
            }
            let upsert = try writer.statement(
                "INSERT INTO hints(target, bucket, key, value, created, updated, bytes) "
                    + "VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT(target, bucket, key) DO UPDATE SET "
                    + "value = excluded.value, updated = excluded.updated, bytes = excluded.bytes")
            defer { upsert.reset() }
            try upsert.bind(1, target)
            try upsert.bind(2, bucket)
            try upsert.bind(3, key)
            try upsert.bind(4, value)
            try upsert.bind(5, Int(clamping: now))
            try upsert.bind(6, bytes)
            try upsert.run()
            hintLedger.add(growth)
            return (
                PendingCompletion(succeed: { completion(.success(value)) }, fail: { completion(.failure($0)) }), bytes
            )
        case .delete(let target, let bucket, let key, let expected, let completion):
            let delete = try writer.statement(
                "DELETE FROM hints WHERE target = ?1 AND bucket = ?2 AND key = ?3 AND value = ?4 RETURNING bytes")
            defer { delete.reset() }
            try delete.bind(1, target)
            try delete.bind(2, bucket)
            try delete.bind(3, key)
            try delete.bind(4, expected)
            var removed = 0
            var deleted = false
            while try delete.step() {
                removed += Int(delete.int64(0))
                deleted = true
            }
            hintLedger.add(-removed)
            return (
                PendingCompletion(
                    succeed: { [deleted] in completion(.success(deleted)) }, fail: { completion(.failure($0)) }), 0
            )
        case .expire(let olderThan, let completion):
            let delete = try writer.statement("DELETE FROM hints WHERE created < ?1 RETURNING bytes")
            defer { delete.reset() }
            try delete.bind(1, Int(clamping: olderThan))
            var removed = 0
            var count = 0
            while try delete.step() {
                removed += Int(delete.int64(0))
                count += 1
            }
            hintLedger.add(-removed)
            return (
                PendingCompletion(
                    succeed: { [count] in completion(.success(count)) }, fail: { completion(.failure($0)) }),
                0
            )
        }
    }
}

extension Statement {
    /// The current row of a `SELECT \(hintColumns)`.
    fileprivate func hint() -> Hint {
        Hint(
            target: text(0), bucket: text(1), key: text(2), value: blob(3), created: UInt64(clamping: int64(4)),
            updated: UInt64(clamping: int64(5)), bytes: Int(int64(6)))
    }
}
