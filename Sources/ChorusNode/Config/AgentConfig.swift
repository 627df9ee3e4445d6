import ChorusCore
import ChorusStorage
import Foundation

/// Everything `chorus agent` runs with, after the file, the environment and the
/// flags have been merged and checked (see `ConfigLoader`).
public struct AgentConfig: Sendable {
    public var name: String
    public var dataDir: String
    public var clusterName: String
    /// Gossip address this agent binds: UDP for SWIM, TCP on the same port.
    public var bind: Endpoint
    /// Gossip address other members use to reach this agent.
    public var advertise: Endpoint
    public var httpAddr: Endpoint
    /// Bearer token the HTTP API requires; required when `httpAddr` is not loopback.
    public var httpToken: String?
    public var join: [Endpoint]
    /// Base64 key that seeds the keyring file when the data dir has none yet.
    public var encryptKey: String?
    public var logLevel: String
    public var tags: [String: String]
    public var swim: SWIMSettings
    /// Full-state TCP sync with a random member (memberlist LAN: 30 s).
    public var pushPullInterval: Duration
    /// How often to try to reach a dead or stopped member again (serf reconnect_interval: 30 s).
    public var reconnectInterval: Duration
    /// Longest wait between attempts to join through the seeds (serf retry_interval grows to this).
    public var joinRetryMax: Duration
    /// Threads of the event loops that serve the HTTP API and the agent-to-agent
    /// sessions (membership has a thread of its own). Default: one per core.
    public var eventLoopThreads: Int
    public var store: StoreSettings

    public init(
        name: String, dataDir: String, clusterName: String = "chorus", bind: Endpoint, advertise: Endpoint,
        httpAddr: Endpoint, httpToken: String? = nil, join: [Endpoint] = [], encryptKey: String? = nil,
        logLevel: String = "info", tags: [String: String] = [:], swim: SWIMSettings = SWIMSettings(),
        pushPullInterval: Duration = .seconds(30), reconnectInterval: Duration = .seconds(30),
        joinRetryMax: Duration = .seconds(30), eventLoopThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
        store: StoreSettings = StoreSettings()
    ) {
        self.eventLoopThreads = eventLoopThreads
        self.name = name
        self.dataDir = dataDir
        self.clusterName = clusterName
        self.bind = bind
        self.advertise = advertise
        self.httpAddr = httpAddr
        self.httpToken = httpToken
        self.join = join
        self.encryptKey = encryptKey
        self.logLevel = logLevel
        self.tags = tags
        self.swim = swim
        self.pushPullInterval = pushPullInterval
        self.reconnectInterval = reconnectInterval
        self.joinRetryMax = joinRetryMax
        self.store = store
    }
}

/// The key-value store's settings (`[store]` and `[buckets.NAME]` in chorus.toml).
public struct StoreSettings: Sendable {
    /// `store.read_targets`.
    public enum ReadTargets: String, Sendable, Equatable {
        case quorum
        case all
    }

    public enum Sync: Sendable, Equatable {
        /// Every commit group is fsynced before its writes are acknowledged.
        case batch
        /// Commits reach the OS at once (they survive `kill -9`) and are fsynced
        /// every interval (a power loss may lose that much).
        case periodic(Duration)
    }

    /// Partition count Q: fixed at cluster creation, checked at join.
    public var partitions: Int
    public var sync: Sync
    /// `store.backend`: where this node keeps its objects. Each node chooses for itself
    /// (replicas exchange objects, not files); an existing data dir moves from `sqlite`
    /// to `log` at its next start, not back.
    public var backend: ObjectBackend
    /// `store.commit_delay`: group commit delay while the store is busy (`StoreLimits.commitDelay`).
    public var commitDelay: Duration
    /// Largest value a client may write (larger: 413).
    public var maxValueBytes: Int
    /// Default client request timeout (a request may ask for another).
    public var requestTimeout: Duration
    /// How long a coordinator waits for one replica before it writes to a
    /// fallback node instead (Dynamo §4.6).
    public var replicaTimeout: Duration
    /// Whom a read asks first: as many replicas as its quorum needs, this node's own
    /// copy first (Cassandra), or every home replica (Riak: read repair on every read).
    public var readTargets: ReadTargets
    /// A read whose quorum is still short after this long asks one more replica
    /// (speculative retry), and again each delay after.
    public var readSpeculationDelay: Duration
    /// Keep hints for down replicas and hand them off when they return.
    public var hintedHandoff: Bool
    /// Hints older than this are dropped (anti-entropy repairs those keys);
    /// Cassandra's max_hint_window: 3 h.
    public var maxHintWindow: Duration
    /// Bound on the hints one node holds; past it new hints are refused, which
    /// sends the write to the next fallback, never fails it by itself.
    public var maxHintBytes: Int
    /// Hints handed off per second, at most (keeps a returning node responsive).
    public var handoffRate: Int
    /// Time between anti-entropy rounds: each starts `antiEntropyConcurrency`
    /// exchanges, one partition each (DESIGN §6).
    public var antiEntropyInterval: Duration
    /// Exchanges started per anti-entropy round.
    public var antiEntropyConcurrency: Int
    /// Objects bulk repair moves per second, at most.
    public var repairRate: Int
    /// A tombstone is reaped (physically removed) no sooner than this after the
    /// delete, and only once every home replica holds it (DESIGN §4): long enough
    /// for a down replica to return and for hints and anti-entropy to deliver the
    /// delete. 1 h (Cassandra's gc_grace_seconds: 10 days; Riak's delete_mode: 3 s).
    public var tombstoneGrace: Duration
    public var buckets: BucketTable

    public init(
        partitions: Int = Partitioner.defaultPartitionCount, sync: Sync = .batch, backend: ObjectBackend = .log,
        commitDelay: Duration = .microseconds(500), maxValueBytes: Int = 1 << 20,
        requestTimeout: Duration = .seconds(5), replicaTimeout: Duration = .seconds(1),
        readTargets: ReadTargets = .quorum, readSpeculationDelay: Duration = .milliseconds(20),
        hintedHandoff: Bool = true,
        maxHintWindow: Duration = .seconds(3 * 3600), maxHintBytes: Int = 1 << 30, handoffRate: Int = 1000,
        antiEntropyInterval: Duration = .seconds(10), antiEntropyConcurrency: Int = 1, repairRate: Int = 1000,
        tombstoneGrace: Duration = .seconds(3600), buckets: BucketTable = BucketTable()
    ) {
        self.tombstoneGrace = tombstoneGrace
        self.antiEntropyInterval = antiEntropyInterval
        self.antiEntropyConcurrency = antiEntropyConcurrency
        self.repairRate = repairRate
        self.replicaTimeout = replicaTimeout
        self.readTargets = readTargets
        self.readSpeculationDelay = readSpeculationDelay
        self.hintedHandoff = hintedHandoff
        self.maxHintWindow = maxHintWindow
        self.maxHintBytes = maxHintBytes
        self.handoffRate = handoffRate
        self.partitions = partitions
        self.sync = sync
        self.backend = backend
        self.commitDelay = commitDelay
        self.maxValueBytes = maxValueBytes
        self.requestTimeout = requestTimeout
        self.buckets = buckets
    }
}

/// Bucket names: 1-64 characters of A-Z a-z 0-9 _ - . (they appear in URLs and logs).
public enum BucketName {
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2D || byte == 0x2E
            }
    }
}
