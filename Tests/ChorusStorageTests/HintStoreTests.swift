import CSQLite
import ChorusStorage
import Foundation
import Testing

@Suite("LocalStore hints")
struct HintStoreTests {
    @Test func storedHintReadsBackByTargetAndByKey() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }

        #expect(try store.hints(target: "n2", after: nil, limit: 10).isEmpty)
        #expect(store.hintBytes == 0)
        try await store.putHint(target: "n2", bucket: "b", key: "k", now: 1_000, value: [1, 2, 3])

        let expected = Hint(
            target: "n2", bucket: "b", key: "k", value: [1, 2, 3], created: 1_000, updated: 1_000,
            bytes: Hint.size(target: "n2", bucket: "b", key: "k", value: [1, 2, 3]))
        #expect(expected.bytes == 3 + 2 + 1 + 1)
        #expect(try store.hints(target: "n2", after: nil, limit: 10) == [expected])
        #expect(try store.hints(bucket: "b", key: "k") == [expected])
        #expect(try store.hints(target: "n3", after: nil, limit: 10).isEmpty)
        #expect(store.hintBytes == expected.bytes)
        // Hints are not objects.
        #expect(try store.get(partition: 0, bucket: "b", key: "k") == nil)
        #expect(try store.count() == 0)
    }

    @Test func transformMergesWithTheStoredHintAndKeepsItsCreationTime() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }

        let first = try await store.updateHint(target: "n2", bucket: "b", key: "k", now: 100) { current in
            #expect(current == nil)
            return [1]
        }
        #expect(first == [1])
        let merged = try await store.updateHint(target: "n2", bucket: "b", key: "k", now: 200) { current in
            (current ?? []) + [2]
        }
        #expect(merged == [1, 2])
        let unchanged = try await store.updateHint(target: "n2", bucket: "b", key: "k", now: 300) { _ in nil }
        #expect(unchanged == [1, 2])
        let absent = try await store.updateHint(target: "n2", bucket: "b", key: "absent", now: 300) { _ in nil }
        #expect(absent == nil)

        let hints = try store.hints(target: "n2", after: nil, limit: 10)
        #expect(hints.count == 1)
        #expect(hints.first?.value == [1, 2])
        #expect(hints.first?.created == 100)
        #expect(hints.first?.updated == 200)
        #expect(store.hintBytes == Hint.size(target: "n2", bucket: "b", key: "k", value: [1, 2]))
    }

    @Test func hintsAndTheirTotalSurviveCloseAndReopen() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        var written = 0
        do {
            let store = try LocalStore(path: path, sync: .periodic(.seconds(3600)))
            for i in 0..<30 {
                try await store.putHint(
                    target: "n\(i % 3)", bucket: "b", key: "k\(i)", now: UInt64(i), value: [UInt8(i)])
            }
            written = store.hintBytes
            store.close()
        }
        let reopened = try LocalStore(path: path, sync: .batch)
        defer { reopened.close() }
        #expect(written > 0)
        #expect(reopened.hintBytes == written)
        for t in 0..<3 {
            let hints = try reopened.hints(target: "n\(t)")
            #expect(hints.count == 10)
            #expect(hints.allSatisfy { $0.value == [UInt8($0.created)] && $0.key == "k\($0.created)" })
        }
    }

    /// As `acknowledgedWritesSurviveAnUncleanStop`: a copy of the database and its WAL, taken
    /// without closing, holds every acknowledged hint.
    @Test(arguments: [SyncPolicy.batch, .periodic(.seconds(3600))])
    func acknowledgedHintsSurviveAnUncleanStop(sync: SyncPolicy) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("live/store.db")
        let store = try LocalStore(path: path, sync: sync)
        defer { store.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<50 {
                        try await store.putHint(
                            target: "n\(t)", bucket: "b", key: "k\(i)", now: UInt64(i), value: encode(UInt64(i)))
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = store.hintBytes

        let copy = dir.path("crashed/store.db")
        try FileManager.default.createDirectory(atPath: dir.path("crashed"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        if FileManager.default.fileExists(atPath: path + "-wal") {
            try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        }

        let recovered = try LocalStore(path: copy, sync: .batch)
        defer { recovered.close() }
        #expect(recovered.hintBytes == total)
        for t in 0..<4 {
            let hints = try recovered.hints(target: "n\(t)")
            #expect(hints.count == 50)
            #expect(hints.allSatisfy { decode($0.value) == $0.created })
        }
    }

    @Test func hintsOfOneTargetArePagedInKeyOrderFollowingTheCursor() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }
        for i in 0..<20 {
            let bucket = i % 2 == 0 ? "even" : "odd"
            try await store.putHint(
                target: i % 4 == 1 ? "n1" : "n2", bucket: bucket, key: "k\(i)", now: 1, value: [UInt8(i)])
        }

        var pages: [[Hint]] = []
        var cursor: ObjectKey? = nil
        while true {
            let page = try store.hints(target: "n1", after: cursor, limit: 2)
            if page.isEmpty { break }
            pages.append(page)
            cursor = page.last?.objectKey
        }
        let expected = (0..<20).filter { $0 % 4 == 1 }.map { ObjectKey(bucket: "odd", key: "k\($0)") }
            .sorted { ($0.bucket, $0.key) < ($1.bucket, $1.key) }
        #expect(pages.map(\.count) == [2, 2, 1])
        #expect(pages.flatMap { $0 }.map(\.objectKey) == expected)
        #expect(pages.flatMap { $0 }.allSatisfy { $0.target == "n1" })
        #expect(try store.hints(target: "n1").map(\.objectKey) == expected)
        #expect(try store.hints(target: "n2").count == 15)
    }

    @Test func lookupByKeyReturnsTheHintOfEveryTarget() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }
        try await store.putHint(target: "n3", bucket: "b", key: "k", now: 1, value: [3])
        try await store.putHint(target: "n1", bucket: "b", key: "k", now: 2, value: [1])
        try await store.putHint(target: "n2", bucket: "b", key: "other", now: 3, value: [2])
        try await store.putHint(target: "n2", bucket: "c", key: "k", now: 4, value: [4])

        let hints = try store.hints(bucket: "b", key: "k")
        #expect(hints.map(\.target) == ["n1", "n3"])
        #expect(hints.map(\.value) == [[1], [3]])
        #expect(try store.hints(bucket: "b", key: "none").isEmpty)
    }

    @Test func conditionalDeleteKeepsAHintThatChangedSinceItWasRead() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }
        try await store.putHint(target: "n2", bucket: "b", key: "k", now: 1, value: [1])
        try await store.putHint(target: "n2", bucket: "b", key: "empty", now: 1, value: [])

        // Delivery read [1]; meanwhile a newer write merged into the hint.
        let delivered = try #require(try store.hints(target: "n2", after: nil, limit: 10).first { $0.key == "k" })
        try await store.updateHint(target: "n2", bucket: "b", key: "k", now: 2) { ($0 ?? []) + [2] }

        #expect(try await store.deleteHint(target: "n2", bucket: "b", key: "k", ifValue: delivered.value) == false)
        #expect(try store.hints(bucket: "b", key: "k").map(\.value) == [[1, 2]])
        #expect(try await store.deleteHint(target: "n2", bucket: "b", key: "k", ifValue: [1, 2]) == true)
        #expect(try store.hints(bucket: "b", key: "k").isEmpty)
        #expect(try await store.deleteHint(target: "n2", bucket: "b", key: "k", ifValue: [1, 2]) == false)
        #expect(try await store.deleteHint(target: "n3", bucket: "b", key: "empty", ifValue: []) == false)
        #expect(try await store.deleteHint(target: "n2", bucket: "b", key: "empty", ifValue: []) == true)
        #expect(store.hintBytes == 0)
    }

    @Test func summaryReportsCountBytesAndOldestPerTarget() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }
        #expect(try store.hintSummary().isEmpty)

        try await store.putHint(target: "n2", bucket: "b", key: "a", now: 50, value: [1, 1])
        try await store.putHint(target: "n2", bucket: "b", key: "b", now: 20, value: [1, 1, 1])
        try await store.putHint(target: "n1", bucket: "b", key: "a", now: 70, value: [1])
        // A later update does not make a hint younger.
        try await store.putHint(target: "n2", bucket: "b", key: "b", now: 90, value: [1, 1, 1, 1])

        let size = { (target: String, key: String, count: Int) in
            Hint.size(target: target, bucket: "b", key: key, value: [UInt8](repeating: 1, count: count))
        }
        #expect(
            try store.hintSummary() == [
                HintSummary(target: "n1", count: 1, bytes: size("n1", "a", 1), oldest: 70),
                HintSummary(target: "n2", count: 2, bytes: size("n2", "a", 2) + size("n2", "b", 4), oldest: 20),
            ])
        #expect(store.hintBytes == size("n1", "a", 1) + size("n2", "a", 2) + size("n2", "b", 4))
    }

    @Test func expiryDeletesHintsFirstWrittenBeforeTheBound() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch)
        defer { store.close() }
        try await store.putHint(target: "n1", bucket: "b", key: "old", now: 10, value: [1])
        try await store.putHint(target: "n2", bucket: "b", key: "old", now: 20, value: [1])
        try await store.putHint(target: "n1", bucket: "b", key: "new", now: 30, value: [1])
        // Refreshed later, but first written before the bound: still expires.
        try await store.putHint(target: "n1", bucket: "b", key: "old", now: 40, value: [2])

        #expect(try await store.expireHints(olderThan: 10) == 0)
        #expect(try await store.expireHints(olderThan: 30) == 2)
        #expect(try store.hintSummary().map(\.target) == ["n1"])
        #expect(try store.hints(target: "n1").map(\.key) == ["new"])
        #expect(store.hintBytes == Hint.size(target: "n1", bucket: "b", key: "new", value: [1]))
        #expect(try await store.expireHints(olderThan: .max) == 1)
        #expect(try store.hintSummary().isEmpty)
        #expect(store.hintBytes == 0)
    }

    @Test func hintWritesShareCommitGroupsWithObjectWritesAndAreDurableWhenAcknowledged() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch)
        defer { store.close() }

        let gate = Gate()
        let done = Collector<Bool>()
        store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
        await gate.waitUntilEntered()
        for i in 0..<10 {
            store.enqueuePut("k\(i)", [UInt8(i)]) { done.add((try? $0.get()) != nil) }
            store.enqueueHint("k\(i)", [UInt8(i)]) { result in
                guard case .success(let value) = result else { return done.add(false) }
                done.add(rawHintValue(path: path, target: "n2", bucket: "b", key: "k\(i)") == value)
            }
        }
        gate.open()
        let results = await done.wait(for: 21)
        #expect(results.allSatisfy { $0 })
        #expect(store.statistics.commits == 2)
        #expect(store.statistics.largestGroup == 20)
    }

    @Test func pastTheBoundNewHintsAreRefusedWhileTheRestOfTheirGroupCommits() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch, limits: StoreLimits(maxHintBytes: 100))
        defer { store.close() }
        let big = [UInt8](repeating: 1, count: 50)  // 50 + "n2" + "b" + "k?" = 55 bytes
        let bigSize = Hint.size(target: "n2", bucket: "b", key: "k1", value: big)

        let gate = Gate()
        let done = Collector<(String, Result<[UInt8]?, StoreError>)>()
        store.holdWriter(on: gate) { done.add(("gate", $0)) }
        await gate.waitUntilEntered()
        store.enqueuePut("o1", [1]) { done.add(("o1", $0)) }
        store.enqueueHint("k1", big) { done.add(("h1", $0)) }
        store.enqueueHint("k2", big) { done.add(("h2", $0)) }
        store.enqueuePut("o2", [2]) { done.add(("o2", $0)) }
        store.enqueueHint("k3", [3]) { done.add(("h3", $0)) }
        gate.open()
        let results = Dictionary(uniqueKeysWithValues: await done.wait(for: 6).map { ($0.0, $0.1) })

        #expect((try? results["o1"]?.get()) == [1])
        #expect((try? results["o2"]?.get()) == [2])
        #expect((try? results["h1"]?.get()) == big)
        #expect((try? results["h3"]?.get()) == [3])
        guard case .failure(let error) = results["h2"], error == .hintsFull(path: path, limit: 100) else {
            Issue.record("expected hintsFull, got \(String(describing: results["h2"]))")
            return
        }
        #expect(error.description.contains(path) && error.description.contains("100 bytes"))
        #expect(store.statistics.commits == 2)
        #expect(store.statistics.failedCommits == 0)
        #expect(try store.get(partition: 0, bucket: "b", key: "o1") == [1])
        #expect(try store.get(partition: 0, bucket: "b", key: "o2") == [2])
        #expect(try store.hints(target: "n2").map(\.key) == ["k1", "k3"])
        let total = bigSize + Hint.size(target: "n2", bucket: "b", key: "k3", value: [3])
        #expect(store.hintBytes == total)

        // Growing an existing hint past the bound is refused too; shrinking one is not.
        await #expect(throws: StoreError.hintsFull(path: path, limit: 100)) {
            try await store.putHint(target: "n2", bucket: "b", key: "k3", now: 2, value: big)
        }
        try await store.putHint(target: "n2", bucket: "b", key: "k1", now: 2, value: [1])
        #expect(store.hintBytes == total - 49)

        // Deleting makes room again.
        #expect(try await store.deleteHint(target: "n2", bucket: "b", key: "k1", ifValue: [1]))
        #expect(store.hintBytes == Hint.size(target: "n2", bucket: "b", key: "k3", value: [3]))
        try await store.putHint(target: "n2", bucket: "b", key: "k2", now: 3, value: big)
        #expect(try store.hints(target: "n2").map(\.key) == ["k2", "k3"])
    }

    @Test func hintsOfAFailedCommitAreNotCountedInTheTotal() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(
            path: path, sync: .batch, limits: StoreLimits(maxDatabasePages: 14, maxHintBytes: 100))
        defer { store.close() }

        let gate = Gate()
        let done = Collector<(String, Result<[UInt8]?, StoreError>)>()
        store.holdWriter(on: gate) { done.add(("gate", $0)) }
        await gate.waitUntilEntered()
        let hint = [UInt8](repeating: 1, count: 80)
        store.enqueueHint("k", hint) { done.add(("hint", $0)) }
        store.enqueuePut("large", [UInt8](repeating: 7, count: 200_000)) { done.add(("large", $0)) }
        gate.open()
        let results = Dictionary(uniqueKeysWithValues: await done.wait(for: 3).map { ($0.0, $0.1) })

        guard case .failure(.diskFull) = results["hint"] else {
            Issue.record("expected diskFull, got \(String(describing: results["hint"]))")
            return
        }
        #expect(store.hintBytes == 0)
        #expect(try store.hints(target: "n2").isEmpty)
        // The rolled-back hint did not use up the bound.
        try await store.putHint(target: "n2", bucket: "b", key: "k", now: 2, value: hint)
        #expect(store.hintBytes == Hint.size(target: "n2", bucket: "b", key: "k", value: hint))
    }

    @Test func versionOneDatabaseIsMigratedKeepingItsObjectsAndMeta() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        // The schema as version 1 of the store created it.
        try rawExecute(
            path: path,
            """
            CREATE TABLE objects(
                bucket TEXT NOT NULL, key TEXT NOT NULL, partition INTEGER NOT NULL, value BLOB NOT NULL,
                PRIMARY KEY (bucket, key)) WITHOUT ROWID;
            CREATE INDEX objects_by_partition ON objects(partition, bucket, key);
            CREATE TABLE meta(name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
            INSERT INTO objects VALUES ('b', 'k1', 3, x'0102'), ('b', 'k2', 4, x'03');
            INSERT INTO meta VALUES ('node.id', CAST('node-1' AS BLOB));
            PRAGMA application_id = \(chorusApplicationID);
            PRAGMA user_version = 1;
            """)
        #expect(rawInteger(path: path, "SELECT count(*) FROM sqlite_schema WHERE name = 'hints'") == 0)

        do {
            let store = try LocalStore(path: path, sync: .batch)
            #expect(try store.count() == 2)
            #expect(try store.get(partition: 3, bucket: "b", key: "k1") == [1, 2])
            #expect(try store.scan(partition: 4).map(\.key) == ["k2"])
            #expect(try store.meta(MetaName.nodeID) == Array("node-1".utf8))
            #expect(try store.hintSummary().isEmpty)
            #expect(store.hintBytes == 0)
            try await store.putHint(target: "n2", bucket: "b", key: "k1", now: 1, value: [9])
            store.close()
        }
        #expect(rawInteger(path: path, "PRAGMA user_version") == Int64(chorusSchemaVersion))
        #expect(chorusSchemaVersion == 3)
        #expect(rawInteger(path: path, "SELECT count(*) FROM sqlite_schema WHERE name = 'hints_by_key'") == 1)
        // Version 3: objects in one B-tree keyed by partition first, the old index and table gone.
        #expect(
            rawInteger(
                path: path,
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('objects_by_partition', 'objects_v2')") == 0)
        #expect(
            rawInteger(path: path, "SELECT count(*) FROM pragma_index_list('objects') WHERE origin = 'pk'") == 1)

        let reopened = try LocalStore(path: path, sync: .batch)
        #expect(try reopened.count() == 2)
        #expect(try reopened.hints(bucket: "b", key: "k1").map(\.value) == [[9]])
        reopened.close()

        try rawExecute(path: path, "PRAGMA user_version = 4")
        #expect(throws: StoreError.schemaTooNew(path: path, found: 4, supported: 3)) {
            _ = try LocalStore(path: path, sync: .batch)
        }
    }
}

extension HintStore {
    /// Queues a hint of `value` for `target`; `completion` gets the outcome.
    func enqueueHint(
        _ key: String, _ value: [UInt8], target: String = "n2", bucket: String = "b", now: UInt64 = 1,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void
    ) {
        updateHint(target: target, bucket: bucket, key: key, now: now, { _ in value }, completion: completion)
    }
}

/// Reads one hint's value with a raw SQLite connection of its own.
func rawHintValue(path: String, target: String, bucket: String, key: String) -> [UInt8]? {
    var db: OpaquePointer? = nil
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else {
        sqlite3_close_v2(db)
        return nil
    }
    defer { sqlite3_close_v2(db) }
    var statement: OpaquePointer? = nil
    let sql = "SELECT value FROM hints WHERE target = ?1 AND bucket = ?2 AND key = ?3"
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { return nil }
    defer { sqlite3_finalize(statement) }
    let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    sqlite3_bind_text(statement, 1, target, -1, transient)
    sqlite3_bind_text(statement, 2, bucket, -1, transient)
    sqlite3_bind_text(statement, 3, key, -1, transient)
    guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
    let count = Int(sqlite3_column_bytes(statement, 0))
    guard count > 0, let pointer = sqlite3_column_blob(statement, 0) else { return [] }
    return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
}

/// The first column of the first row of `sql`, read with a raw connection (nil on any failure).
func rawInteger(path: String, _ sql: String) -> Int64? {
    var db: OpaquePointer? = nil
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else {
        sqlite3_close_v2(db)
        return nil
    }
    defer { sqlite3_close_v2(db) }
    var statement: OpaquePointer? = nil
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { return nil }
    defer { sqlite3_finalize(statement) }
    guard sqlite3_step(statement) == SQLITE_ROW else { return nil }
    return sqlite3_column_int64(statement, 0)
}
