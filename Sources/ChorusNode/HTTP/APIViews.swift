import ChorusCore

/// One member as `GET /v1/members` and `chorus members --format json` show it.
public struct MemberView: Codable, Sendable, Equatable {
    public var name: String
    public var id: String
    public var address: String
    public var status: String
    public var incarnation: UInt64
    public var tags: [String: String]
    /// Last direct probe round trip, for `--detailed`.
    public var rttMilliseconds: Double?
    /// False when only the TCP fallback probe reaches the member.
    public var udp: Bool?

    enum CodingKeys: String, CodingKey {
        case name, id, address, status, incarnation, tags
        case rttMilliseconds = "rtt_ms"
        case udp
    }
}

/// This node, as `GET /v1/status` and `chorus status` show it.
public struct StatusView: Codable, Sendable, Equatable {
    public struct Datagrams: Codable, Sendable, Equatable {
        public var `in`: UInt64
        public var out: UInt64
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public var dropped: [String: UInt64]

        enum CodingKeys: String, CodingKey {
            case `in`, out, dropped
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
        }
    }

    public struct TCP: Codable, Sendable, Equatable {
        public var requestsIn: UInt64
        public var requestsOut: UInt64
        public var requestFailures: UInt64
        public var dropped: [String: UInt64]

        enum CodingKeys: String, CodingKey {
            case requestsIn = "requests_in"
            case requestsOut = "requests_out"
            case requestFailures = "request_failures"
            case dropped
        }
    }

    public var name: String
    public var id: String
    public var address: String
    public var status: String
    public var incarnation: UInt64
    public var clusterName: String
    public var members: [String: Int]
    public var uptimeSeconds: Double
    public var localHealth: Int
    public var datagrams: Datagrams
    public var tcp: TCP
    public var keyringVersion: UInt64
    /// Anti-entropy's trees, exchanges and repairs (absent from older agents).
    public var antiEntropy: AntiEntropyView?
    /// This node's part in a ring change: joining, leaving, or fetching a removed
    /// node's partitions (absent from older agents).
    public var ring: RingChangeView?
    /// Whether the database takes writes (absent from older agents).
    public var storage: StorageView?

    enum CodingKeys: String, CodingKey {
        case name, id, address, status, incarnation, members, datagrams, tcp, ring, storage
        case antiEntropy = "anti_entropy"
        case clusterName = "cluster_name"
        case uptimeSeconds = "uptime_seconds"
        case localHealth = "local_health"
        case keyringVersion = "keyring_version"
    }
}

/// The database's state in `chorus status`: `ok`, `read-only (disk full)`, `read-only (I/O
/// error)` or `failed (database corrupt)` (`StoreHealth.summary`).
public struct StorageView: Codable, Sendable, Equatable {
    public var state: String
    public var writable: Bool
    /// SQLite's message for the failure that set the state; nil when `ok`.
    public var detail: String?
    public var path: String

    public init(state: String, writable: Bool, detail: String?, path: String) {
        self.state = state
        self.writable = writable
        self.detail = detail
        self.path = path
    }
}

/// One node's answer to a keyring operation.
public struct KeyOperationResult: Codable, Sendable, Equatable {
    public var node: String
    public var ok: Bool
    public var error: String?
    /// The node's keyring after the operation, as key ids would leak nothing but
    /// keys are what operators compare: base64, primary first.
    public var primary: String?
    public var keys: [String]

    init(node: String, reply: KeyOperationReply) {
        self.node = node
        self.ok = reply.error == nil
        self.error = reply.error
        self.primary = reply.keyring.primary
        self.keys = reply.keyring.keys
    }

    init(node: String, error: String) {
        self.node = node
        self.ok = false
        self.error = error
        self.primary = nil
        self.keys = []
    }
}

/// The partition placement, as `GET /v1/ring` and `chorus ring` show it.
public struct RingView: Codable, Sendable, Equatable {
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var id: String
        public var status: String
        /// Partitions this node is the first home replica of.
        public var primary: Int
        /// Partitions this node is one of the n home replicas of.
        public var replica: Int
    }

    public struct Key: Codable, Sendable, Equatable {
        public var bucket: String
        public var key: String
        public var partition: Int
        /// Home replicas, in preference order.
        public var replicas: [String]
        /// The rest of the ranking: where hinted writes go when home replicas are down.
        public var fallbacks: [String]
    }

    public var partitions: Int
    public var n: Int
    public var bucket: String
    public var nodes: [Node]
    public var key: Key?
}

/// What `chorus leave`, `chorus status` and GET /v1/leave show.
public struct RingChangeView: Codable, Sendable, Equatable {
    /// This node's place in the ring: `member`, `joining`, `leaving` or `left`.
    public var phase: String
    /// The latest data transfer: `joining` (fetching its partitions), `leaving`
    /// (streaming them to their next owners) or `rebalancing` (fetching partitions
    /// of a removed member); empty when none ran.
    public var transfer: String
    /// `idle`, `settling` (waiting for every member to see the change),
    /// `streaming`, `handing off hints`, `done` or `failed`.
    public var state: String
    public var partitionsDone: Int
    public var partitionsTotal: Int
    public var objects: Int
    public var bytes: Int
    public var seconds: Double
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case phase, transfer, state, objects, bytes, seconds, error
        case partitionsDone = "partitions_done"
        case partitionsTotal = "partitions_total"
    }

    static let idle = RingChangeView(
        phase: "member", transfer: "", state: "idle", partitionsDone: 0, partitionsTotal: 0, objects: 0, bytes: 0,
        seconds: 0)
}
