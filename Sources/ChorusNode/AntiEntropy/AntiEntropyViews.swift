/// Anti-entropy's figures in `GET /v1/status` (`chorus status`).
public struct AntiEntropyView: Codable, Sendable, Equatable {
    /// Partitions with a tree (this node stores keys of them).
    public var trees: Int
    /// Trees and keys found by the start-up rebuild, and how long it took.
    public var treesRebuilt: Int
    public var keysIndexed: Int
    public var rebuildSeconds: Double
    /// Exchanges this node initiated that completed (equal or repaired), ended equal, failed.
    public var exchanges: UInt64
    public var exchangesEqual: UInt64
    /// Exchanges that found differing segments and finished their repair.
    public var exchangesRepaired: UInt64
    public var exchangesFailed: UInt64
    /// Summary datagrams answered for peers' exchanges, and undecodable ones dropped.
    public var answered: UInt64
    public var malformed: UInt64
    public var keysRepaired: UInt64
    public var udpBytes: UInt64
    public var tcpBytes: UInt64
    /// Tombstones this node physically removed (DESIGN §4).
    public var tombstonesReaped: UInt64
    /// Exchanges queued or running to catch up with co-replicas that returned
    /// (`ReturnWatch`).
    public var catchUpPending: Int
    /// Partitions exchanged at least once since start, of those this node replicates.
    public var partitionsExchanged: Int
    public var partitionsReplicated: Int
    /// Age of the stalest and of the latest last exchange over those partitions.
    public var oldestExchangeAgeSeconds: Double?
    public var newestExchangeAgeSeconds: Double?
    /// The last exchange of each partition, keyed by partition number (JSON only:
    /// `chorus status --format json`).
    public var lastExchanges: [String: PartitionExchange]?

    public struct PartitionExchange: Codable, Sendable, Equatable {
        /// Wall clock of the exchange, nanoseconds since the Unix epoch.
        public var at: UInt64
        public var peer: String
        /// Segments that differed (0: equal trees).
        public var segments: Int
        public var keysRepaired: Int

        enum CodingKeys: String, CodingKey {
            case at, peer, segments
            case keysRepaired = "keys_repaired"
        }
    }

    enum CodingKeys: String, CodingKey {
        case trees, exchanges, answered, malformed
        case treesRebuilt = "trees_rebuilt"
        case keysIndexed = "keys_indexed"
        case rebuildSeconds = "rebuild_seconds"
        case exchangesEqual = "exchanges_equal"
        case exchangesRepaired = "exchanges_repaired"
        case exchangesFailed = "exchanges_failed"
        case tombstonesReaped = "tombstones_reaped"
        case catchUpPending = "catch_up_pending"
        case keysRepaired = "keys_repaired"
        case udpBytes = "udp_bytes"
        case tcpBytes = "tcp_bytes"
        case partitionsExchanged = "partitions_exchanged"
        case partitionsReplicated = "partitions_replicated"
        case oldestExchangeAgeSeconds = "oldest_exchange_age_seconds"
        case newestExchangeAgeSeconds = "newest_exchange_age_seconds"
        case lastExchanges = "last_exchanges"
    }
}

/// A full anti-entropy round (`POST /v1/repair`, `chorus repair`): progress while it
/// runs, what it repaired once `running` is false.
public struct RepairView: Codable, Sendable, Equatable {
    public struct Exchange: Codable, Sendable, Equatable {
        public var partition: Int
        public var peer: String
        public var segments: Int
        public var keysRepaired: Int
        public var udpBytes: Int
        public var tcpBytes: Int
        public var error: String?

        enum CodingKeys: String, CodingKey {
            case partition, peer, segments, error
            case keysRepaired = "keys_repaired"
            case udpBytes = "udp_bytes"
            case tcpBytes = "tcp_bytes"
        }
    }

    public var round: UInt64
    public var running: Bool
    /// (partition, co-replica) exchanges of the round, and those done.
    public var exchangesTotal: Int
    public var exchangesDone: Int
    /// Partitions compared with at least one co-replica.
    public var partitions: Int
    /// Partitions with no live co-replica to compare with.
    public var skippedPartitions: [Int]
    public var keysRepaired: Int
    public var udpBytes: Int
    public var tcpBytes: Int
    /// Exchanges that failed (after one retry).
    public var failed: Int
    public var seconds: Double
    /// Exchanges that repaired something or failed.
    public var repairs: [Exchange]

    enum CodingKeys: String, CodingKey {
        case round, running, partitions, failed, seconds, repairs
        case exchangesTotal = "exchanges_total"
        case exchangesDone = "exchanges_done"
        case skippedPartitions = "skipped_partitions"
        case keysRepaired = "keys_repaired"
        case udpBytes = "udp_bytes"
        case tcpBytes = "tcp_bytes"
    }
}
