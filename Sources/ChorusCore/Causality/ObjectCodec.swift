/// The binary form of a `StoredObject`, for storage and for replica-to-replica
/// messages (DESIGN §4). Big-endian, on the membership codec's `Writer`/`Reader`:
///
///     version(u8 = 1)
///     entryCount(u16), then per entry: nodeID(16) counter(u64) valueCount(u16) value*
///     anonymousCount(u16) value*
///     value: flags(u8: bit 0 = tombstone) wallNanos(u64) logical(u32) node(16)
///            dataLength(u32) data
///
/// Decoding is hostile-input safe: truncated, trailing, out-of-order, over-long or
/// otherwise invalid input throws `WireError` and never traps; no allocation is sized
/// from a count before the bytes it announces are known to be present.
public enum ObjectCodec {
    public static let version: UInt8 = 1
    /// Most replica entries an object may carry.
    public static let maxEntries = 1024
    /// Most values (siblings, tombstones included) an object may carry. The shell's
    /// sibling cap (DESIGN §4, refusal at 100) is far below it.
    public static let maxValues = 4096
    /// Default bound on one value's bytes when decoding (the shell's configurable value
    /// limit defaults to 1 MiB).
    public static let defaultMaxValueBytes = 64 << 20

    static let tombstoneFlag: UInt8 = 1
    /// Smallest encoded value: flags, timestamp, node, data length.
    static let minValueSize = 1 + 8 + 4 + 16 + 4
    /// Smallest encoded entry: node, counter, value count.
    static let minEntrySize = 16 + 8 + 2

    /// Encodes `object`. Objects beyond the format's bounds (more than `maxEntries`
    /// entries, more than `UInt16.max` values in one list, a value over 4 GiB) cannot
    /// come from the store's own operations; they are encoded clamped and then fail
    /// to decode rather than decode to something else.
    public static func encode(_ object: StoredObject) -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.u8(version)
        writer.u16(UInt16(clamping: object.entries.count))
        for entry in object.entries.prefix(Int(UInt16.max)) {
            writer.nodeID(entry.replica)
            writer.u64(entry.counter)
            writer.u16(UInt16(clamping: entry.values.count))
            for value in entry.values.prefix(Int(UInt16.max)) {
                writer.storedValue(value)
            }
        }
        writer.u16(UInt16(clamping: object.anonymous.count))
        for value in object.anonymous.prefix(Int(UInt16.max)) {
            writer.storedValue(value)
        }
        return writer.bytes
    }

    /// Decodes bytes produced by `encode`, refusing any value longer than
    /// `maxValueBytes`. Throws `WireError`; never traps.
    public static func decode(
        _ bytes: [UInt8], maxValueBytes: Int = defaultMaxValueBytes
    ) throws(WireError) -> StoredObject {
        var reader = SWIMCodec.Reader(bytes)
        let version = try reader.u8()
        guard version == Self.version else { throw .invalidValue("object format version \(version)") }
        let entryCount = Int(try reader.u16())
        guard entryCount <= maxEntries else { throw .tooLarge }
        guard entryCount * minEntrySize <= reader.remaining else { throw .truncated }
        var entries: [StoredObject.Entry] = []
        entries.reserveCapacity(entryCount)
        var totalValues = 0
        for _ in 0..<entryCount {
            let replica = try reader.nodeID()
            let counter = try reader.u64()
            if let previous = entries.last, !(previous.replica < replica) {
                throw .invalidValue("object entries out of order")
            }
            guard counter > 0 else { throw .invalidValue("zero counter") }
            let valueCount = Int(try reader.u16())
            guard UInt64(valueCount) <= counter else { throw .invalidValue("more values than events") }
            totalValues += valueCount
            guard totalValues <= maxValues else { throw .tooLarge }
            let values = try reader.storedValues(count: valueCount, maxValueBytes: maxValueBytes)
            entries.append(StoredObject.entry(replica, counter: counter, values: values))
        }
        let anonymousCount = Int(try reader.u16())
        guard totalValues + anonymousCount <= maxValues else { throw .tooLarge }
        let anonymous = try reader.storedValues(count: anonymousCount, maxValueBytes: maxValueBytes)
        try reader.expectEnd()
        guard Set(anonymous).count == anonymous.count else { throw .invalidValue("duplicate anonymous values") }
        guard let object = StoredObject(entries: entries, anonymous: anonymous) else {
            throw .invalidValue("invalid object")
        }
        return object
    }
}

extension SWIMCodec.Writer {
    fileprivate mutating func storedValue(_ value: StoredValue) {
        u8(value.isTombstone ? ObjectCodec.tombstoneFlag : 0)
        u64(value.stamp.timestamp.wallNanos)
        u32(value.stamp.timestamp.logical)
        nodeID(value.stamp.node)
        blob(value.data)
    }
}

extension SWIMCodec.Reader {
    fileprivate mutating func storedValues(count: Int, maxValueBytes: Int) throws(WireError) -> [StoredValue] {
        guard count * ObjectCodec.minValueSize <= remaining else { throw .truncated }
        var values: [StoredValue] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            values.append(try storedValue(maxValueBytes: maxValueBytes))
        }
        return values
    }

    fileprivate mutating func storedValue(maxValueBytes: Int) throws(WireError) -> StoredValue {
        let flags = try u8()
        guard flags & ~ObjectCodec.tombstoneFlag == 0 else { throw .invalidValue("value flags \(flags)") }
        let wall = try u64()
        let logical = try u32()
        let node = try nodeID()
        let data = try blob(maxBytes: maxValueBytes)
        let isTombstone = flags & ObjectCodec.tombstoneFlag != 0
        guard !isTombstone || data.isEmpty else { throw .invalidValue("tombstone with data") }
        return StoredValue(
            data: data, isTombstone: isTombstone,
            stamp: LWWStamp(timestamp: HLCTimestamp(wallNanos: wall, logical: logical), node: node))
    }
}
