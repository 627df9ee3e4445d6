/// A tictac tree (DESIGN §6), after Riak's `kv_index_tictactree` (Martin Sweeney's
/// "TicTac AAE"): a Merkle tree of fixed shape whose leaves ("segments") hold the XOR of
/// `elementHash(bucket, key, versionDigest)` over the keys that fall in them, and whose
/// inner nodes hold the XOR of their children.
///
/// Because XOR is its own inverse and order-free:
/// - a write costs O(depth): XOR the old element hash out and the new one in along the
///   path from its segment to the root, with no rescan of the segment's keys;
/// - the tree depends only on the set of (key, digest) pairs, not on insertion order;
/// - trees of the same shape over disjoint key sets merge by XOR (`merge`).
///
/// A classic Merkle tree over sorted keys has none of these properties; the price is
/// that an element inserted twice cancels out, so callers insert each key's current
/// digest exactly once and use `update`/`remove` for every later change.
///
/// One tree per partition a node replicates; it is a value (about 8.5 KB for the
/// default shape), so an exchange can keep a snapshot.
public struct TictacTree: Hashable, Sendable {
    public let shape: TictacShape
    /// `levels[0]` is `[root]`, `levels[shape.leafLevel]` the segments.
    private var levels: [[UInt64]]

    /// An empty tree (every hash zero) of `shape`.
    public init(shape: TictacShape = .standard) {
        self.shape = shape
        self.levels = shape.levelWidths.map { Array(repeating: 0, count: $0) }
    }

    /// An empty tree of `segmentCount` segments, which must be a valid shape (a power of
    /// two in `TictacShape.minSegmentCount...TictacShape.maxSegmentCount`).
    public init(segmentCount: Int) {
        guard let shape = TictacShape(segmentCount: segmentCount) else {
            preconditionFailure("invalid tictac segment count \(segmentCount)")
        }
        self.init(shape: shape)
    }

    // MARK: - Hashing

    /// Seeds that separate the tree's hashes from placement's (`Partitioner` uses the
    /// same bytes unseeded: without a seed every key of a partition would share the
    /// low bits that pick the segment). Append only: the numbers are the protocol.
    static let segmentSeed: UInt64 = 0x7469_6374_6163_5345  // "tictacSE"
    static let elementSeed: UInt64 = 0x7469_6374_6163_454C  // "tictacEL"

    /// The segment of `key` in `bucket` under `shape`: the top bits of a seeded stable
    /// hash of the key (independent of its partition).
    public static func segment(bucket: String, key: String, shape: TictacShape) -> Int {
        let hash = StableHash.hash(keyBytes(bucket: bucket, key: key), seed: segmentSeed)
        let bits = shape.segmentCount.trailingZeroBitCount
        return Int(truncatingIfNeeded: hash >> UInt64(64 - bits))
    }

    /// The segment of `key` in `bucket` in this tree.
    public func segment(of bucket: String, _ key: String) -> Int {
        Self.segment(bucket: bucket, key: key, shape: shape)
    }

    /// What one key at one version contributes to its segment.
    public static func elementHash(bucket: String, key: String, digest: UInt64) -> UInt64 {
        var bytes = keyBytes(bucket: bucket, key: key)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: digest >> UInt64(shift)))
        }
        return StableHash.hash(bytes, seed: elementSeed)
    }

    /// The bucket's length (u32, big-endian), the bucket, the key: as `Partitioner`
    /// frames them, so ("ab", "c") and ("a", "bc") differ.
    static func keyBytes(bucket: String, key: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(bucket.utf8.count + key.utf8.count + 12)
        let length = UInt32(truncatingIfNeeded: bucket.utf8.count)
        bytes.append(contentsOf: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> UInt32($0)) })
        bytes.append(contentsOf: bucket.utf8)
        bytes.append(contentsOf: key.utf8)
        return bytes
    }

    // MARK: - Updates, O(depth)

    /// Adds `key` at version `digest` (a key not in the tree yet).
    public mutating func insert(bucket: String, key: String, digest: UInt64) {
        toggle(segment: segment(of: bucket, key), hash: Self.elementHash(bucket: bucket, key: key, digest: digest))
    }

    /// Moves `key` from version `oldDigest` to `newDigest`.
    public mutating func update(bucket: String, key: String, oldDigest: UInt64, newDigest: UInt64) {
        guard oldDigest != newDigest else { return }
        let hash =
            Self.elementHash(bucket: bucket, key: key, digest: oldDigest)
            ^ Self.elementHash(bucket: bucket, key: key, digest: newDigest)
        toggle(segment: segment(of: bucket, key), hash: hash)
    }

    /// Adds or moves `key`: `update` when `oldDigest` is known, `insert` otherwise.
    public mutating func update(bucket: String, key: String, oldDigest: UInt64?, newDigest: UInt64) {
        if let oldDigest {
            update(bucket: bucket, key: key, oldDigest: oldDigest, newDigest: newDigest)
        } else {
            insert(bucket: bucket, key: key, digest: newDigest)
        }
    }

    /// Removes `key`, which is in the tree at version `digest` (a reaped tombstone).
    public mutating func remove(bucket: String, key: String, digest: UInt64) {
        // XOR is its own inverse: removing is inserting again.
        insert(bucket: bucket, key: key, digest: digest)
    }

    /// XORs `hash` into `segment` and every node above it.
    mutating func toggle(segment: Int, hash: UInt64) {
        var index = segment
        for level in stride(from: shape.leafLevel, through: 0, by: -1) {
            levels[level][index] ^= hash
            if level > 0 { index /= shape.childrenPerNode(atLevel: level - 1) }
        }
    }

    // MARK: - Reading

    /// The XOR of every element: equal roots mean (with overwhelming probability) equal
    /// key/version sets.
    public var root: UInt64 { levels[0][0] }

    /// Every hash of `level` (0 is `[root]`, `shape.leafLevel` the segments).
    public func level(_ level: Int) -> [UInt64] {
        levels[level]
    }

    /// The level below the root: what an exchange sends first.
    public var topLevel: [UInt64] { levels[shape.topLevel] }

    /// The segment hashes.
    public var segments: [UInt64] { levels[shape.leafLevel] }

    /// The hashes of the children of node `index` of `level` (an inner level).
    public func children(level: Int, index: Int) -> [UInt64] {
        let count = shape.childrenPerNode(atLevel: level)
        return Array(levels[level + 1][index * count..<(index + 1) * count])
    }

    /// The children of top-level node `index` (for the default shape: its 32 segments).
    public func branch(_ index: Int) -> [UInt64] {
        children(level: shape.topLevel, index: index)
    }

    // MARK: - Comparing and merging

    /// The segments whose hashes differ from `other`'s (same shape), ascending, found by
    /// descending only into differing nodes. An empty answer means equal trees.
    public func differingSegments(comparedWith other: TictacTree) -> [Int] {
        precondition(shape == other.shape, "comparing tictac trees of different shapes")
        var frontier = [0]
        for level in 0..<shape.leafLevel {
            let count = shape.childrenPerNode(atLevel: level)
            var next: [Int] = []
            for index in frontier where levels[level][index] != other.levels[level][index] {
                for child in index * count..<(index + 1) * count
                where levels[level + 1][child] != other.levels[level + 1][child] {
                    next.append(child)
                }
            }
            frontier = next
        }
        return frontier
    }

    /// XORs `other` (same shape) into this tree: the tree of the union of two disjoint
    /// key sets, as Riak merges the trees of sub-ranges.
    public mutating func merge(_ other: TictacTree) {
        precondition(shape == other.shape, "merging tictac trees of different shapes")
        for level in levels.indices {
            for index in levels[level].indices {
                levels[level][index] ^= other.levels[level][index]
            }
        }
    }

    /// `merge` into a copy.
    public func merged(with other: TictacTree) -> TictacTree {
        var copy = self
        copy.merge(other)
        return copy
    }
}

extension TictacTree: CustomStringConvertible {
    public var description: String {
        let hex = String(root, radix: 16)
        return "TictacTree(\(shape.segmentCount) segments, root \(String(repeating: "0", count: 16 - hex.count))\(hex))"
    }
}
