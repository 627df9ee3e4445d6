import ChorusStorage
import Foundation
import Testing

@Suite("LocalStore")
struct LocalStoreTests {
    @Test(arguments: ObjectBackend.allCases)
    func storedValueReadsBackAndMissingParentFolderIsCreated(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("nested/deeper/store.db")
        let store = try LocalStore(path: path, sync: .batch, backend: backend)
        defer { store.close() }

        #expect(try store.get(partition: 3, bucket: "b", key: "k") == nil)
        try await store.put(bucket: "b", key: "k", partition: 3, value: [1, 2, 3])
        try await store.put(bucket: "b", key: "empty", partition: 3, value: [])
        try await store.put(bucket: "other", key: "k", partition: 3, value: [9])
        #expect(try store.get(partition: 3, bucket: "b", key: "k") == [1, 2, 3])
        #expect(try store.get(partition: 3, bucket: "b", key: "empty") == [])
        #expect(try store.get(partition: 3, bucket: "other", key: "k") == [9])
        #expect(try store.count() == 3)
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test(arguments: ObjectBackend.allCases)
    func transformSeesTheStoredValueAndNilMeansNoChange(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }

        let first = try await store.update(bucket: "b", key: "k", partition: 0) { current in
            #expect(current == nil)
            return [1]
        }
        #expect(first == [1])
        let merged = try await store.update(bucket: "b", key: "k", partition: 0) { current in
            (current ?? []) + [2]
        }
        #expect(merged == [1, 2])
        let unchanged = try await store.update(bucket: "b", key: "k", partition: 0) { _ in nil }
        #expect(unchanged == [1, 2])
        let absent = try await store.update(bucket: "b", key: "absent", partition: 0) { _ in nil }
        #expect(absent == nil)
        #expect(try store.get(partition: 0, bucket: "b", key: "absent") == nil)
        #expect(try store.get(partition: 0, bucket: "b", key: "k") == [1, 2])
    }

    @Test(arguments: ObjectBackend.allCases)
    func concurrentIncrementsOfOneKeyLoseNone(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<50 {
                        try await store.update(bucket: "counters", key: "c", partition: 7) { encode(decode($0) + 1) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(decode(try store.get(partition: 7, bucket: "counters", key: "c")) == 3200)
        let stats = store.statistics
        #expect(stats.operations == 3200)
        #expect(stats.failedCommits == 0)
    }

    @Test func acknowledgedValueIsAlreadyCommittedWhenTheCompletionFires() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch)
        defer { store.close() }

        // Each completion reads its key through a connection of its own: it must see the value.
        let seen = Collector<Bool>()
        for i in 0..<100 {
            store.enqueuePut("k\(i)", encode(UInt64(i)), partition: i % 4) { result in
                guard case .success(let value) = result else { return seen.add(false) }
                seen.add(rawValue(path: path, bucket: "b", key: "k\(i)") == value)
            }
        }
        let results = await seen.wait(for: 100)
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0 })
    }

    @Test(arguments: ObjectBackend.allCases)
    func dataAndMetaSurviveCloseAndReopen(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try LocalStore(path: path, sync: .periodic(.seconds(3600)), backend: backend)
            for i in 0..<50 {
                try await store.put(bucket: "b", key: "k\(i)", partition: i % 5, value: encode(UInt64(i)))
            }
            try store.setMeta(MetaName.nodeID, Array("node-1".utf8))
            store.close()
        }
        let reopened = try LocalStore(path: path, sync: .batch, backend: backend)
        defer { reopened.close() }
        #expect(try reopened.count() == 50)
        for i in 0..<50 {
            #expect(decode(try reopened.get(partition: i % 5, bucket: "b", key: "k\(i)")) == UInt64(i))
        }
        #expect(try reopened.meta(MetaName.nodeID) == Array("node-1".utf8))
        // A close copies nothing into the database (a burst of writes and an fsync on every
        // stop): the WAL stays, and the reopen read every object back from it.
        #expect(fileSize(path + "-wal") > 0)
    }

    /// What `kill -9` leaves behind: the database and its WAL as they are, without a close or a
    /// final checkpoint. Everything acknowledged must be in a copy of them.
    @Test(arguments: [SyncPolicy.batch, .periodic(.seconds(3600))], ObjectBackend.allCases)
    func acknowledgedWritesSurviveAnUncleanStop(sync: SyncPolicy, backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("live/store.db")
        let store = try LocalStore(path: path, sync: sync, backend: backend)
        defer { store.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<100 {
                        try await store.put(bucket: "b", key: "k\(t)-\(i)", partition: i % 8, value: encode(UInt64(i)))
                    }
                }
            }
            try await group.waitForAll()
        }
        try store.setMeta(MetaName.incarnation, encode(42))

        let copy = dir.path("crashed/store.db")
        try FileManager.default.createDirectory(atPath: dir.path("crashed"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        for companion in ["-wal", "-objects"] where FileManager.default.fileExists(atPath: path + companion) {
            try FileManager.default.copyItem(atPath: path + companion, toPath: copy + companion)
        }

        let recovered = try LocalStore(path: copy, sync: .batch, backend: backend)
        defer { recovered.close() }
        #expect(try recovered.count() == 800)
        for t in 0..<8 {
            for i in 0..<100 {
                #expect(decode(try recovered.get(partition: i % 8, bucket: "b", key: "k\(t)-\(i)")) == UInt64(i))
            }
        }
        #expect(decode(try recovered.meta(MetaName.incarnation)) == 42)
    }

    @Test func overwrittenPagesMakeOpenFailAsCorruptNamingThePath() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try LocalStore(path: path, sync: .batch)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<4 {
                    group.addTask {
                        for i in 0..<500 {
                            let value = [UInt8](repeating: UInt8(i & 0xff), count: 200)
                            try await store.put(bucket: "b", key: "k\(t)-\(i)", partition: i % 16, value: value)
                        }
                    }
                }
                try await group.waitForAll()
            }
            store.close()
        }
        try checkpointIntoDatabaseFile(path: path)
        let size = fileSize(path)
        #expect(size > 64 * 4096)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
        try handle.write(contentsOf: pseudoRandomBytes(count: 3 * 4096, seed: 7))
        try handle.close()

        #expect {
            _ = try LocalStore(path: path, sync: .batch)
        } throws: { error in
            guard let error = error as? StoreError, case .corrupt(let reported, _) = error else { return false }
            return reported == path && error.description.contains(path)
                && error.description.contains("restore from a replica or remove the data dir")
        }
    }

    @Test func fileOfRandomBytesIsRefusedAsNotADatabase() throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        try Data(pseudoRandomBytes(count: 64 * 1024, seed: 3)).write(to: URL(fileURLWithPath: path))

        #expect(throws: StoreError.notADatabase(path: path)) {
            _ = try LocalStore(path: path, sync: .batch)
        }
        #expect(StoreError.notADatabase(path: path).description.contains(path))
    }

    @Test func sqliteDatabaseOfAnotherApplicationIsRefusedUntouched() throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("other.db")
        try rawExecute(path: path, "CREATE TABLE things(x INTEGER); INSERT INTO things VALUES (1);")

        #expect(throws: StoreError.foreignDatabase(path: path, applicationID: 0)) {
            _ = try LocalStore(path: path, sync: .batch)
        }
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the foreign file was switched to WAL")
        let message = StoreError.foreignDatabase(path: path, applicationID: 0).description
        #expect(message.hasPrefix("stopping: ") && message.contains(path))
    }

    @Test func databaseFromANewerSchemaIsRefused() throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        try LocalStore(path: path, sync: .batch).close()
        try rawExecute(path: path, "PRAGMA user_version = 99")

        #expect(throws: StoreError.schemaTooNew(path: path, found: 99, supported: chorusSchemaVersion)) {
            _ = try LocalStore(path: path, sync: .batch)
        }
    }

    @Test(arguments: ObjectBackend.allCases)
    func scanReturnsOnePartitionInPagesFollowingTheCursor(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }
        for i in 0..<40 {
            try await store.put(bucket: i % 2 == 0 ? "even" : "odd", key: "k\(i)", partition: i % 4, value: [UInt8(i)])
        }

        var pages: [[StoredRecord]] = []
        var cursor: ObjectKey? = nil
        while true {
            let page = try store.scan(partition: 1, after: cursor, limit: 3)
            if page.isEmpty { break }
            pages.append(page)
            cursor = page.last?.objectKey
        }
        let expected = (0..<40).filter { $0 % 4 == 1 }
            .map { StoredRecord(bucket: "odd", key: "k\($0)", value: [UInt8($0)]) }
            .sorted { ($0.bucket, $0.key) < ($1.bucket, $1.key) }
        #expect(pages.map(\.count) == [3, 3, 3, 1])
        #expect(pages.flatMap { $0 } == expected)
        #expect(try store.scan(partition: 1) == expected)
        #expect(try store.scan(partition: 9, after: nil, limit: 10).isEmpty)
    }

    @Test func metaValuesRoundTripAndOverwrite() throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .periodic(.seconds(3600)))
        defer { store.close() }

        #expect(try store.meta(MetaName.partitionCount) == nil)
        try store.setMeta(MetaName.partitionCount, encode(1024))
        try store.setMeta(MetaName.clusterName, Array("prod".utf8))
        #expect(decode(try store.meta(MetaName.partitionCount)) == 1024)
        try store.setMeta(MetaName.clusterName, Array("staging".utf8))
        #expect(try store.meta(MetaName.clusterName) == Array("staging".utf8))
        #expect(try store.count() == 0)
    }

    @Test(arguments: ObjectBackend.allCases)
    func concurrentWritersShareOneCommit(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }

        // Hold the writer inside the first group while 63 writers queue up behind it.
        let gate = Gate()
        let done = Collector<Bool>()
        store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
        await gate.waitUntilEntered()
        await withTaskGroup(of: Void.self) { group in
            for i in 1..<64 {
                group.addTask {
                    store.enqueuePut("k\(i)", [UInt8(i)], partition: i) {
                        done.add((try? $0.get()) != nil)
                    }
                }
            }
        }
        #expect(store.statistics.queued == 63)
        gate.open()
        let results = await done.wait(for: 64)
        #expect(results.allSatisfy { $0 })
        let stats = store.statistics
        #expect(stats.commits == 2)
        #expect(stats.operations == 64)
        #expect(stats.largestGroup == 63)
    }

    /// The group commit delay: after a busy group, writes that arrive while the writer waits
    /// join the next group; a lone writer is never held (its writes would take the delay each).
    @Test(arguments: ObjectBackend.allCases)
    func aBusyStoreLetsWritesJoinTheNextGroupAndALoneWriterIsNotDelayed(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(
            path: dir.path("store.db"), sync: .batch,
            limits: StoreLimits(commitDelay: .seconds(3), commitSiblings: 4), backend: backend)
        defer { store.close() }

        // Alone: writes one after another, each its own group of one, none held.
        for i in 0..<20 { try await store.put(bucket: "b", key: "alone\(i)", partition: 0, value: [1]) }
        #expect(store.statistics.largestGroup == 1)
        #expect(store.statistics.delayedGroups == 0)

        // Busy: a group of ten; the next write is held while five more join it.
        let gate = Gate()
        let done = Collector<Bool>()
        store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
        await gate.waitUntilEntered()
        for i in 0..<10 { store.enqueuePut("busy\(i)", [1], partition: 0) { done.add((try? $0.get()) != nil) } }
        gate.open()
        #expect(await done.wait(for: 11).allSatisfy { $0 })
        #expect(store.statistics.delayedGroups == 0)
        let before = store.statistics.commits
        for i in 0..<6 { store.enqueuePut("joined\(i)", [1], partition: 0) { done.add((try? $0.get()) != nil) } }
        #expect(await done.wait(for: 17).allSatisfy { $0 })
        #expect(store.statistics.delayedGroups == 1)
        #expect(store.statistics.commits == before + 1)
    }

    @Test(arguments: ObjectBackend.allCases)
    func commitGroupsAreBoundedInOperations(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(
            path: dir.path("store.db"), sync: .batch, limits: StoreLimits(maxGroupOperations: 10), backend: backend)
        defer { store.close() }

        let gate = Gate()
        let done = Collector<Bool>()
        store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
        await gate.waitUntilEntered()
        for i in 0..<25 {
            store.enqueuePut("k\(i)", [1], partition: 0) { done.add((try? $0.get()) != nil) }
        }
        gate.open()
        let results = await done.wait(for: 26)
        #expect(results.allSatisfy { $0 })
        #expect(store.statistics.commits == 4)  // the gate, then 10 + 10 + 5
        #expect(store.statistics.largestGroup == 10)
    }

    @Test(arguments: ObjectBackend.allCases)
    func commitGroupsAreBoundedInBytes(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(
            path: dir.path("store.db"), sync: .batch, limits: StoreLimits(maxGroupBytes: 10_000), backend: backend)
        defer { store.close() }

        let gate = Gate()
        let done = Collector<Bool>()
        store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
        await gate.waitUntilEntered()
        for i in 0..<6 {
            let value = [UInt8](repeating: 1, count: 4_000)
            store.enqueuePut("k\(i)", value, partition: 0) { done.add((try? $0.get()) != nil) }
        }
        gate.open()
        let results = await done.wait(for: 7)
        #expect(results.allSatisfy { $0 })
        #expect(store.statistics.commits == 3)  // the gate, then 3 × 4,000 bytes twice
        #expect(try store.count() == 7)
    }

    @Test(arguments: ObjectBackend.allCases)
    func fullQueueRefusesWritesWithoutQueueingThem(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(
            path: path, sync: .batch, limits: StoreLimits(maxQueuedOperations: 5), backend: backend)
        defer { store.close() }

        let gate = Gate()
        let done = Collector<Result<[UInt8]?, StoreError>>()
        store.holdWriter(on: gate) { done.add($0) }
        await gate.waitUntilEntered()
        for i in 0..<6 {
            store.enqueuePut("k\(i)", [1], partition: 0) { done.add($0) }
        }
        // The sixth was refused at once, before the gate opened.
        let refused = await done.wait(for: 1)
        #expect(refused.count == 1)
        guard case .failure(.overloaded(let reported, let queued)) = refused[0] else {
            Issue.record("expected overloaded, got \(refused[0])")
            return
        }
        #expect(reported == path && queued == 5)
        gate.open()
        let all = await done.wait(for: 7)
        #expect(all.filter { (try? $0.get()) != nil }.count == 6)
        #expect(try store.get(partition: 0, bucket: "b", key: "k5") == nil)
    }

    @Test func failedCommitFailsEveryCompletionOfItsGroupAndStoresNothing() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch, limits: StoreLimits(maxDatabasePages: 12))
        defer { store.close() }
        try await store.put(bucket: "b", key: "before", partition: 0, value: [1])

        let gate = Gate()
        let done = Collector<(String, Result<[UInt8]?, StoreError>)>()
        store.holdWriter(on: gate) { done.add(("gate", $0)) }
        await gate.waitUntilEntered()
        store.enqueuePut("small", [2], partition: 0) { done.add(("small", $0)) }
        let large = [UInt8](repeating: 7, count: 200_000)
        store.enqueuePut("large", large, partition: 0) { done.add(("large", $0)) }
        gate.open()
        let results = await done.wait(for: 3)

        for (key, result) in results where key != "gate" {
            guard case .failure(.diskFull(let reported, _)) = result else {
                Issue.record("\(key): expected diskFull, got \(result)")
                continue
            }
            #expect(reported == path)
        }
        #expect(try store.get(partition: 0, bucket: "b", key: "small") == nil)
        #expect(try store.get(partition: 0, bucket: "b", key: "large") == nil)
        #expect(store.statistics.failedCommits == 1)
        // The store keeps serving writes that fit.
        try await store.put(bucket: "b", key: "after", partition: 0, value: [3])
        #expect(try store.get(partition: 0, bucket: "b", key: "after") == [3])
        #expect(try store.get(partition: 0, bucket: "b", key: "before") == [1])
        let message = StoreError.diskFull(path: path, detail: "database or disk is full").description
        #expect(message.contains(path) && message.contains("nothing of the failed commit was acknowledged"))
    }

    @Test(arguments: ObjectBackend.allCases)
    func oversizedObjectFailsAloneAndTheRestOfItsGroupCommits(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(
            path: path, sync: .batch, limits: StoreLimits(maxRowBytes: 10_000), backend: backend)
        defer { store.close() }

        let gate = Gate()
        let done = Collector<(String, Result<[UInt8]?, StoreError>)>()
        store.holdWriter(on: gate) { done.add(("gate", $0)) }
        await gate.waitUntilEntered()
        store.enqueuePut("before", [1]) { done.add(("before", $0)) }
        store.enqueuePut("huge", [UInt8](repeating: 7, count: 20_000)) { done.add(("huge", $0)) }
        store.enqueuePut("after", [2]) { done.add(("after", $0)) }
        gate.open()
        let results = Dictionary(uniqueKeysWithValues: await done.wait(for: 4).map { ($0.0, $0.1) })

        #expect((try? results["before"]?.get()) == [1])
        #expect((try? results["after"]?.get()) == [2])
        guard case .failure(.tooLarge(let reported, _)) = results["huge"] else {
            Issue.record("expected tooLarge, got \(String(describing: results["huge"]))")
            return
        }
        #expect(reported == (backend == .log ? path + "-objects" : path))
        #expect(try store.get(partition: 0, bucket: "b", key: "huge") == nil)
        #expect(try store.get(partition: 0, bucket: "b", key: "before") == [1])
        #expect(try store.get(partition: 0, bucket: "b", key: "after") == [2])
        #expect(store.statistics.commits == 2)
        #expect(store.statistics.operations == 3)
    }

    @Test(arguments: ObjectBackend.allCases)
    func deleteRemovesTheKeyAndReportsWhetherItExisted(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }
        try await store.put(bucket: "b", key: "k", partition: 2, value: [1])

        #expect(try await store.delete(partition: 2, bucket: "b", key: "k") == true)
        #expect(try store.get(partition: 2, bucket: "b", key: "k") == nil)
        #expect(try store.scan(partition: 2).isEmpty)
        #expect(try await store.delete(partition: 2, bucket: "b", key: "k") == false)
    }

    @Test(arguments: ObjectBackend.allCases)
    func conditionalDeleteRemovesOnlyTheExpectedValue(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .batch, backend: backend)
        defer { store.close() }
        try await store.put(bucket: "b", key: "k", partition: 2, value: [1, 2])

        // A newer value raced in: the delete checked against the old one keeps the key.
        #expect(try await store.delete(partition: 2, bucket: "b", key: "k", ifValue: [1]) == false)
        #expect(try store.get(partition: 2, bucket: "b", key: "k") == [1, 2])
        #expect(try await store.delete(partition: 2, bucket: "b", key: "absent", ifValue: [1, 2]) == false)

        #expect(try await store.delete(partition: 2, bucket: "b", key: "k", ifValue: [1, 2]) == true)
        #expect(try store.get(partition: 2, bucket: "b", key: "k") == nil)
        #expect(try store.scan(partition: 2).isEmpty)
        #expect(try await store.delete(partition: 2, bucket: "b", key: "k", ifValue: [1, 2]) == false)
        // The unconditional delete still works after the conditional one was prepared.
        try await store.put(bucket: "b", key: "k", partition: 2, value: [3])
        #expect(try await store.delete(partition: 2, bucket: "b", key: "k") == true)
    }

    @Test(arguments: ObjectBackend.allCases)
    func closeFlushesQueuedWritesIsIdempotentAndLaterCallsFail(backend: ObjectBackend) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .periodic(.seconds(3600)), backend: backend)
        let done = Collector<Bool>()
        for i in 0..<200 {
            store.enqueuePut("k\(i)", [1], partition: 0) { done.add((try? $0.get()) != nil) }
        }
        store.close()
        store.close()
        let results = await done.wait(for: 200)
        #expect(results.allSatisfy { $0 })

        #expect(throws: StoreError.closed(path: path)) { _ = try store.get(partition: 0, bucket: "b", key: "k0") }
        #expect(throws: StoreError.closed(path: path)) { try store.setMeta("x", [1]) }
        await #expect(throws: StoreError.closed(path: path)) {
            try await store.put(bucket: "b", key: "late", partition: 0, value: [1])
        }
        let reopened = try LocalStore(path: path, sync: .batch, backend: backend)
        defer { reopened.close() }
        #expect(try reopened.count() == 200)
    }

    /// Regression: the page size was set after the switch to WAL mode, where SQLite ignores it,
    /// so every database had 4 KiB pages.
    @Test func newDatabaseFileHasTwoKiBPages() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch)
        try await store.put(bucket: "b", key: "k", partition: 0, value: [1])
        store.close()
        #expect(rawInteger(path: path, "PRAGMA page_size") == 2048)
    }

    @Test func droppingTheLastReferenceClosesTheStore() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        var store: LocalStore? = try LocalStore(path: path, sync: .batch)
        try await store?.put(bucket: "b", key: "k", partition: 0, value: [5])
        #expect(openDescriptors(on: path) > 0)
        store = nil
        // Closed by deinit: no connection holds the files any more.
        #expect(openDescriptors(on: path) == 0)
        #expect(rawValue(path: path, bucket: "b", key: "k") == [5])
    }

    @Test func periodicPolicyCheckpointsAfterWrites() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try LocalStore(path: dir.path("store.db"), sync: .periodic(.milliseconds(20)))
        defer { store.close() }
        try await store.put(bucket: "b", key: "k", partition: 0, value: [1])
        // Wait (bounded) for the writer's timer; the assertion is on the event, not the delay.
        let deadline = ContinuousClock.now + .seconds(30)
        while store.statistics.checkpoints == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(store.statistics.checkpoints >= 1)
    }

    @Test func backgroundCheckpointerCopiesTheWALWhileWritesGoOn() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try LocalStore(path: path, sync: .batch)
        let value = [UInt8](repeating: 7, count: 32 << 10)
        // About seventeen 2 KiB WAL pages per write: 2,000 writes pass the checkpointer's
        // interval (`WALCheckpointer.interval`, 16,384 pages) twice over, in groups of up to 100.
        for round in 0..<20 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        try await store.put(bucket: "b", key: "k\(round)-\(index)", partition: index % 8, value: value)
                    }
                }
                try await group.waitForAll()
            }
        }
        // Bounded wait for the checkpointer thread; the assertion is on the event.
        let deadline = ContinuousClock.now + .seconds(30)
        while store.statistics.backgroundCheckpoints == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(store.statistics.backgroundCheckpoints >= 1)
        #expect(try store.count() == 2000)
        #expect(try store.get(partition: 3, bucket: "b", key: "k19-99") == value)
        store.close()
        let reopened = try LocalStore(path: path, sync: .batch)
        defer { reopened.close() }
        #expect(try reopened.count() == 2000)
        #expect(try reopened.get(partition: 0, bucket: "b", key: "k0-0") == value)
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}

/// Deterministic filler bytes (xorshift).
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state >> 24)
    }
}
