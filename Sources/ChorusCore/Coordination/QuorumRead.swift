/// One read, as a pure state machine (Dynamo §4.5): ask every home replica (or,
/// for one SWIM marks down, the next node of the ranking, which answers from the
/// hints it holds), answer the client after R replies merged, keep collecting late
/// replies for a short window, then name the home replicas to repair: those whose
/// copy was older than the merge or missing (read repair, Dynamo §4.7).
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

    public let targets: [Target]
    public let required: Int
    private let sloppy: Bool
    private let lww: Bool
    private let n: Int
    private var answers: [NodeID: StoredObject?] = [:]
    private var failures: [String] = []
    private var failedCount = 0
    private var decided = false
    public private(set) var merged: StoredObject?

    public init(targets: [Target], n: Int, required: Int, sloppy: Bool, lww: Bool) {
        self.targets = targets
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
