import ChorusCore

/// One simulated run: the cluster, the network, the fault schedule and the bounds
/// the invariants are checked against. Everything random in the run derives from
/// `seed`.
///
/// The cluster starts formed: at time zero every node knows every other as alive
/// (each has merged the others' state, as after a push-pull join), so its gossip
/// queue is full; `warmUp` leaves time for that first flood to drain before faults
/// and traffic measurements begin.
public struct Scenario: Sendable {
    public var nodes: Int
    public var duration: Duration
    public var seed: UInt64
    public var settings: SWIMSettings
    public var network: NetworkModel
    public var faults: [ScheduledFault]
    /// Traffic is measured from here to the end.
    public var warmUp: Duration = .seconds(10)
    /// memberlist PushPullInterval (30 s): full-state sync with one random live member.
    public var pushPullInterval: Duration = .seconds(30)
    /// serf reconnect_interval (30 s): push-pull with one random dead member, which is
    /// how views converge after a partition longer than gossip-to-the-dead.
    public var reconnectInterval: Duration = .seconds(30)
    public var resumeOrder: ResumeOrder = .timersFirst
    /// Datagrams a paused or slow node's socket buffer holds; more are dropped (Linux's
    /// default 212 KiB receive buffer holds ~150 full datagrams).
    public var receiveBuffer: Int = 256
    /// False positives tolerated before the invariant fails.
    public var allowedFalsePositives: Int = 0
    /// Every live node must see a crashed node dead within this; nil = the longest
    /// suspicion timeout (Lifeguard's maximum, or the fixed floor without it) plus
    /// ten protocol periods.
    public var detectionBound: Duration?
    /// After a partition heals, every live node must see every other live node alive
    /// within this: two push-pull/reconnect intervals.
    public var convergenceBound: Duration = .seconds(60)
    /// Encode and decode every datagram with `SWIMCodec` (as the shell does) instead of
    /// only computing its encoded size. Slower; catches oversize and codec bugs.
    public var throughCodec: Bool = true
    /// Keep a human-readable line per event (small runs, debugging).
    public var recordTrace: Bool = false

    public init(
        nodes: Int, duration: Duration, seed: UInt64, settings: SWIMSettings = SWIMSettings(),
        network: NetworkModel = NetworkModel(), faults: [ScheduledFault] = []
    ) {
        self.nodes = nodes
        self.duration = duration
        self.seed = seed
        self.settings = settings
        self.network = network
        self.faults = faults
    }

    /// The suspicion timeout floor for this cluster size (what a confirmed suspicion
    /// runs for): `suspicionMult × max(1, log10 n) × probeInterval`.
    public var suspicionFloor: Duration {
        let scale = max(1, SimMath.log10(Double(max(1, nodes))))
        return settings.probeInterval.scaled(by: Double(settings.suspicionMult) * scale)
    }

    /// The longest a suspicion can run: the floor × `suspicionMaxTimeoutMult` with
    /// Lifeguard, the floor without.
    public var suspicionCeiling: Duration {
        settings.lifeguard ? suspicionFloor * max(1, settings.suspicionMaxTimeoutMult) : suspicionFloor
    }

    /// How far back a dead verdict may be founded: the longest suspicion Lifeguard
    /// allows (whether or not it is on, so runs with and without it are judged alike)
    /// plus two protocol periods. A verdict about a live node that was paused, slow or
    /// cut off within this window is counted as late, not false.
    public var verdictWindow: Duration {
        suspicionFloor * max(1, settings.suspicionMaxTimeoutMult) + settings.probeInterval * 2
    }

    public var effectiveDetectionBound: Duration {
        detectionBound ?? suspicionCeiling + settings.probeInterval * 10
    }
}

extension Scenario {
    /// Repeated pauses of one node: lengths and gaps uniform in their ranges.
    public struct PausePattern: Sendable, Hashable {
        public var shortest: Duration = .seconds(1)
        public var longest: Duration = .seconds(10)
        public var shortestGap: Duration = .seconds(1)
        public var longestGap: Duration = .seconds(10)
        public init() {}
    }

    /// Repeated slow episodes of one node (`Fault.slow`): lengths, gaps and inbound
    /// lags uniform in their ranges. The default lags straddle the suspicion floor of
    /// 100 nodes (8 s): short ones make an unaided node suspect healthy members, long
    /// ones keep it from reading their refutations before its suspicions expire.
    public struct SlowPattern: Sendable, Hashable {
        public var shortest: Duration = .seconds(10)
        public var longest: Duration = .seconds(60)
        public var shortestGap: Duration = .seconds(5)
        public var longestGap: Duration = .seconds(30)
        public var smallestLag: Duration = .seconds(1)
        public var largestLag: Duration = .seconds(16)
        /// Timers fire this fraction of the inbound lag late.
        public var timerLag: Double = 0.1
        public init() {}
    }

    /// The scenario `chorus sim` and `tools/bench-sim` run: `nodes` nodes over a network
    /// with `loss`; `crashes` random nodes crash at random times after the warm-up,
    /// early enough to be detected within the run; `pauses` other random nodes pause
    /// again and again following `pausePattern`; `slow` others are slow again and again
    /// following `slowPattern`; one more node announces a tag change just after the
    /// warm-up, for the dissemination measurement.
    public static func standard(
        nodes: Int, duration: Duration, loss: Double, crashes: Int, pauses: Int, slow: Int = 0, seed: UInt64,
        lifeguard: Bool = true, pausePattern: PausePattern = PausePattern(), slowPattern: SlowPattern = SlowPattern()
    ) -> Scenario {
        var settings = SWIMSettings()
        settings.lifeguard = lifeguard
        var scenario = Scenario(
            nodes: nodes, duration: duration, seed: seed, settings: settings, network: NetworkModel(loss: loss))
        // The initial flood: every node gossips n−1 updates retransmitLimit times,
        // ~18 to a datagram, ~17 datagrams a second: about n/20 s at n = 1000.
        scenario.warmUp = min(duration / 4, .seconds(10) + .milliseconds(50) * nodes)
        // Fault placement draws from its own stream of the same seed, so adding a
        // fault kind never shifts the network's draws.
        var random = SeededRandom(seed: SimMath.mix(seed ^ 0x5343_454E_4152_494F))
        let chosen = random.distinctIndices(min(nodes, crashes + pauses + slow + 1), below: nodes)
        let announcer = chosen.first ?? 0
        scenario.faults.append(ScheduledFault(at: scenario.warmUp + .seconds(1), .announce(node: announcer)))
        let latestCrash = max(scenario.warmUp, duration - scenario.effectiveDetectionBound)
        for node in chosen.dropFirst().prefix(crashes) {
            let at = random.duration(between: scenario.warmUp + .seconds(2), and: latestCrash)
            scenario.faults.append(ScheduledFault(at: at, .crash(node: node)))
        }
        for node in chosen.dropFirst(1 + crashes).prefix(pauses) {
            var at = scenario.warmUp + random.duration(between: .zero, and: pausePattern.longestGap)
            while at < duration - .seconds(30) {
                let length = random.duration(between: pausePattern.shortest, and: pausePattern.longest)
                scenario.faults.append(ScheduledFault(at: at, .pause(node: node, duration: length)))
                at += length + random.duration(between: pausePattern.shortestGap, and: pausePattern.longestGap)
            }
        }
        for node in chosen.dropFirst(1 + crashes + pauses) {
            var at = scenario.warmUp + random.duration(between: .zero, and: slowPattern.longestGap)
            while at < duration - .seconds(30) {
                let length = random.duration(between: slowPattern.shortest, and: slowPattern.longest)
                let lag = random.duration(between: slowPattern.smallestLag, and: slowPattern.largestLag)
                scenario.faults.append(
                    ScheduledFault(
                        at: at, .slow(node: node, duration: length, lag: lag, timerLag: slowPattern.timerLag)))
                at += length + random.duration(between: slowPattern.shortestGap, and: slowPattern.longestGap)
            }
        }
        scenario.faults.sort { $0.at < $1.at }
        return scenario
    }
}
