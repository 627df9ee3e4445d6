/// The fixed shape of a `TictacTree` (DESIGN §6): how many leaf segments it has and how
/// many nodes each level holds. Two trees can be compared or merged only if their shapes
/// are equal, so the shape travels in the first message of every exchange.
///
/// Levels are numbered from the top: level 0 is the root, the last level holds the
/// segments. Each level has at most `fanout` (32) times the nodes of the one above, so
/// the top level has at most 32 hashes and every inner node at most 32 children: one
/// node's children are 32 × 8 = 256 bytes, and a level's worth of them fits a
/// ~1,200-byte datagram with room to spare (Riak's kv_index_tictactree uses the same
/// two-level idea, with wider levels, for its TCP-based exchanges).
///
/// The default 1,024 segments give the classic 2-level tree: 32 branches of 32 leaves.
/// Other powers of two fill the levels from the top: 4,096 segments are 32 × 32 × 4,
/// 64 are 32 × 2, 16 are a single level of 16 leaves under the root.
public struct TictacShape: Hashable, Sendable, CustomStringConvertible {
    /// The most children of one node, and the most nodes of the top level.
    public static let fanout = 32
    /// Smallest and largest segment counts. The bound keeps a set of segments
    /// expressible as a bitmap of at most 1,024 bytes in one datagram.
    public static let minSegmentCount = 2
    public static let maxSegmentCount = 8192
    public static let defaultSegmentCount = 1024

    public let segmentCount: Int
    /// Nodes per level, root (1) first, segments (`segmentCount`) last.
    public let levelWidths: [Int]

    /// A shape of `segmentCount` leaves; `nil` unless it is a power of two between
    /// `minSegmentCount` and `maxSegmentCount`.
    public init?(segmentCount: Int) {
        guard segmentCount >= Self.minSegmentCount, segmentCount <= Self.maxSegmentCount,
            segmentCount & (segmentCount - 1) == 0
        else { return nil }
        self.segmentCount = segmentCount
        var widths = [1]
        while widths[widths.count - 1] < segmentCount {
            widths.append(min(widths[widths.count - 1] * Self.fanout, segmentCount))
        }
        self.levelWidths = widths
    }

    /// 1,024 segments: 32 branches of 32 leaves.
    public static let standard = TictacShape(segmentCount: defaultSegmentCount)!

    /// Number of levels, the root's included.
    public var levelCount: Int { levelWidths.count }

    /// The level of the segments (the last one).
    public var leafLevel: Int { levelWidths.count - 1 }

    /// The level below the root: what an exchange sends first.
    public var topLevel: Int { 1 }

    /// Children of each node of `level` (which must be above the leaf level).
    public func childrenPerNode(atLevel level: Int) -> Int {
        levelWidths[level + 1] / levelWidths[level]
    }

    /// `level` is an inner level (not the leaves) and `index` a node of it.
    public func isInnerNode(level: Int, index: Int) -> Bool {
        level >= 0 && level < leafLevel && index >= 0 && index < levelWidths[level]
    }

    public var description: String {
        "TictacShape(\(levelWidths.dropFirst().map(String.init).joined(separator: "→")))"
    }
}
