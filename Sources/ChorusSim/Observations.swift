import ChorusCore

/// What the simulator knows about every node's view, kept up to date from the
/// `memberChanged` effects, and the invariants and measurements derived from it:
/// - incarnations never go backwards in any view;
/// - no live node that is neither paused nor slow (nor was within the verdict window)
///   is declared dead by a node it can reach (false positive);
/// - every crashed node is seen dead by every live node within the detection bound;
/// - views converge after a partition heals.
///
/// Views are flat `n × n` arrays (observer-major), so checks cost no lookups.
struct Observations {
    static let unknown: UInt8 = 0xFF

    let nodeCount: Int
    /// `status[observer * n + subject]`: a `MemberStatus` raw value or `unknown`.
    var status: [UInt8]
    var incarnation: [UInt64]
    /// Live observers (not crashed, subject excluded) whose view of the subject is alive.
    var aliveViews: [Int]
    var crashedCount = 0

    var incarnationViolations = Violations()
    var falsePositives = Violations()
    var falseSuspicions = 0
    /// Dead verdicts about live nodes that were paused, slow or cut off within the
    /// verdict window: late, but founded on a real silence (or a real slowness).
    var foundedLateVerdicts = 0
    var detectionViolations = Violations()
    var convergenceViolations = Violations()
    var oversizeViolations = Violations()

    var crashes: [CrashRecord] = []
    var crashIndex: [Int?]
    var pauses: [PauseRecord] = []
    var openPause: [Int?]
    var slows: [SlowRecord] = []
    var openSlow: [Int?]
    var announcement: Announcement?

    struct Violations {
        var count = 0
        var examples: [String] = []

        /// Counts a violation; keeps the first few descriptions. The text is built by
        /// the caller before the call: it may read the `Observations` being modified.
        mutating func add(_ example: String) {
            count += 1
            if examples.count < 10 { examples.append(example) }
        }
    }

    struct CrashRecord {
        let node: Int
        let at: MonotonicTime
        /// Live nodes at the crash (the crashed one excluded).
        let observers: [Int]
        /// Seconds from the crash until each observer saw it dead.
        var detectedAfter: [Int: Double] = [:]
        /// Seconds from the crash until anyone first suspected it.
        var firstSuspectedAfter: Double?
        var checked = false
    }

    struct PauseRecord {
        let node: Int
        let at: MonotonicTime
        let duration: Duration
        var resumedAt: MonotonicTime?
        var suspectedBy: Set<Int> = []
        var deadBy: Set<Int> = []
        var aliveEverywhereAfter: Double?
    }

    /// One slow episode, and what happened from its start to the node's next episode
    /// (or the end): the node's health, its accusations of healthy members, and how
    /// the others saw it.
    struct SlowRecord {
        let node: Int
        let at: MonotonicTime
        let duration: Duration
        let lag: Duration
        /// Highest local health score it reached while slow or reading its backlog.
        var peakLocalHealth = 0
        /// Healthy members that turned suspect, and dead (false positives), in its view.
        var falseSuspicions = 0
        var falsePositives = 0
        var suspectedBy: Set<Int> = []
        var deadBy: Set<Int> = []
    }

    struct Announcement {
        let node: Int
        let at: MonotonicTime
        let incarnation: UInt64
        var seen: [Bool]
        var reachedAllAt: MonotonicTime?
    }

    init(nodeCount: Int) {
        self.nodeCount = nodeCount
        status = [UInt8](repeating: Self.unknown, count: nodeCount * nodeCount)
        incarnation = [UInt64](repeating: 0, count: nodeCount * nodeCount)
        aliveViews = [Int](repeating: 0, count: nodeCount)
        crashIndex = [Int?](repeating: nil, count: nodeCount)
        openPause = [Int?](repeating: nil, count: nodeCount)
        openSlow = openPause
    }

    func view(of subject: Int, by observer: Int) -> MemberStatus? {
        MemberStatus(rawValue: status[observer * nodeCount + subject])
    }
}
