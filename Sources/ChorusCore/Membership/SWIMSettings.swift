/// Tunables of the membership protocol. Defaults follow memberlist's
/// `DefaultLANConfig` unless noted.
public struct SWIMSettings: Hashable, Sendable {
    /// Time between probe rounds (memberlist LAN: 1 s).
    public var probeInterval: Duration = .seconds(1)
    /// Time to wait for a direct ack before asking relays (memberlist LAN: 500 ms).
    public var probeTimeout: Duration = .milliseconds(500)
    /// Relays asked to probe on our behalf after a missed ack (memberlist: 3).
    public var indirectChecks: Int = 3
    /// Suspicion timeout multiplier, scaled by log10(n) (memberlist LAN: 4).
    public var suspicionMult: Int = 4
    /// Upper bound of the suspicion timeout as a multiple of its floor (memberlist: 6).
    public var suspicionMaxTimeoutMult: Int = 6
    /// Gossip retransmits per update, scaled by ceil(log10(n+1)) (memberlist LAN: 4).
    public var retransmitMult: Int = 4
    /// Time between gossip rounds to random members (memberlist LAN: 200 ms).
    public var gossipInterval: Duration = .milliseconds(200)
    /// Random members gossiped to each round (memberlist LAN: 3).
    public var gossipNodes: Int = 3
    /// Keep gossiping to a dead member for this long, so it can learn it was
    /// declared dead and refute (memberlist: GossipToTheDeadTime 30 s).
    public var gossipToTheDeadTime: Duration = .seconds(30)
    /// Lifeguard local health multiplier ceiling (memberlist: AwarenessMaxMultiplier 8).
    public var maxLocalHealth: Int = 8
    /// A dead or stopped member is forgotten after this long (serf reconnect_timeout: 24 h).
    public var deadReapTime: Duration = .seconds(24 * 3600)
    /// A left member is forgotten after this long (serf tombstone_timeout: 24 h).
    public var leftReapTime: Duration = .seconds(24 * 3600)
    /// Largest plaintext a datagram may carry, leaving room for the seal's header and
    /// tag under a 1400-byte datagram (memberlist UDPBufferSize: 1400).
    public var maxPayloadBytes: Int = 1300
    /// The Lifeguard refinements (Lifeguard §3–§4), on by default as in memberlist since
    /// 0.2. Off gives plain SWIM for comparison (`chorus sim --lifeguard off`): local
    /// health stays 0 (no timeout stretching), ping requests ask for no nacks, the
    /// suspicion timeout is fixed at its floor `suspicionMult × max(1, log10 n) ×
    /// probeInterval` (memberlist's fixed timeout before Lifeguard, SWIM §4.2), and
    /// the suspect is not told directly (no buddy system).
    public var lifeguard: Bool = true

    public init() {}
}
