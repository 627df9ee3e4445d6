import CSQLite
import Foundation

/// Checkpoints the WAL on a thread of its own, so no commit waits for one.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint`: that
/// commit copies every page of the WAL into the database and fsyncs it before its completions
/// fire, and every write queued behind it waits (a stall of several milliseconds every few
/// dozen commits under a write load, and longer the larger the interval). Here the writer's
/// WAL hook only signals this thread once the WAL holds `interval` pages; it runs PASSIVE
/// checkpoints on its own connection while the writer goes on appending (WAL mode allows one
/// checkpointer beside the writer), until it has caught up, so the writer's next transaction
/// restarts the WAL from its beginning. Durability does not change: a commit is durable when
/// its WAL frames are fsynced (`synchronous = FULL` in batch mode); a checkpoint only moves
/// durable pages into the database file, fsyncing it before the WAL can be reused.
///
/// Should this thread fall behind (the WAL reaches `writerInterval` pages), the writer
/// checkpoints itself from the hook, as SQLite's automatic checkpoint would.
///
/// `@unchecked Sendable`: `connection` is used only by the checkpointer thread once started;
/// the flags are guarded by `condition`.
final class WALCheckpointer: @unchecked Sendable {
    /// WAL pages at which the writer wakes this thread (SQLite's own default interval is 1000):
    /// 32 MiB of 2 KiB pages. A longer interval copies a page the writes keep dirtying once per
    /// checkpoint instead of once per few thousand frames: 4,096 → 16,384 pages took CPU per
    /// write from 187 to 174 ms/1k in `tools/bench-kv-ab` (3 rounds). The cost: a WAL up to
    /// that size (and a crash replays it), trimmed to `journal_size_limit` after a checkpoint.
    static let interval: Int32 = 16384
    /// WAL pages at which the writer checkpoints by itself (this thread is behind).
    static let writerInterval: Int32 = 4 * interval
    /// PASSIVE rounds per wake-up: each copies what the writer appended during the last.
    static let roundsPerWake = 16

    private let connection: SQLiteConnection
    private let condition = NSCondition()
    private var requested = false
    private var stopping = false
    private var finished = false
    private var started = false
    private var completed = 0

    /// Opens the checkpointer's own connection to `path` (an existing database in WAL mode).
    init(path: String, sync: SyncPolicy, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        connection = try SQLiteConnection(
            path: path, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        do {
            // The checkpoint's fsyncs follow the connection that runs it.
            try connection.execute(sync == .batch ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        } catch {
            connection.close()
            throw error
        }
    }

    /// Checkpoints this thread finished (each a run of PASSIVE rounds).
    var checkpoints: Int {
        condition.lock()
        defer { condition.unlock() }
        return completed
    }

    func start() {
        condition.lock()
        started = true
        condition.unlock()
        let thread = Thread { [self] in self.run() }
        thread.name = "chorus-storage-checkpoint"
        thread.start()
    }

    /// Installs the WAL hook on the writer connection (call before the writer's first commit).
    func install(on writer: SQLiteConnection) {
        guard let handle = writer.handle else { return }
        sqlite3_wal_hook(handle, walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Removes the WAL hook (before the checkpointer goes away).
    func uninstall(from writer: SQLiteConnection) {
        guard let handle = writer.handle else { return }
        sqlite3_wal_hook(handle, nil, nil)
    }

    /// Called by the hook on the writer thread after each commit, with the WAL's size in pages.
    fileprivate func walGrew(to pages: Int32, writer: OpaquePointer?) {
        if pages >= Self.writerInterval {
            // Behind: the writer checkpoints, as SQLite's automatic checkpoint does.
            sqlite3_wal_checkpoint_v2(writer, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        } else if pages >= Self.interval {
            condition.lock()
            requested = true
            condition.signal()
            condition.unlock()
        }
    }

    /// Stops the thread (after its current checkpoint) and closes its connection; waits for it.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        if started {
            while !finished { condition.wait() }
        }
        condition.unlock()
        if !started { connection.close() }
    }

    private func run() {
        while true {
            condition.lock()
            while !requested && !stopping { condition.wait() }
            let exiting = stopping
            requested = false
            condition.unlock()
            if exiting { break }
            guard let handle = connection.handle else { break }
            for _ in 0..<Self.roundsPerWake {
                var logPages: Int32 = 0
                var copiedPages: Int32 = 0
                let code = sqlite3_wal_checkpoint_v2(
                    handle, nil, SQLITE_CHECKPOINT_PASSIVE, &logPages, &copiedPages)
                // BUSY: another checkpoint runs (the writer's); errors such as a full disk are
                // the writer's to report: its commits keep the WAL, and the next wake retries.
                if code != SQLITE_OK || logPages <= copiedPages { break }
            }
            condition.lock()
            completed += 1
            condition.unlock()
        }
        connection.close()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}

/// The writer connection's WAL hook: forwards the WAL size to the `WALCheckpointer`.
private func walHook(
    _ context: UnsafeMutableRawPointer?, _ db: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ pages: Int32
) -> Int32 {
    guard let context else { return SQLITE_OK }
    Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().walGrew(to: pages, writer: db)
    return SQLITE_OK
}
