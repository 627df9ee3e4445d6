import ChorusStorage
import Foundation
import Testing

/// Disk faults (issue 8): a damaged file refuses to open naming itself, damage met at run
/// time stops writes, and a full disk makes the store read-only without acknowledging
/// anything it could not store, until space is freed. The page cap (`maxDatabasePages`)
/// stands in for a full disk: SQLite reports SQLITE_FULL for both.
@Suite struct DiskFaultTests {
    /// A store of `keys` 200-byte values, closed, its WAL copied into the database file.
    func makeStore(at path: String, keys: Int) async throws {
        let store = try LocalStore(path: path, sync: .batch)
        for i in 0..<keys {
            try await store.put(
                bucket: "b", key: "k\(i)", partition: i % 16, value: [UInt8](repeating: UInt8(i & 0xff), count: 200))
        }
        store.close()
        try checkpointIntoDatabaseFile(path: path)
    }

    @Test func databaseTruncatedToHalfIsRefusedNamingThePath() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        try await makeStore(at: path, keys: 1500)
        let size = fileSize(path)
        #expect(size > 64 * 4096)
        #expect(truncate(path, off_t(size / 2)) == 0)

        #expect {
            _ = try LocalStore(path: path, sync: .batch)
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            switch error {
            case .corrupt(let reported, _), .notADatabase(let reported): return reported == path
            default: return false
            }
        }
    }

    @Test func garbageHeaderIsRefusedAsNotADatabase() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        try await makeStore(at: path, keys: 100)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.write(contentsOf: Data(pseudoRandomBytes(count: 100, seed: 11)))
        try handle.close()

        #expect(throws: StoreError.notADatabase(path: path)) {
            _ = try LocalStore(path: path, sync: .batch)
        }
    }

    @Test func damageFoundAtRunTimeRefusesEveryLaterWrite() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        try await makeStore(at: path, keys: 2000)
        let size = fileSize(path)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
        try handle.write(contentsOf: pseudoRandomBytes(count: 4 * 4096, seed: 5))
        try handle.close()

        // Without the open-time check (which would refuse the file), as if the damage
        // happened while the agent ran.
        let store = try LocalStore(
            path: path, sync: .batch, limits: StoreLimits(checkIntegrityAtOpen: false))
        defer { store.close() }
        let changes = Collector<StoreHealth>()
        store.onHealthChange { changes.add($0) }
        #expect(store.health == .ok)
        var found: StoreError?
        for partition in 0..<16 where found == nil {
            do {
                _ = try store.scan(partition: partition, after: nil, limit: 10_000)
                for i in stride(from: partition, to: 2000, by: 16) {
                    _ = try store.get(partition: i % 16, bucket: "b", key: "k\(i)")
                }
            } catch {
                found = error
            }
        }
        let error = try #require(found, "reading every key of a damaged file found no damage")
        guard case .corrupt(let reported, _) = error else {
            Issue.record("expected corrupt, got \(error)")
            return
        }
        #expect(reported == path)
        #expect(!store.health.isWritable)
        #expect(store.health.summary == "failed (database corrupt)")
        #expect(await changes.wait(for: 1).first?.summary == "failed (database corrupt)")

        // Refused before anything is written, however small.
        await #expect {
            try await store.put(bucket: "b", key: "new", partition: 0, value: [1])
        } throws: { error in
            guard let error = error as? StoreError, case .corrupt(let reported, _) = error else { return false }
            return reported == path
        }
        #expect(!store.health.isWritable)
    }

    @Test func fullDiskMakesTheStoreReadOnlyUntilSpaceIsFreed() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch, limits: StoreLimits(maxDatabasePages: 48))
        defer { store.close() }
        let changes = Collector<StoreHealth>()
        store.onHealthChange { changes.add($0) }

        var acknowledged: [String] = []
        var refusal: StoreError?
        for i in 0..<1000 {
            do {
                try await store.put(bucket: "b", key: "k\(i)", partition: 0, value: [UInt8](repeating: 1, count: 1000))
                acknowledged.append("k\(i)")
            } catch {
                refusal = error
                break
            }
        }
        let error = try #require(refusal, "1000 writes of 1 kB fitted in 48 pages")
        guard case .diskFull(let reported, _) = error else {
            Issue.record("expected diskFull, got \(error)")
            return
        }
        #expect(reported == path)
        #expect(store.health.summary == "read-only (disk full)")
        #expect(!store.health.isWritable)
        // Reads go on, and every acknowledged write is there.
        for key in acknowledged {
            #expect(try store.get(partition: 0, bucket: "b", key: key) == [UInt8](repeating: 1, count: 1000))
        }
        #expect(try store.count() == acknowledged.count)
        // A hint cannot be stored either, and is refused rather than acknowledged.
        await #expect(throws: StoreError.self) {
            try await store.putHint(
                target: "n2", bucket: "b", key: "h", now: 1, value: [UInt8](repeating: 2, count: 1000))
        }
        #expect(try store.hints(bucket: "b", key: "h").isEmpty)

        // Freeing space (deleting keys frees pages) lets the next write commit: writable again.
        for key in acknowledged.prefix(acknowledged.count / 2) {
            try await store.delete(partition: 0, bucket: "b", key: key)
        }
        try await store.put(bucket: "b", key: "after", partition: 0, value: [UInt8](repeating: 3, count: 1000))
        #expect(store.health == .ok)
        #expect(try store.get(partition: 0, bucket: "b", key: "after") == [UInt8](repeating: 3, count: 1000))
        let seen = await changes.wait(for: 2).map(\.summary)
        #expect(seen == ["read-only (disk full)", "ok"])
    }
}
