/// Requests and replies on the encrypted TCP channel between agents: push-pull
/// state sync (memberlist's pushPull), the TCP fallback probe, and cluster-wide
/// keyring operations (like serf's `keys`).
public enum ClusterMessage: Hashable, Sendable {
    /// Full-state exchange; `joining` when the sender is joining through us, so we
    /// may refuse it (duplicate name). The sender's keyring rides along so the newer
    /// keyring reaches a node that missed a rotation.
    case pushPull(joining: Bool, state: [MemberUpdate], keyring: KeyringSnapshot, parameters: ClusterParameters)
    case pushPullReply(state: [MemberUpdate], keyring: KeyringSnapshot, parameters: ClusterParameters)
    case refused(reason: String)
    /// TCP fallback probe for a member UDP cannot reach.
    case ping(target: NodeID)
    case pong
    case keyOperation(KeyOperation)
    case keyOperationReply(KeyOperationReply)
    /// Store this object (merged with what the replica holds); answered by
    /// `replicaWriteReply` once durable.
    case replicaWrite(ReplicaWrite)
    /// Nil on success.
    case replicaWriteReply(error: String?)
    /// What does this replica store for the key?
    case replicaRead(bucket: String, key: String)
    /// `ObjectCodec` bytes, nil when the replica holds nothing; or an error.
    case replicaReadReply(object: [UInt8]?, error: String?)
    /// Coordinate this client request (sent to a home replica of the key).
    case forward(KVRequest)
    case forwardReply(KVResponse)
    /// Bulk repair (DESIGN §6): which keys, at which version digests, does this
    /// replica store in `segments` (of a `segmentCount`-segment tictac tree) of
    /// `partition`? A segment count of 0 with no segments asks for the whole partition.
    case repairKeys(partition: Int, segmentCount: Int, segments: [Int])
    /// The keys asked for, sorted by bucket then key; or an error.
    case repairKeysReply(entries: [RepairEntry], error: String?)
    /// Tombstone reaping (DESIGN §4, §6): sent by the key's primary once every home
    /// replica holds its tombstone. Physically delete the key if the stored object's
    /// `VersionDigest` still equals `digest` (a write that raced in keeps it).
    case reapTombstone(bucket: String, key: String, digest: UInt64)
    /// Whether the replica deleted its copy (false: it held another version, or
    /// nothing); or an error.
    case reapTombstoneReply(reaped: Bool, error: String?)
    /// Ring handoff (DESIGN §9): at most `limit` of the objects this replica stores in
    /// `partition`, in (bucket, key) order after `after`; a joining node or a new
    /// owner pulls its partitions page by page.
    case partitionPage(partition: Int, after: RepairKey?, limit: Int)
    /// The objects, in order; `complete` when none follow them; or an error.
    case partitionPageReply(entries: [PartitionEntry], complete: Bool, error: String?)
}

/// One stored object as ring handoff moves it.
public struct PartitionEntry: Hashable, Sendable {
    public var bucket: String
    public var key: String
    /// `ObjectCodec` bytes.
    public var object: [UInt8]

    public init(bucket: String, key: String, object: [UInt8]) {
        self.bucket = bucket
        self.key = key
        self.object = object
    }
}

/// One stored key and its `VersionDigest`, as bulk repair lists them.
public struct RepairEntry: Hashable, Sendable {
    public var bucket: String
    public var key: String
    public var digest: UInt64

    public init(bucket: String, key: String, digest: UInt64) {
        self.bucket = bucket
        self.key = key
        self.digest = digest
    }

    public var repairKey: RepairKey { RepairKey(bucket: bucket, key: key) }
}

/// What every member of one cluster must agree on, compared at each push-pull.
public struct ClusterParameters: Hashable, Sendable {
    /// Partition count Q (fixed at cluster creation): a node with another is refused.
    public var partitions: UInt32
    /// `BucketTable.digest`: members with other bucket settings are logged.
    public var bucketsDigest: UInt64

    public init(partitions: UInt32, bucketsDigest: UInt64) {
        self.partitions = partitions
        self.bucketsDigest = bucketsDigest
    }
}

/// A keyring as exchanged between members: base64 keys, primary first.
public struct KeyringSnapshot: Hashable, Sendable {
    /// Larger is newer; set by the coordinator of the operation that made it.
    public var version: UInt64
    public var primary: String
    public var keys: [String]

    public init(version: UInt64, primary: String, keys: [String]) {
        self.version = version
        self.primary = primary
        self.keys = keys
    }
}

public struct KeyOperation: Hashable, Sendable {
    /// Wire values: append only, the numbers are the protocol.
    public enum Kind: UInt8, Hashable, Sendable, CaseIterable {
        case list = 0
        case install = 1
        case use = 2
        case remove = 3

        public var name: String {
            switch self {
            case .list: "list"
            case .install: "install"
            case .use: "use"
            case .remove: "remove"
            }
        }
    }

    public var kind: Kind
    /// Base64 key; empty for `list`.
    public var key: String
    /// Version the resulting keyring takes; ignored for `list`.
    public var version: UInt64

    public init(kind: Kind, key: String, version: UInt64) {
        self.kind = kind
        self.key = key
        self.version = version
    }
}

public struct KeyOperationReply: Hashable, Sendable {
    /// Nil on success.
    public var error: String?
    public var keyring: KeyringSnapshot

    public init(error: String?, keyring: KeyringSnapshot) {
        self.error = error
        self.keyring = keyring
    }
}
