import Foundation

/// The `log` object backend (DESIGN §8; Riak's Bitcask): every object write is appended to a
/// segment file, and an in-memory key directory points at each key's latest record.
///
/// A commit group is one `pwrite` of its records plus one `fdatasync` (batch policy), where a
/// B-tree writes each dirtied page twice (WAL, then checkpoint) and reorganises pages in the
/// writer's CPU time. The price, as with Bitcask: every key (not its value) is held in memory,
/// about 150 bytes per key in an agent, and space of overwritten values comes back only by
/// compaction.
///
/// Files: `<folder>/NNNNNNNNNN.seg`, ascending ids; the highest is the active segment, the only
/// one appended to. A record:
///
///     u32 CRC-32C of everything after these 8 bytes, u32 length of everything after them,
///     u8 kind (1 put, 2 delete, 3 commit), u32 partition, u32 bucket length, u32 key length,
///     bucket bytes, key bytes, value bytes (puts; a commit record's: u32 bytes of its commit)
///
/// Every commit (a group's one write) starts with a commit record that states the commit's
/// length, so replay knows where each commit ends and applies a commit whole or not at all.
/// all little-endian. The active segment is zero-filled ahead of its end (`preallocationBytes`
/// at a time), so a commit overwrites zeros inside the file: its `fdatasync` flushes the data
/// alone, where an append that grows the file also had to write the inode back first. Eight
/// zero bytes where a record would start end a segment's data (what follows must be zeros).
/// Opening replays every segment in order. A record that fails its check in
/// the active segment's last commit window is a write cut short by a crash: the segment is
/// truncated there (nothing in it was acknowledged). Anywhere else it is damage, and opening
/// fails with `StoreError.corrupt` naming the file and offset: the agent stops rather than
/// serve a partial view. Reads verify each record's checksum too.
///
/// Compaction copies the live records of the oldest sealed segment into the active one, then
/// deletes the oldest segment (and drops its delete records: no older segment is left for them
/// to shadow). It runs in small steps on the writer thread while more than half of the log's
/// bytes are dead.
///
/// Thread-safety: `get`, `scan`, `count` and `statistics` from any thread (the key directory is
/// behind a lock); everything else only from the store's writer thread.
final class ObjectLog: @unchecked Sendable {
    let folder: String
    let sync: SyncPolicy
    let settings: ObjectLogSettings

    private let lock = NSLock()
    private var directory: [Int: [ObjectKey: Entry]] = [:]
    private var segments: [LogSegment] = []  // ascending ids; the last is the active one
    private var objectCount = 0
    private var totalBytes = 0
    private var liveBytes = 0
    private var compactedSegments = 0
    private var compactedBytes = 0
    /// The oldest segment's compaction cursor while one is under way.
    private var compactionCursor: Int?

    /// Bytes cut from the active segment's end at open (a write a crash cut short), for the log.
    private(set) var truncatedAtOpen: Int = 0

    struct Entry {
        let segment: LogSegment
        let offset: Int
        let length: Int
    }

    struct FullKey: Hashable {
        var partition: Int
        var objectKey: ObjectKey
    }

    /// The largest single write of the log: a record that fails its check this close to the
    /// end of the active segment is a torn write (see `replay`).
    let tornTailBytes: Int

    /// Opens (creating the folder when missing) and replays the log. `largestCommitBytes`: an
    /// upper bound on one commit's bytes (a group, a compaction step or a migration chunk).
    init(folder: String, sync: SyncPolicy, settings: ObjectLogSettings, largestCommitBytes: Int) throws(StoreError) {
        self.folder = folder
        self.sync = sync
        self.settings = settings
        // A compaction step's commit holds up to a step and one record more: within this too.
        tornTailBytes = settings.compactionStepBytes + largestCommitBytes
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .cannotOpen(
                path: folder, detail: "cannot create the object log folder: \(error.localizedDescription)")
        }
        let ids = try Self.segmentIDs(in: folder)
        for (index, id) in ids.enumerated() {
            let segment = try LogSegment(folder: folder, id: id, create: false)
            segments.append(segment)
            try replay(segment, isLast: index == ids.count - 1)
        }
        if segments.isEmpty {
            segments.append(try LogSegment(folder: folder, id: 1, create: true))
            try Self.syncFolder(folder)
        }
    }

    /// Whether the folder holds any object records (a data dir written by this backend).
    static func holdsObjects(folder: String) -> Bool {
        guard let ids = try? segmentIDs(in: folder) else { return false }
        return ids.contains { id in
            guard let segment = try? LogSegment(folder: folder, id: id, create: false) else { return false }
            var header = [UInt8](repeating: 0, count: LogRecord.headerBytes)
            let got = header.withUnsafeMutableBytes { pread(segment.fd, $0.baseAddress, $0.count, 0) }
            return got > 0 && header.contains { $0 != 0 }
        }
    }

    private static func segmentIDs(in folder: String) throws(StoreError) -> [UInt64] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw .cannotOpen(path: folder, detail: "cannot list the object log folder: \(error.localizedDescription)")
        }
        return names.compactMap { name -> UInt64? in
            guard name.hasSuffix(".seg") else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
    }

    // MARK: Replay

    private func replay(_ segment: LogSegment, isLast: Bool) throws(StoreError) {
        let size = segment.allocated
        var offset = 0
        var reader = SegmentReader(segment: segment, chunkBytes: 1 << 20)
        // The commit being read: where it started and ends, and its records (applied once
        // the whole commit has checked out).
        var commitStart = 0
        var commitEnd = 0
        var pending: [(record: LogRecord, offset: Int, length: Int)] = []
        var failure: String? = nil
        replaying: while offset < size {
            if offset == commitEnd && reader.isZero(from: offset, count: LogRecord.headerBytes, fileSize: size) {
                // The end of the data, if only zeros follow (the preallocated rest).
                guard let nonZero = reader.lastNonZeroByte(fileSize: size), nonZero >= offset else { break }
            }
            let record: LogRecord
            let length: Int
            switch reader.record(at: offset, fileSize: size) {
            case .record(let decoded, let decodedLength): (record, length) = (decoded, decodedLength)
            case .bad(let reason):
                failure = reason
                break replaying
            }
            if offset == commitEnd {
                guard record.kind == .commit, offset + record.commitBytes <= size else {
                    failure = "a commit does not start with its commit record"
                    break
                }
                commitStart = offset
                commitEnd = offset + record.commitBytes
                totalBytes += length
            } else {
                guard record.kind != .commit, offset + length <= commitEnd else {
                    failure = "a record crosses the end of its commit"
                    break
                }
                pending.append((record, offset, length))
            }
            offset += length
            if offset == commitEnd {
                for entry in pending {
                    let key = FullKey(
                        partition: entry.record.partition,
                        objectKey: ObjectKey(bucket: entry.record.bucket, key: entry.record.key))
                    apply(entry.record.kind, key, segment: segment, offset: entry.offset, length: entry.length)
                }
                pending.removeAll(keepingCapacity: true)
            }
        }
        if failure == nil && offset == commitEnd {
            segment.size = offset
            return
        }
        // A commit that did not check out whole. One commit is one write: a crash can cut only
        // the last one short, and nothing of it was acknowledged. So it is a torn write when
        // nothing was written past the end its commit record states (when that record itself
        // is the bad one: past one largest commit); damage otherwise.
        let atBoundary = offset == commitEnd
        if atBoundary { commitStart = offset }
        let stop = atBoundary ? offset + tornTailBytes : commitEnd
        let lastWritten = reader.lastNonZeroByte(fileSize: size) ?? commitStart
        guard isLast && lastWritten < stop else {
            let reason = failure ?? "commit cut short"
            throw .corrupt(path: segment.path, detail: "\(reason) at byte \(offset) of \(size)")
        }
        guard ftruncate(segment.fd, off_t(commitStart)) == 0 else {
            throw .cannotOpen(path: segment.path, detail: "cannot cut off a torn write: \(errnoText())")
        }
        if !atBoundary { totalBytes -= LogRecord.commitRecordBytes }
        truncatedAtOpen += max(0, lastWritten + 1 - commitStart)
        segment.allocated = commitStart
        segment.size = commitStart
    }

    /// Applies a replayed (or committed) put or delete record to the key directory. Caller
    /// holds `lock`, or is `init`.
    private func apply(_ kind: LogRecord.Kind, _ key: FullKey, segment: LogSegment, offset: Int, length: Int) {
        totalBytes += length
        let previous: Entry?
        if kind == .delete {
            previous = directory[key.partition]?.removeValue(forKey: key.objectKey)
            if directory[key.partition]?.isEmpty == true { directory[key.partition] = nil }
        } else {
            previous = directory[key.partition, default: [:]].updateValue(
                Entry(segment: segment, offset: offset, length: length), forKey: key.objectKey)
            liveBytes += length
            segment.liveBytes += length
        }
        if let previous {
            liveBytes -= previous.length
            previous.segment.liveBytes -= previous.length
        }
        objectCount += (kind == .delete ? 0 : 1) - (previous == nil ? 0 : 1)
    }

    // MARK: Reads (any thread)

    func get(partition: Int, bucket: String, key: String) throws(StoreError) -> [UInt8]? {
        lock.lock()
        let entry = directory[partition]?[ObjectKey(bucket: bucket, key: key)]
        lock.unlock()
        guard let entry else { return nil }
        return try read(entry).value
    }

    func scan(partition: Int, after: ObjectKey?, limit: Int) throws(StoreError) -> [StoredRecord] {
        lock.lock()
        let entries = directory[partition] ?? [:]
        lock.unlock()
        var keys = Array(entries.keys)
        if let after { keys.removeAll { !Self.precedes(after, $0) } }
        keys.sort(by: Self.precedes)
        var page: [StoredRecord] = []
        for key in keys.prefix(max(1, limit)) {
            let record = try read(entries[key]!)
            page.append(StoredRecord(bucket: key.bucket, key: key.key, value: record.value))
        }
        return page
    }

    /// SQLite's BINARY order of `(bucket, key)`: bytes of the UTF-8, bucket first.
    static func precedes(_ a: ObjectKey, _ b: ObjectKey) -> Bool {
        if a.bucket != b.bucket { return a.bucket.utf8.lexicographicallyPrecedes(b.bucket.utf8) }
        return a.key.utf8.lexicographicallyPrecedes(b.key.utf8)
    }

    func count() -> Int {
        lock.lock()
        defer { lock.unlock() }
        return objectCount
    }

    var statistics: ObjectLogStatistics {
        lock.lock()
        defer { lock.unlock() }
        return ObjectLogStatistics(
            segments: segments.count, bytes: totalBytes, liveBytes: liveBytes, compactedSegments: compactedSegments,
            compactedBytes: compactedBytes)
    }

    private func read(_ entry: Entry) throws(StoreError) -> LogRecord {
        var bytes = [UInt8](repeating: 0, count: entry.length)
        let got = bytes.withUnsafeMutableBytes {
            pread(entry.segment.fd, $0.baseAddress, entry.length, off_t(entry.offset))
        }
        guard got == entry.length else {
            throw got < 0
                ? .io(path: entry.segment.path, detail: "read failed: \(errnoText())")
                : .corrupt(path: entry.segment.path, detail: "record at byte \(entry.offset) is cut short")
        }
        switch LogRecord.decode(bytes[...]) {
        case .record(let record, _): return record
        case .bad(let reason):
            throw .corrupt(path: entry.segment.path, detail: "\(reason) at byte \(entry.offset)")
        }
    }

    // MARK: Writes (writer thread)

    /// The records of one commit group, before they are written.
    struct Staging {
        /// Starts with room for the commit record, written by `commit`.
        fileprivate var buffer = [UInt8](repeating: 0, count: LogRecord.commitRecordBytes)
        fileprivate var records: [(key: FullKey, kind: LogRecord.Kind, start: Int, length: Int)] = []
        /// What the group wrote so far, so a later operation of the group on the same key sees it.
        fileprivate var overlay: [FullKey: [UInt8]?] = [:]

        var isEmpty: Bool { records.isEmpty }
        var bytes: Int { buffer.count }
    }

    /// The current value of a key, as the group staged it or as stored.
    func current(_ key: FullKey, in staging: Staging) throws(StoreError) -> [UInt8]? {
        if let staged = staging.overlay[key] { return staged }
        return try get(partition: key.partition, bucket: key.objectKey.bucket, key: key.objectKey.key)
    }

    func stagePut(_ key: FullKey, value: [UInt8], in staging: inout Staging) {
        stage(.put, key, value: value, in: &staging)
    }

    func stageDelete(_ key: FullKey, in staging: inout Staging) {
        stage(.delete, key, value: [], in: &staging)
    }

    private func stage(_ kind: LogRecord.Kind, _ key: FullKey, value: [UInt8], in staging: inout Staging) {
        let start = staging.buffer.count
        LogRecord.encode(
            kind: kind, partition: key.partition, bucket: key.objectKey.bucket, key: key.objectKey.key,
            value: value, into: &staging.buffer)
        staging.records.append((key, kind, start, staging.buffer.count - start))
        staging.overlay[key] = kind == .delete ? .some(nil) : .some(value)
    }

    /// Writes the group's records (and fsyncs them under the batch policy), then makes them
    /// visible to readers. On failure nothing of the group is visible, the segment is cut
    /// back to its previous end, and the error says why.
    /// Compaction's copies pass `enforcingCap: false`: they are how space comes back.
    func commit(_ staging: Staging, enforcingCap: Bool = true) throws(StoreError) {
        guard !staging.isEmpty else { return }
        var staging = staging
        var header: [UInt8] = []
        let length = UInt32(staging.buffer.count)
        LogRecord.encode(
            kind: .commit, partition: 0, bucket: "", key: "",
            value: [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)],
            into: &header)
        staging.buffer.replaceSubrange(0..<header.count, with: header)
        if enforcingCap, let cap = settings.maxBytes, totalBytes + staging.bytes > cap {
            throw .diskFull(
                path: folder, detail: "the object log would exceed its cap of \(cap) bytes (store limit)")
        }
        var segment = segments[segments.count - 1]
        if segment.size > 0 && segment.size + staging.bytes > settings.segmentBytes {
            segment = try startSegment()
        }
        let base = segment.size
        if base + staging.bytes > segment.allocated {
            try preallocate(segment, through: base + staging.bytes)
        }
        try write(staging.buffer, to: segment, at: base)
        if sync == .batch {
            guard fdatasync(segment.fd) == 0 else {
                let detail = errnoText()
                cutBack(segment, to: base)
                throw .io(path: segment.path, detail: "fdatasync failed: \(detail)")
            }
        }
        lock.lock()
        segment.size = base + staging.bytes
        totalBytes += LogRecord.commitRecordBytes
        for record in staging.records {
            apply(record.kind, record.key, segment: segment, offset: base + record.start, length: record.length)
        }
        lock.unlock()
    }

    private func write(_ bytes: [UInt8], to segment: LogSegment, at base: Int) throws(StoreError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                pwrite(segment.fd, buffer.baseAddress! + written, buffer.count - written, off_t(base + written))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let code = count < 0 ? errno : ENOSPC
                let detail = count < 0 ? errnoText() : "short write"
                cutBack(segment, to: base)
                if code == ENOSPC || code == EDQUOT {
                    throw .diskFull(path: segment.path, detail: detail)
                }
                throw .io(path: segment.path, detail: "write failed: \(detail)")
            }
            written += count
        }
    }

    /// Zero-fills the active segment past `end`, `preallocationBytes` at a time (not beyond the
    /// segment size unless one commit needs it).
    /// On a disk too full for the whole step it zero-fills only what the commit needs.
    private func preallocate(_ segment: LogSegment, through end: Int) throws(StoreError) {
        let start = segment.allocated
        let target = max(end, min(settings.segmentBytes, start + settings.preallocationBytes))
        do throws(StoreError) {
            try write([UInt8](repeating: 0, count: target - start), to: segment, at: start)
        } catch .diskFull(let path, let detail) {
            guard target > end else { throw .diskFull(path: path, detail: detail) }
            try write([UInt8](repeating: 0, count: end - start), to: segment, at: start)
            segment.allocated = end
            return
        } catch {
            throw error
        }
        segment.allocated = target
    }

    /// After a failed write: the file ends at `offset` again (the next commit zero-fills anew).
    private func cutBack(_ segment: LogSegment, to offset: Int) {
        _ = ftruncate(segment.fd, off_t(offset))
        segment.allocated = offset
    }

    /// Seals the active segment (its zero tail cut off; fsynced under the periodic policy) and
    /// starts the next.
    private func startSegment() throws(StoreError) -> LogSegment {
        let sealed = segments[segments.count - 1]
        if ftruncate(sealed.fd, off_t(sealed.size)) == 0 { sealed.allocated = sealed.size }
        if sync != .batch { _ = fdatasync(sealed.fd) }
        let next = try LogSegment(folder: folder, id: sealed.id + 1, create: true)
        try Self.syncFolder(folder)
        lock.lock()
        segments.append(next)
        lock.unlock()
        return next
    }

    /// fsync of the active segment (the periodic policy's timer, and close).
    func flush() {
        _ = fdatasync(segments[segments.count - 1].fd)
    }

    // MARK: Compaction (writer thread)

    /// Whether compaction has work: one is under way, or more than half of a log bigger than
    /// `compactionMinimumBytes` is dead and a sealed segment exists.
    var wantsCompaction: Bool {
        lock.lock()
        defer { lock.unlock() }
        if compactionCursor != nil { return true }
        let dead = totalBytes - liveBytes
        return segments.count > 1 && dead >= settings.compactionMinimumBytes && dead > liveBytes
    }

    /// Copies up to `compactionStepBytes` of the oldest segment's live records forward and
    /// deletes the segment once it has been walked. Returns the bytes it read.
    @discardableResult
    func compactionStep() throws(StoreError) -> Int {
        lock.lock()
        guard segments.count > 1 else {
            lock.unlock()
            return 0
        }
        let oldest = segments[0]
        let start = compactionCursor ?? 0
        lock.unlock()

        var staging = Staging()
        var reader = SegmentReader(segment: oldest, chunkBytes: settings.compactionStepBytes + 64 << 10)
        var offset = start
        while offset < oldest.size && offset - start < settings.compactionStepBytes {
            switch reader.record(at: offset, fileSize: oldest.size) {
            case .record(let record, let length):
                if record.kind == .put {
                    let key = FullKey(
                        partition: record.partition, objectKey: ObjectKey(bucket: record.bucket, key: record.key))
                    lock.lock()
                    let entry = directory[key.partition]?[key.objectKey]
                    lock.unlock()
                    if let entry, entry.segment === oldest, entry.offset == offset {
                        stagePut(key, value: record.value, in: &staging)
                    }
                }
                offset += length
            case .bad(let reason):
                throw .corrupt(path: oldest.path, detail: "\(reason) at byte \(offset) (found by compaction)")
            }
        }
        try commit(staging, enforcingCap: false)
        lock.lock()
        compactedBytes += offset - start
        let finished = offset >= oldest.size
        compactionCursor = finished ? nil : offset
        if finished {
            segments.removeFirst()
            totalBytes -= oldest.size
            liveBytes -= oldest.liveBytes
            compactedSegments += 1
        }
        lock.unlock()
        if finished {
            // The copies durable before their originals go (under the periodic policy
            // commits are not fsynced each), and the segment durably gone before any later
            // compaction drops delete records that it held puts for.
            if sync != .batch {
                guard fdatasync(segments[segments.count - 1].fd) == 0 else {
                    throw .io(path: segments[segments.count - 1].path, detail: "fdatasync failed: \(errnoText())")
                }
            }
            guard unlink(oldest.path) == 0 || errno == ENOENT else {
                throw .io(path: oldest.path, detail: "cannot delete a compacted segment: \(errnoText())")
            }
            try Self.syncFolder(folder)
        }
        return offset - start
    }

    static func syncFolder(_ folder: String) throws(StoreError) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: folder, detail: "cannot open the folder to sync it: \(errnoText())") }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw .io(path: folder, detail: "fsync of the folder failed: \(errnoText())") }
    }
}

/// Bounds and tuning of the `log` backend.
public struct ObjectLogSettings: Sendable, Equatable {
    /// A segment is sealed and the next started once a commit would take it past this.
    public var segmentBytes: Int
    /// Compaction starts once at least this many bytes are dead (and more than are live).
    public var compactionMinimumBytes: Int
    /// Bytes of the oldest segment one compaction step walks (between two commit groups).
    public var compactionStepBytes: Int
    /// Cap on the log's size; past it writes fail with `StoreError.diskFull`, as on a full disk.
    public var maxBytes: Int?
    /// Zeros written ahead of the active segment's data at a time.
    public var preallocationBytes: Int

    public init(
        segmentBytes: Int = 64 << 20, compactionMinimumBytes: Int = 64 << 20, compactionStepBytes: Int = 1 << 20,
        maxBytes: Int? = nil, preallocationBytes: Int = 2 << 20
    ) {
        self.preallocationBytes = max(0, preallocationBytes)
        self.segmentBytes = max(4096, segmentBytes)
        self.compactionMinimumBytes = max(0, compactionMinimumBytes)
        self.compactionStepBytes = max(4096, compactionStepBytes)
        self.maxBytes = maxBytes
    }
}

/// The log's size, for status and tests.
public struct ObjectLogStatistics: Sendable, Equatable {
    public var segments: Int
    public var bytes: Int
    public var liveBytes: Int
    public var compactedSegments: Int
    public var compactedBytes: Int
}

/// One segment file. Its descriptor stays open while any key-directory entry (or a reader
/// holding one) refers to it, so a compacted, unlinked segment still reads.
final class LogSegment: @unchecked Sendable {
    let id: UInt64
    let path: String
    let fd: Int32
    /// Bytes of records: where the next one goes (writer thread; under the log's lock for others).
    var size: Int
    /// Bytes in the file: `size` plus the zeros written ahead of it.
    var allocated: Int
    /// Bytes of records the key directory points at.
    var liveBytes = 0

    static func path(folder: String, id: UInt64) -> String {
        let digits = String(id)
        return folder + "/" + String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".seg"
    }

    init(folder: String, id: UInt64, create: Bool) throws(StoreError) {
        self.id = id
        path = Self.path(folder: folder, id: id)
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0)
        fd = open(path, flags, 0o600)
        guard fd >= 0 else { throw .cannotOpen(path: path, detail: errnoText()) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let detail = errnoText()
            _ = Glibc.close(fd)
            throw .cannotOpen(path: path, detail: detail)
        }
        allocated = Int(info.st_size)
        size = create ? 0 : allocated  // replay finds where the records of an existing one end
    }

    deinit { _ = Glibc.close(fd) }
}

/// A decoded record. Replay and publication do not need the value: it is empty there.
struct LogRecord {
    enum Kind: UInt8 {
        case put = 1
        case delete = 2
        /// Starts a commit; its value is the commit's length in bytes (u32).
        case commit = 3
    }

    var kind: Kind
    var partition: Int
    var bucket: String
    var key: String
    var value: [UInt8]

    static let headerBytes = 8
    static let fixedBodyBytes = 13
    /// Larger lengths are damage, not records (values are capped far below).
    static let maxBodyBytes = 1 << 30

    enum Decoded {
        case record(LogRecord, length: Int)
        case bad(String)
    }

    /// Bytes of a commit record.
    static let commitRecordBytes = headerBytes + fixedBodyBytes + 4

    static func encode(
        kind: Kind, partition: Int, bucket: String, key: String, value: [UInt8], into buffer: inout [UInt8]
    ) {
        let start = buffer.count
        let bucketBytes = bucket.utf8.count
        let keyBytes = key.utf8.count
        let body = fixedBodyBytes + bucketBytes + keyBytes + value.count
        appendUInt32(0, to: &buffer)
        appendUInt32(UInt32(body), to: &buffer)
        buffer.append(kind.rawValue)
        appendUInt32(UInt32(truncatingIfNeeded: partition), to: &buffer)
        appendUInt32(UInt32(bucketBytes), to: &buffer)
        appendUInt32(UInt32(keyBytes), to: &buffer)
        buffer.append(contentsOf: bucket.utf8)
        buffer.append(contentsOf: key.utf8)
        buffer.append(contentsOf: value)
        let checksum = CRC32C.checksum(buffer[(start + headerBytes)...])
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: checksum.littleEndian, toByteOffset: start, as: UInt32.self)
        }
    }

    private static func appendUInt32(_ value: UInt32, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    /// The length of the record starting at `bytes.startIndex` from its header, or nil when the
    /// header is not plausible.
    static func length(header bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= headerBytes else { return nil }
        let body = Int(readUInt32(bytes, at: bytes.startIndex + 4))
        guard body >= fixedBodyBytes, body <= maxBodyBytes else { return nil }
        return headerBytes + body
    }

    /// Decodes the record at the start of `bytes` (which holds at least the whole record).
    static func decode(_ bytes: ArraySlice<UInt8>) -> Decoded {
        guard let length = length(header: bytes) else { return .bad("unreadable record header") }
        guard bytes.count >= length else { return .bad("record cut short") }
        let s = bytes.startIndex
        let bodyRange = (s + headerBytes)..<(s + length)
        guard CRC32C.checksum(bytes[bodyRange]) == readUInt32(bytes, at: s) else {
            return .bad("record checksum mismatch")
        }
        guard let kind = Kind(rawValue: bytes[s + 8]) else { return .bad("unknown record kind \(bytes[s + 8])") }
        let partition = Int(readUInt32(bytes, at: s + 9))
        let bucketBytes = Int(readUInt32(bytes, at: s + 13))
        let keyBytes = Int(readUInt32(bytes, at: s + 17))
        let bucketStart = s + headerBytes + fixedBodyBytes
        guard bucketBytes <= length, keyBytes <= length,
            bucketStart + bucketBytes + keyBytes <= s + length
        else { return .bad("record lengths do not add up") }
        let keyStart = bucketStart + bucketBytes
        let valueStart = keyStart + keyBytes
        let record = LogRecord(
            kind: kind, partition: partition,
            bucket: String(decoding: bytes[bucketStart..<keyStart], as: UTF8.self),
            key: String(decoding: bytes[keyStart..<valueStart], as: UTF8.self),
            value: Array(bytes[valueStart..<(s + length)]))
        if kind == .commit && (record.value.count != 4 || record.commitBytes < commitRecordBytes) {
            return .bad("malformed commit record")
        }
        return .record(record, length: length)
    }

    /// A commit record's stated commit length.
    var commitBytes: Int {
        guard value.count == 4 else { return 0 }
        return Int(value[0]) | Int(value[1]) << 8 | Int(value[2]) << 16 | Int(value[3]) << 24
    }

    private static func readUInt32(_ bytes: ArraySlice<UInt8>, at index: Int) -> UInt32 {
        UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
            | UInt32(bytes[index + 3]) << 24
    }
}

/// Sequential reads of a segment through a buffer (replay and compaction).
struct SegmentReader {
    let segment: LogSegment
    let chunkBytes: Int
    private var buffer: [UInt8] = []
    private var bufferStart = 0

    init(segment: LogSegment, chunkBytes: Int) {
        self.segment = segment
        self.chunkBytes = chunkBytes
    }

    /// The bytes `[offset, offset + count)` of the file, or fewer at its end.
    private mutating func bytes(at offset: Int, count: Int, fileSize: Int) -> ArraySlice<UInt8> {
        let end = min(offset + count, fileSize)
        if offset < bufferStart || end > bufferStart + buffer.count {
            let length = max(end - offset, min(chunkBytes, fileSize - offset))
            buffer = [UInt8](repeating: 0, count: length)
            let got = buffer.withUnsafeMutableBytes { pread(segment.fd, $0.baseAddress, length, off_t(offset)) }
            buffer.removeLast(length - max(0, got))
            bufferStart = offset
        }
        let from = offset - bufferStart
        return buffer[from..<min(buffer.count, from + (end - offset))]
    }

    mutating func isZero(from offset: Int, count: Int, fileSize: Int) -> Bool {
        let bytes = bytes(at: offset, count: count, fileSize: fileSize)
        return bytes.count == min(count, fileSize - offset) && bytes.allSatisfy { $0 == 0 }
    }

    /// The offset of the file's last non-zero byte (nil: all zeros), reading back from its end.
    func lastNonZeroByte(fileSize: Int) -> Int? {
        var end = fileSize
        var chunk = [UInt8](repeating: 0, count: 256 << 10)
        while end > 0 {
            let start = max(0, end - chunk.count)
            let length = end - start
            let got = chunk.withUnsafeMutableBytes { pread(segment.fd, $0.baseAddress, length, off_t(start)) }
            guard got == length else { return end - 1 }  // unreadable: assume data
            if let index = chunk[0..<length].lastIndex(where: { $0 != 0 }) { return start + index }
            end = start
        }
        return nil
    }

    mutating func record(at offset: Int, fileSize: Int) -> LogRecord.Decoded {
        let header = bytes(at: offset, count: LogRecord.headerBytes, fileSize: fileSize)
        guard let length = LogRecord.length(header: header) else {
            return .bad(header.count < LogRecord.headerBytes ? "record header cut short" : "unreadable record header")
        }
        guard offset + length <= fileSize else { return .bad("record cut short") }
        let whole = bytes(at: offset, count: length, fileSize: fileSize)
        return LogRecord.decode(Array(whole)[...])
    }
}

/// CRC-32C (Castagnoli), the checksum of iSCSI, ext4 metadata and LevelDB's log records.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
