/// One read, as a pure state machine (Dynamo §4.5): its targets are the home
/// replicas (or, for one SWIM marks down, the next node of the ranking, which
/// answers from the hints it holds); it answers the client after R replies merged,
/// keeps collecting late replies for a short window, then names the home replicas to
/// repair: those whose copy was older than the merge or missing (read repair,
/// Dynamo §4.7).
///
/// Whom to ask first (`firstTargets`): every target (Riak: read repair on every
/// read), or only as many as the quorum needs, the coordinator's own copy first
/// (Cassandra): a third of the replica traffic of an r=2 read at n=3. A target not
/// yet asked is a spare (`nextTarget`), asked when one that was asked fails, or when
/// the answers are slow (speculative retry); the quorum fails only once no spare is
/// left.
public struct QuorumRead: Sendable {
    public struct Target: Hashable, Sendable {
        public var node: NodeID
        /// The home replica this fallback answers for; nil for a home replica.
        public var standsInFor: NodeID?
    }

    public enum Decision: Equatable, Sendable {
        /// Enough replicas answered: the merged object (nil: no replica has the key).
        case respond(StoredObject?)
        /// The quorum cannot be met.
        case fail(answered: Int, failures: [String])
    }

    /// Whom to ask: each reachable home replica, and for each unreachable one the
    /// next reachable node of the ranking.
    public static func targets(home: [NodeID], fallbacks: [NodeID], reachable: Set<NodeID>) -> [Target] {
        var spare = fallbacks.filter { reachable.contains($0) }
        var targets: [Target] = []
        for replica in home {
            if reachable.contains(replica) {
                targets.append(Target(node: replica, standsInFor: nil))
            } else if !spare.isEmpty {
                targets.append(Target(node: spare.removeFirst(), standsInFor: replica))
            }
        }
        return targets
    }

    /// In the order they are asked: the preferred node first, then home replicas,
    /// then fallbacks standing in for down ones.
    public let targets: [Target]
    public let required: Int
    /// How many of `targets` (a prefix) have been asked.
    public private(set) var asked = 0
    private let sloppy: Bool
    private let lww: Bool
    private let n: Int
    private var answers: [NodeID: StoredObject?] = [:]
    private var failures: [String] = []
    private var failedCount = 0
    private var decided = false
    public private(set) var merged: StoredObject?

    /// - Parameter preferred: the node asked first when it is a target (the coordinator itself:
    ///   no network round trip).
    public init(targets: [Target], n: Int, required: Int, sloppy: Bool, lww: Bool, preferred: NodeID? = nil) {
        // A stable order: preferred, then home replicas, then stand-ins.
        func rank(_ target: Target) -> Int { target.node == preferred ? 0 : target.standsInFor == nil ? 1 : 2 }
        self.targets = targets.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }
            .map(\.element)
        self.n = n
        self.required = required
        self.sloppy = sloppy
        self.lww = lww
    }

    private var countedTargets: Int { sloppy ? targets.count : targets.filter { $0.standsInFor == nil }.count }

    private func counts(_ node: NodeID) -> Bool {
        sloppy || targets.contains { $0.node == node && $0.standsInFor == nil }
    }

    private var counted: Int { answers.keys.filter(counts).count }

    public mutating func answered(_ node: NodeID, _ object: StoredObject?) -> Decision? {
        guard targets.contains(where: { $0.node == node }), answers[node] == nil else { return nil }
        answers[node] = .some(object)
        if let object {
            merged = merged.map { lww ? $0.lwwMerged(object) : $0.merged(object) } ?? object
        }
        return decide()
    }

    public mutating func failed(_ node: NodeID, reason: String) -> Decision? {
        guard targets.contains(where: { $0.node == node }), answers[node] == nil else { return nil }
        failures.append(reason)
        if counts(node) { failedCount += 1 }
        return decide()
    }

    public mutating func requestTimedOut() -> Decision? {
        guard !decided else { return nil }
        decided = true
        return counted >= required
            ? .respond(merged) : .fail(answered: counted, failures: failures + ["timed out"])
    }

    /// Call once after creating: a read with too few targets fails at once.
    public mutating func start() -> Decision? { decide() }

    /// The targets to ask now, once, at the start: every one when `askAll`, otherwise the
    /// shortest prefix whose answers could make the quorum.
    public mutating func firstTargets(askAll: Bool) -> ArraySlice<Target> {
        guard asked == 0 else { return [] }
        var count = targets.count
        if !askAll {
            var counting = 0
            for (index, target) in targets.enumerated() where sloppy || target.standsInFor == nil {
                counting += 1
                if counting >= required {
                    count = index + 1
                    break
                }
            }
        }
        asked = count
        return targets[..<count]
    }

    /// The next target not asked yet, to ask now (one that was asked failed, or the
    /// answers are slow); nil once every target was asked or the read is decided.
    public mutating func nextTarget() -> Target? {
        guard !decided, asked < targets.count else { return nil }
        asked += 1
        return targets[asked - 1]
    }

    /// Asked targets whose answer (or failure) is still to come.
    public var awaiting: Int { asked - answers.count - failures.count }

    private mutating func decide() -> Decision? {
        guard !decided else { return nil }
        if counted >= required {
            decided = true
            return .respond(merged)
        }
        // Replies still in flight that would count. When even all of them cannot
        // make the quorum, wait for them anyway so the error counts them.
        let pending = countedTargets - counted - failedCount
        guard pending == 0 else { return nil }
        decided = true
        let missing = n - countedTargets
        let why =
            sloppy
            ? "\(missing) home replicas down with no fallback to stand in"
            : "\(missing) home replicas down (a strict quorum does not count fallbacks)"
        return .fail(answered: counted, failures: failures + (missing > 0 ? [why] : []))
    }

    /// Home replicas that answered with a copy older than the merge, or none.
    public var repairTargets: [NodeID] {
        guard let merged else { return [] }
        return targets.compactMap { target in
            guard target.standsInFor == nil, let answer = answers[target.node] else { return nil }
            return answer == merged ? nil : target.node
        }
    }
}
