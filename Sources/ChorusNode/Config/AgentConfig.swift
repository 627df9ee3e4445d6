import ChorusCore

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

    public init(
        name: String, dataDir: String, clusterName: String = "chorus", bind: Endpoint, advertise: Endpoint,
        httpAddr: Endpoint, httpToken: String? = nil, join: [Endpoint] = [], encryptKey: String? = nil,
        logLevel: String = "info", tags: [String: String] = [:], swim: SWIMSettings = SWIMSettings(),
        pushPullInterval: Duration = .seconds(30), reconnectInterval: Duration = .seconds(30),
        joinRetryMax: Duration = .seconds(30)
    ) {
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
    }
}
