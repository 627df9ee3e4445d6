/// The outcome of one scenario: measurements, invariant verdicts and the trace digest.
/// Everything but `wallSeconds` and `simulatedSecondsPerWallSecond` is a function of
/// the scenario (and so of its seed) alone.
public struct SimReport: Sendable, Codable {
    public var seed: UInt64
    public var nodes: Int
    public var durationSeconds: Double
    public var lifeguard: Bool
    public var loss: Double
    public var protocolPeriodSeconds: Double
    /// `suspicionMult × max(1, log10 n) × probeInterval`.
    public var suspicionFloorSeconds: Double
    public var detection: Detection
    /// Dead verdicts about a live node the observer can reach, which was neither paused,
    /// slow nor cut off, then or within the verdict window (a healthy node declared dead).
    public var falsePositives: Int
    /// Dead verdicts about live nodes that were paused, slow or cut off within the
    /// window (verdicts while they still are are not counted here).
    public var foundedLateVerdicts: Int
    /// Suspicions of live, reachable nodes neither paused nor slow (refuted or not):
    /// informational.
    public var falseSuspicions: Int
    public var falsePositiveExamples: [String]
    public var dissemination: Dissemination?
    public var traffic: Traffic
    public var pauses: [PauseOutcome]
    public var slowEpisodes: [SlowOutcome]
    public var invariants: [Invariant]
    public var passed: Bool
    public var events: Int
    public var digest: String
    public var wallSeconds: Double
    public var simulatedSecondsPerWallSecond: Double

    public struct Detection: Sendable, Codable {
        public var crashes: [Crash]
        /// Over every (crash, observer) pair that detected it.
        public var allObservers: Percentiles
        public var firstObserver: Percentiles
        public var lastObserver: Percentiles
        /// Over every (crash, observer) pair, from the crash's first suspicion (the end
        /// of the first failed probe round) rather than from the crash: the part the
        /// suspicion timeout and dissemination govern, without the wait for a probe.
        public var sinceFirstSuspicion: Percentiles
        /// From the crash to its first suspicion, one value per crash.
        public var firstSuspicion: Percentiles
        public var boundSeconds: Double
    }

    public struct Crash: Sendable, Codable {
        public var node: Int
        public var atSeconds: Double
        /// Seconds from the crash to its first suspicion (a failed probe round).
        public var firstSuspectedSeconds: Double?
        /// Seconds from the crash to the first and the last live node marking it dead.
        public var firstObserverSeconds: Double?
        public var lastObserverSeconds: Double?
        public var observers: Int
        public var detectedBy: Int
    }

    public struct Dissemination: Sendable, Codable {
        public var node: Int
        public var atSeconds: Double
        public var reachedAll: Bool
        public var seconds: Double?
        public var periods: Double?
        /// `3 × log2(n)`, the goal.
        public var goalPeriods: Double
    }

    public struct Traffic: Sendable, Codable {
        public var windowSeconds: Double
        public var datagramsPerNodePerSecond: Double
        /// SWIM messages (ping, ack, update, ...) per node per second.
        public var messagesPerNodePerSecond: Double
        /// UDP bytes sent per node per second: `SWIMCodec` size plus the 47-byte seal.
        public var bytesPerNodePerSecond: Double
        /// Push-pull bytes (plaintext updates plus seal) per node per second.
        public var tcpBytesPerNodePerSecond: Double
        public var datagramsLost: Int
        public var datagramsDroppedWhilePaused: Int
        public var datagramsDroppedWhileSlow: Int
    }

    public struct PauseOutcome: Sendable, Codable {
        public var node: Int
        public var atSeconds: Double
        public var durationSeconds: Double
        /// Live nodes that saw it suspect, and dead, from the pause until it was seen
        /// alive everywhere again (or the next pause or the end).
        public var suspectedBy: Int
        public var declaredDeadBy: Int
        /// Seconds from resuming until every live node sees it alive again.
        public var aliveEverywhereAfterSeconds: Double?
    }

    public struct SlowOutcome: Sendable, Codable {
        public var node: Int
        public var atSeconds: Double
        public var durationSeconds: Double
        public var lagSeconds: Double
        /// Highest Lifeguard local health score it reached (0 ... maxLocalHealth − 1).
        public var peakLocalHealth: Int
        /// In its own view, from the episode's start to its next one (or the end):
        /// healthy members it saw suspect, and dead (false positives).
        public var falseSuspicions: Int
        public var falsePositives: Int
        /// Live nodes that saw it suspect, and dead, over the same span.
        public var suspectedBy: Int
        public var declaredDeadBy: Int
    }

    public struct Invariant: Sendable, Codable {
        public var name: String
        public var held: Bool
        public var violations: Int
        public var examples: [String]
    }
}
