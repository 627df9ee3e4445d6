/// How a bucket stores its keys (DESIGN §4). Every member must agree on these;
/// the agent compares a digest of them at join.
public struct BucketProperties: Hashable, Sendable {
    /// How concurrent writes are kept.
    public enum Conflicts: String, Hashable, Sendable, CaseIterable {
        /// Concurrent writes become siblings, returned together (Riak's allow_mult).
        case siblings
        /// The write with the newest hybrid-logical-clock stamp wins.
        case lww
    }

    /// Replication factor (Dynamo's N; Riak and Cassandra default: 3).
    public var n: Int
    public var conflicts: Conflicts
    /// Default read and write quorums when a request names none.
    public var r: Quorum
    public var w: Quorum
    /// Whether writes may count hinted (fallback) replicas toward w (Dynamo §4.6).
    public var sloppy: Bool

    public init(
        n: Int = 3, conflicts: Conflicts = .siblings, r: Quorum = .quorum, w: Quorum = .quorum, sloppy: Bool = true
    ) {
        self.n = n
        self.conflicts = conflicts
        self.r = r
        self.w = w
        self.sloppy = sloppy
    }

    /// The bucket every cluster has without configuration.
    public static let defaultBucketName = "default"

    /// A stable text form, for the cross-member agreement digest.
    public var canonical: String {
        "n=\(n),conflicts=\(conflicts.rawValue),r=\(r),w=\(w),sloppy=\(sloppy)"
    }
}

/// Every bucket's properties, and the default for buckets not named in config.
public struct BucketTable: Hashable, Sendable {
    public var buckets: [String: BucketProperties]
    /// Properties of any bucket not listed (those of `default`).
    public var fallback: BucketProperties

    public init(buckets: [String: BucketProperties] = [:]) {
        var buckets = buckets
        if buckets[BucketProperties.defaultBucketName] == nil {
            buckets[BucketProperties.defaultBucketName] = BucketProperties()
        }
        self.buckets = buckets
        self.fallback = buckets[BucketProperties.defaultBucketName]!
    }

    public func properties(of bucket: String) -> BucketProperties {
        buckets[bucket] ?? fallback
    }

    /// Digest of every bucket's properties: equal on members that agree.
    public var digest: UInt64 {
        let text = buckets.keys.sorted().map { "\($0):\(buckets[$0]!.canonical)" }.joined(separator: ";")
        return StableHash.hash(Array(text.utf8))
    }

    /// The largest n of any bucket (placement keeps that many home replicas ready).
    public var maxReplication: Int { buckets.values.map(\.n).max() ?? fallback.n }
}
