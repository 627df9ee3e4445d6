import CSQLite
import ChorusCore
import ChorusStorage
import Foundation
import Testing

/// The `log` backend's own behaviour: recovery, damage, compaction, migration, its cap. What
/// it shares with the `sqlite` backend is tested for both in LocalStoreTests.
@Suite("ObjectLog")
struct ObjectLogTests {
    func openLog(
        _ path: String, limits: StoreLimits = StoreLimits(), settings: ObjectLogSettings = ObjectLogSettings(),
        sync: SyncPolicy = .batch
    ) throws -> LocalStore {
        try LocalStore(path: path, sync: sync, limits: limits, backend: .log, logSettings: settings)
    }

    func segments(of path: String) -> [String] {
        let folder = path + "-objects"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".seg") }.sorted().map { folder + "/" + $0 }
    }

    /// Writes `k0`... with values `[i, 0xAB]`, one commit each, key i in partition
    /// `i % partitions`. The values end in a non-zero byte: `dataEnd` finds the records' end by it.
    func writeNumberedKeys(_ store: LocalStore, count: Int, partitions: Int = 1) async throws {
        for i in 0..<count {
            try await store.put(bucket: "b", key: "k\(i)", partition: i % partitions, value: [UInt8(i), 0xAB])
        }
    }

    /// Where the records of a segment end and the zeros written ahead of them begin.
    func dataEnd(of file: String) throws -> Int {
        let contents = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        return try #require(contents.lastIndex { $0 != 0 }) + 1
    }

    func overwrite(_ file: String, at offset: UInt64, with bytes: [UInt8]) throws {
        let handle = try #require(FileHandle(forWritingAtPath: file))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
    }

    @Test func tornWriteAtTheEndIsCutOffAtOpenAndEverythingBeforeItReads() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try openLog(path)
            try await writeNumberedKeys(store, count: 100, partitions: 7)
            store.close()
        }
        // What a crash in the middle of the next commit group's write leaves: a record's start,
        // where the data ends and the zeros written ahead of it begin.
        let active = try #require(segments(of: path).last)
        let dataEnd = try dataEnd(of: active)
        #expect(fileSize(active) > dataEnd)  // preallocated
        try overwrite(
            active, at: UInt64(dataEnd), with: [0x5A, 0x11, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03])

        let store = try openLog(path)
        #expect(store.truncatedAtOpen == 11)
        #expect(try store.count() == 100)
        for i in 0..<100 {
            #expect(try store.get(partition: i % 7, bucket: "b", key: "k\(i)") == [UInt8(i), 0xAB])
        }
        try await store.put(bucket: "b", key: "after", partition: 1, value: [7])
        store.close()
        let reopened = try openLog(path)
        defer { reopened.close() }
        #expect(reopened.truncatedAtOpen == 0)
        #expect(try reopened.get(partition: 1, bucket: "b", key: "after") == [7])
        #expect(try reopened.count() == 101)
    }

    @Test func aTornLastCommitIsDroppedWholeAndEarlierCommitsStay() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try openLog(path)
            try await writeNumberedKeys(store, count: 10)
            // One commit of five writes, the last thing written.
            let gate = Gate()
            let done = Collector<Bool>()
            store.holdWriter(on: gate) { done.add((try? $0.get()) != nil) }
            await gate.waitUntilEntered()
            for i in 0..<5 {
                store.enqueuePut("late\(i)", [UInt8(i), 0xAB], partition: 1) { done.add((try? $0.get()) != nil) }
            }
            gate.open()
            #expect(await done.wait(for: 6).allSatisfy { $0 })
            #expect(store.statistics.commits == 12)
            store.close()
        }
        // Its last record damaged, as a crash that wrote the commit's first pages and not its last.
        let active = try #require(segments(of: path).last)
        try overwrite(active, at: UInt64(try dataEnd(of: active) - 3), with: [0x00, 0x77])

        let store = try openLog(path)
        defer { store.close() }
        #expect(store.truncatedAtOpen > 0)
        for i in 0..<5 { #expect(try store.get(partition: 1, bucket: "b", key: "late\(i)") == nil) }
        for i in 0..<10 { #expect(try store.get(partition: 0, bucket: "b", key: "k\(i)") == [UInt8(i), 0xAB]) }
        #expect(try store.get(partition: 0, bucket: "b", key: "gate") == [0])
        #expect(try store.count() == 11)
    }

    @Test func damageInAnEarlierCommitIsDamageHoweverCloseToTheEnd() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try openLog(path)
            try await writeNumberedKeys(store, count: 10)
            store.close()
        }
        // Ten commits of 51 bytes (a 25-byte commit record, a 26-byte put): hit the sixth.
        let active = try #require(segments(of: path).last)
        try overwrite(active, at: UInt64(51 * 5 + 40), with: [0xFF])
        #expect {
            try openLog(path)
        } throws: { error in
            guard case StoreError.corrupt(let reported, _) = error else { return false }
            return reported == active
        }
    }

    @Test func damageBeforeTheLastCommitGroupStopsTheOpenNamingTheSegment() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let limits = StoreLimits(maxGroupBytes: 4096, maxRowBytes: 1024)
        do {
            let store = try openLog(path, limits: limits, settings: ObjectLogSettings(segmentBytes: 16 << 10))
            for i in 0..<1200 {
                try await store.put(bucket: "b", key: "k\(i)", partition: 0, value: [UInt8](repeating: 3, count: 100))
            }
            store.close()
        }
        let files = segments(of: path)
        #expect(files.count > 2)
        // A sealed segment: damage anywhere in it is damage.
        try overwrite(files[0], at: 300, with: [0xFF, 0xFF, 0xFF])
        #expect {
            try openLog(path, limits: limits, settings: ObjectLogSettings(segmentBytes: 16 << 10))
        } throws: { error in
            guard case StoreError.corrupt(let reported, let detail) = error else { return false }
            return reported == files[0] && detail.contains("at byte")
        }
    }

    @Test func damageFarFromTheEndOfTheActiveSegmentIsNotMistakenForATornWrite() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let limits = StoreLimits(maxGroupBytes: 4096, maxRowBytes: 1024)
        let settings = ObjectLogSettings(compactionStepBytes: 4096)
        do {
            let store = try openLog(path, limits: limits, settings: settings)
            for i in 0..<1500 {
                try await store.put(bucket: "b", key: "k\(i)", partition: 0, value: [UInt8](repeating: 3, count: 100))
            }
            store.close()
        }
        let files = segments(of: path)
        #expect(files.count == 1)
        #expect(fileSize(files[0]) > 100_000)  // more than the torn-write window (~10 KB here)
        try overwrite(files[0], at: 20, with: [0xFF])
        #expect {
            try openLog(path, limits: limits, settings: settings)
        } throws: { error in
            guard case StoreError.corrupt(let reported, _) = error else { return false }
            return reported == files[0]
        }
    }

    @Test func damageFoundByAReadStopsWritesButNotOtherReads() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try openLog(path)
        defer { store.close() }
        try await store.put(bucket: "b", key: "first", partition: 0, value: [UInt8](repeating: 1, count: 50))
        try await store.put(bucket: "b", key: "second", partition: 0, value: [UInt8](repeating: 2, count: 50))
        // Flip a byte inside the first record's value, behind the store's back.
        try overwrite(try #require(segments(of: path).first), at: 40, with: [0xEE])

        #expect(throws: StoreError.self) { _ = try store.get(partition: 0, bucket: "b", key: "first") }
        #expect(store.health.isWritable == false)
        #expect(store.health.summary.contains("corrupt"))
        #expect(try store.get(partition: 0, bucket: "b", key: "second") == [UInt8](repeating: 2, count: 50))
        await #expect {
            try await store.put(bucket: "b", key: "third", partition: 0, value: [3])
        } throws: { error in
            if case StoreError.corrupt = error { return true }
            return false
        }
    }

    @Test(arguments: [SyncPolicy.batch, .periodic(.seconds(3600))])
    func compactionReclaimsOverwrittenSpaceAndNeverBringsBackADeletedKey(sync: SyncPolicy) async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let settings = ObjectLogSettings(
            segmentBytes: 8 << 10, compactionMinimumBytes: 0, compactionStepBytes: 4096)
        do {
            let store = try openLog(path, settings: settings, sync: sync)
            for round in 0..<30 {
                for i in 0..<40 {
                    try await store.put(
                        bucket: "b", key: "k\(i)", partition: i % 3, value: encode(UInt64(round * 100 + i)))
                }
                if round == 5 {
                    for i in 0..<10 { try await store.delete(partition: i % 3, bucket: "b", key: "k\(i)") }
                }
                if round == 6 {
                    // Written again after the delete: must keep the new value.
                    for i in 0..<5 {
                        try await store.put(bucket: "b", key: "k\(i)", partition: i % 3, value: encode(UInt64(7)))
                    }
                }
            }
            for i in 0..<10 { try await store.delete(partition: i % 3, bucket: "b", key: "k\(i)") }
            // Compaction runs between commit groups and while idle; wait (bounded) for it.
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let stats = try #require(store.logStatistics)
                if stats.compactedSegments > 0 && stats.bytes - stats.liveBytes <= max(stats.liveBytes, 8 << 10) {
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let stats = try #require(store.logStatistics)
            #expect(stats.compactedSegments > 0)
            #expect(stats.bytes < 40 * 30 * 40 / 2)  // far below everything ever written
            #expect(try store.count() == 30)
            store.close()
        }
        let reopened = try openLog(path, settings: settings)
        defer { reopened.close() }
        #expect(try reopened.count() == 30)
        for i in 0..<40 {
            let value = try reopened.get(partition: i % 3, bucket: "b", key: "k\(i)")
            if i < 10 {
                #expect(value == nil, "k\(i) was deleted")
            } else {
                #expect(decode(value) == UInt64(2900 + i))
            }
        }
        #expect(segments(of: path).count < 40 * 30 * 40 / (8 << 10))
    }

    /// Whatever a segment holds, opening either replays it or fails with a `StoreError`; it
    /// never traps (bytes from the disk are input like any other). Seeded mutations of a real
    /// segment: bit flips, length fields set to edge values, truncations, spliced ranges.
    @Test func mutatedSegmentsOpenOrFailCleanlyNeverTrap() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let original = dir.path("original/store.db")
        do {
            let store = try openLog(original)
            for i in 0..<40 {
                try await store.put(
                    bucket: "b\(i % 3)", key: "k\(i)", partition: i % 5, value: [UInt8](repeating: UInt8(i), count: i))
                if i % 7 == 0 { try await store.delete(partition: i % 5, bucket: "b\(i % 3)", key: "k\(i)") }
            }
            store.close()
        }
        let segment = try #require(segments(of: original).first)
        let clean = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        let dataEnd = try #require(clean.lastIndex { $0 != 0 }) + 1
        var random = SeededRandom(seed: 0xC0FF_EE00)
        var opened = 0
        var refused = 0
        for round in 0..<300 {
            var bytes = Array(clean[0..<dataEnd])
            switch round % 5 {
            case 0:
                for _ in 0..<(1 + random.below(4)) {
                    bytes[random.below(bytes.count)] ^= UInt8(1 << random.below(8))
                }
            case 1:
                let at = random.below(bytes.count - 4)
                let edge: [UInt32] = [0, 1, 12, 13, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF]
                let value = edge[random.below(edge.count)]
                for k in 0..<4 { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
            case 2:
                bytes.removeLast(random.below(bytes.count))
            case 3:
                let from = random.below(bytes.count)
                let to = random.below(bytes.count)
                let count = min(random.below(200), bytes.count - max(from, to))
                bytes.replaceSubrange(to..<(to + count), with: bytes[from..<(from + count)])
            default:
                bytes.insert(
                    contentsOf: (0..<random.below(64)).map { _ in UInt8(random.below(256)) },
                    at: random.below(bytes.count))
            }
            let path = dir.path("round\(round)/store.db")
            try FileManager.default.createDirectory(atPath: path + "-objects", withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path + "-objects/0000000001.seg"))
            do {
                // No fsync per commit and no 2 MiB of zeros ahead: 300 stores' worth would load
                // the disk that the other tests share.
                let store = try openLog(
                    path, settings: ObjectLogSettings(preallocationBytes: 0), sync: .periodic(.seconds(3600)))
                _ = try? store.scan(partition: 1)
                try? await store.put(bucket: "b", key: "after", partition: 1, value: [1])
                store.close()
                opened += 1
            } catch let error as StoreError {
                guard case .corrupt = error else {
                    Issue.record("round \(round): unexpected \(error)")
                    continue
                }
                refused += 1
            }
            try? FileManager.default.removeItem(atPath: dir.path("round\(round)"))
        }
        #expect(opened + refused == 300)
        #expect(opened > 0 && refused > 0)
    }

    @Test func objectsOfASQLiteDataDirMoveIntoTheLogAndTheDirCannotGoBack() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        do {
            let store = try LocalStore(path: path, sync: .batch, backend: .sqlite)
            for i in 0..<30 {
                try await store.put(bucket: "b", key: "k\(i)", partition: i % 4, value: encode(UInt64(i)))
            }
            try store.setMeta(MetaName.nodeID, Array("n1".utf8))
            store.close()
        }
        do {
            let store = try openLog(path)
            #expect(store.backend == .log)
            #expect(try store.count() == 30)
            for i in 0..<30 {
                #expect(decode(try store.get(partition: i % 4, bucket: "b", key: "k\(i)")) == UInt64(i))
            }
            #expect(try store.scan(partition: 1).count == 8)
            #expect(try store.meta(MetaName.nodeID) == Array("n1".utf8))
            store.close()
        }
        // The rows were moved, not copied.
        try checkpointIntoDatabaseFile(path: path)
        #expect(rawValue(path: path, bucket: "b", key: "k1") == nil)
        #expect {
            try LocalStore(path: path, sync: .batch, backend: .sqlite)
        } throws: { error in
            guard case StoreError.cannotOpen(_, let detail) = error else { return false }
            return detail.contains("store.backend = \"log\"")
        }
    }

    @Test func cappedLogRefusesWritesAsDiskFullAndKeepsServingReads() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let path = dir.path("store.db")
        let store = try openLog(path, settings: ObjectLogSettings(maxBytes: 4000))
        defer { store.close() }
        var stored = 0
        var failure: StoreError? = nil
        for i in 0..<100 {
            do {
                try await store.put(bucket: "b", key: "k\(i)", partition: 0, value: [UInt8](repeating: 1, count: 100))
                stored += 1
            } catch {
                failure = error
                break
            }
        }
        #expect(stored > 10 && stored < 100)
        guard case .diskFull? = failure else {
            Issue.record("expected diskFull, got \(String(describing: failure))")
            return
        }
        #expect(store.health.isWritable == false)
        for i in 0..<stored {
            #expect(try store.get(partition: 0, bucket: "b", key: "k\(i)") == [UInt8](repeating: 1, count: 100))
        }
        #expect(try store.count() == stored)
    }

    @Test func acknowledgedValueIsVisibleToReadsWhenTheCompletionFires() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let store = try openLog(dir.path("store.db"))
        defer { store.close() }
        let seen = Collector<Bool>()
        for i in 0..<100 {
            store.enqueuePut("k\(i)", encode(UInt64(i)), partition: i % 4) { result in
                guard case .success(let value) = result else { return seen.add(false) }
                seen.add((try? store.get(partition: i % 4, bucket: "b", key: "k\(i)")) == value)
            }
        }
        let results = await seen.wait(for: 100)
        #expect(results.count == 100 && results.allSatisfy { $0 })
    }

    /// Anti-entropy pages through partitions by `(bucket, key)`; both backends must order them
    /// alike (SQLite's BINARY collation: UTF-8 bytes).
    @Test func bothBackendsScanKeysInTheSameOrder() async throws {
        let dir = try ScratchDir()
        defer { dir.remove() }
        let keys = ["b", "B", "a", "é", "z", "Z", "aa", "a b", "10", "9", "ß", "A"]
        var orders: [[String]] = []
        for backend in ObjectBackend.allCases {
            let store = try LocalStore(path: dir.path("\(backend).db"), sync: .batch, backend: backend)
            for (i, key) in keys.enumerated() {
                try await store.put(bucket: i % 2 == 0 ? "x" : "X", key: key, partition: 0, value: [1])
            }
            var order: [String] = []
            var cursor: ObjectKey? = nil
            while true {
                let page = try store.scan(partition: 0, after: cursor, limit: 5)
                guard let last = page.last else { break }
                order += page.map { "\($0.bucket)/\($0.key)" }
                cursor = last.objectKey
            }
            orders.append(order)
            store.close()
        }
        #expect(orders[0].count == keys.count)
        #expect(orders[0] == orders[1])
    }
}

extension SeededRandom {
    /// A number in `0..<bound` (0 when the bound is 0 or 1).
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int.random(in: 0..<bound, using: &self) }
}
