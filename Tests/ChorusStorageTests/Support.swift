import CSQLite
import ChorusStorage
import Foundation

/// A fresh folder under the temporary directory, removed by `remove()`.
struct ScratchDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-storage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A counter stored as 8 little-endian bytes.
func encode(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } }

func decode(_ bytes: [UInt8]?) -> UInt64 {
    guard let bytes, bytes.count == 8 else { return 0 }
    return bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * $1.offset) }
}

/// Reads one value with a raw SQLite connection of its own (independent of the store under test).
func rawValue(path: String, bucket: String, key: String) -> [UInt8]? {
    var db: OpaquePointer? = nil
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else {
        sqlite3_close_v2(db)
        return nil
    }
    defer { sqlite3_close_v2(db) }
    var statement: OpaquePointer? = nil
    guard
        sqlite3_prepare_v2(db, "SELECT value FROM objects WHERE bucket = ?1 AND key = ?2", -1, &statement, nil)
            == SQLITE_OK
    else { return nil }
    defer { sqlite3_finalize(statement) }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    sqlite3_bind_text(statement, 1, bucket, -1, transient)
    sqlite3_bind_text(statement, 2, key, -1, transient)
    guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
    let count = Int(sqlite3_column_bytes(statement, 0))
    guard count > 0, let pointer = sqlite3_column_blob(statement, 0) else { return [] }
    return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
}

/// Runs SQL on `path` with a raw connection (to build foreign or tampered databases).
func rawExecute(path: String, _ sql: String) throws {
    var db: OpaquePointer? = nil
    defer { sqlite3_close_v2(db) }
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK else {
        throw RawError(message: "cannot open \(path)")
    }
    guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
        throw RawError(message: String(cString: sqlite3_errmsg(db)))
    }
}

struct RawError: Error {
    let message: String
}

/// A latch the writer thread can block on (inside a transform) until the test releases it.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let entered = DispatchSemaphore(value: 0)

    /// Called on the writer thread: signals entry, then blocks until `open()`.
    func pass() {
        entered.signal()
        semaphore.wait()
    }

    /// Waits (off the cooperative pool) until the writer thread is blocked in `pass()`.
    func waitUntilEntered() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.entered.wait()
                continuation.resume()
            }
        }
    }

    func open() { semaphore.signal() }
}

/// Collects completion results delivered on the writer thread.
final class Collector<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    private var waiters: [(Int, CheckedContinuation<[T], Never>)] = []

    func add(_ item: T) {
        lock.lock()
        items.append(item)
        let ready = waiters.filter { $0.0 <= items.count }
        waiters.removeAll { $0.0 <= items.count }
        let snapshot = items
        lock.unlock()
        for (_, continuation) in ready { continuation.resume(returning: snapshot) }
    }

    /// Waits until `count` items arrived; returns them.
    func wait(for count: Int) async -> [T] {
        await withCheckedContinuation { continuation in
            lock.lock()
            if items.count >= count {
                let snapshot = items
                lock.unlock()
                continuation.resume(returning: snapshot)
            } else {
                waiters.append((count, continuation))
                lock.unlock()
            }
        }
    }
}

extension ObjectStore {
    /// Queues a write of `value`; `completion` gets the outcome.
    func enqueuePut(
        _ key: String, _ value: [UInt8], bucket: String = "b", partition: Int = 0,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void
    ) {
        update(bucket: bucket, key: key, partition: partition, { _ in value }, completion: completion)
    }

    /// Queues a write whose transform blocks the writer thread, inside its commit group, until
    /// `gate.open()`: whatever is queued meanwhile waits for the next group.
    func holdWriter(on gate: Gate, completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void) {
        update(
            bucket: "b", key: "gate", partition: 0,
            { _ in
                gate.pass()
                return [0]
            }, completion: completion)
    }
}

/// Copies the WAL of the closed store at `path` into the database file and empties it, as the
/// background checkpoints of a long-running store do (a close leaves the WAL as it is): for
/// tests that damage the database file itself.
func checkpointIntoDatabaseFile(path: String) throws {
    try rawExecute(path: path, "PRAGMA wal_checkpoint(TRUNCATE)")
}

/// Descriptors of this process open on `path` or its `-wal`/`-shm` files.
func openDescriptors(on path: String) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.filter { fd in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else {
            return false
        }
        return target == path || target == path + "-wal" || target == path + "-shm"
    }.count
}
