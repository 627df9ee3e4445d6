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
    /// Which of Lifeguard's parts run when `lifeguard` is on: all of them, except to
    /// measure each one's share in the simulator (`chorus sim --lifeguard-without`).
    public var lifeguardParts: LifeguardParts = .all

    public init() {}

    /// Whether `part` is in force: Lifeguard on and the part not left out.
    public func uses(_ part: LifeguardParts) -> Bool {
        lifeguard && lifeguardParts.isSuperset(of: part)
    }
}

/// The parts of Lifeguard (Lifeguard §3–§4), separable for measurement.
public struct LifeguardParts: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Local health aware probe (§4.1, §4.3): nacks, and the local health multiplier
    /// stretching this node's probe interval and probe timeout.
    public static let localHealthProbe = LifeguardParts(rawValue: 1 << 0)
    /// Local health aware suspicion (§4.2): the timeout starts at its ceiling and falls
    /// to its floor with independent confirmations.
    public static let dynamicSuspicion = LifeguardParts(rawValue: 1 << 1)
    /// The buddy system (§4.4): the suspect is told directly, on every probe of it.
    public static let buddySystem = LifeguardParts(rawValue: 1 << 2)
    /// The local health multiplier stretches the suspicion timeouts this node starts,
    /// as it stretches its probes: a slow node that cannot read refutations in time
    /// does not declare the healthy members it accused dead (a Chorus addition).
    public static let healthAwareSuspicion = LifeguardParts(rawValue: 1 << 3)

    public static let all: LifeguardParts = [
        .localHealthProbe, .dynamicSuspicion, .buddySystem, .healthAwareSuspicion,
    ]
}
