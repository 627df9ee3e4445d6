/// One version of a key's value as stored: the bytes, or a tombstone, with the LWW
/// stamp of the write that produced it.
///
/// Tombstones are ordinary values inside the key's `DVVSet` (DESIGN §4): a delete is a
/// write with the reader's causal context, so it supersedes exactly what was read and
/// carries its own dot, and a write concurrent with the delete survives beside the
/// tombstone as a sibling. A tombstone's `data` is empty.
public struct StoredValue: Hashable, Sendable, CustomStringConvertible {
    public var data: [UInt8]
    public var isTombstone: Bool
    public var stamp: LWWStamp

    public init(data: [UInt8], isTombstone: Bool = false, stamp: LWWStamp) {
        self.data = data
        self.isTombstone = isTombstone
        self.stamp = stamp
    }

    /// A tombstone stamped `stamp`.
    public static func tombstone(stamp: LWWStamp) -> StoredValue {
        StoredValue(data: [], isTombstone: true, stamp: stamp)
    }

    public var description: String {
        isTombstone ? "tombstone@\(stamp)" : "\(data.count) bytes@\(stamp)"
    }

    /// The strict total order of `lww` buckets: greater stamp wins; the (never expected)
    /// tie of two different values under one stamp goes to the tombstone, then to the
    /// lexicographically greater bytes, so every replica picks the same winner.
    public static func lwwWins(_ a: StoredValue, over b: StoredValue) -> Bool {
        if a.stamp != b.stamp { return a.stamp > b.stamp }
        if a.isTombstone != b.isTombstone { return a.isTombstone }
        return a.data.lexicographicallyPrecedes(b.data) == false && a.data != b.data
    }
}
