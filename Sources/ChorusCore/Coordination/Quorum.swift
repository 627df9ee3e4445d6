/// A read or write quorum as a client states it (DESIGN §4): a number, `one`,
/// `quorum` (a majority of n) or `all`, resolved against the bucket's n.
public enum Quorum: Hashable, Sendable, CustomStringConvertible {
    case one
    case quorum
    case all
    case count(Int)

    /// Parses a request parameter: `one`, `quorum`, `all` or a whole number.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "one": self = .one
        case "quorum": self = .quorum
        case "all": self = .all
        default:
            guard let count = Int(text) else { return nil }
            self = .count(count)
        }
    }

    /// The number of replicas this quorum needs out of `n`, or an error naming
    /// the problem (a 0, or more than n: a request that could never succeed).
    public func required(outOf n: Int) throws(QuorumError) -> Int {
        switch self {
        case .one: return 1
        case .quorum: return n / 2 + 1
        case .all: return n
        case .count(let count):
            guard count >= 1 else { throw .tooSmall(count) }
            guard count <= n else { throw .moreThanReplicas(count, n: n) }
            return count
        }
    }

    public var description: String {
        switch self {
        case .one: "one"
        case .quorum: "quorum"
        case .all: "all"
        case .count(let count): "\(count)"
        }
    }
}

public enum QuorumError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooSmall(Int)
    case moreThanReplicas(Int, n: Int)

    public var description: String {
        switch self {
        case .tooSmall(let count): "a quorum must be at least 1, got \(count)"
        case .moreThanReplicas(let count, let n): "a quorum of \(count) is more than the bucket's n=\(n) replicas"
        }
    }
}

/// Counts replica answers for one request until its quorum is met or can no
/// longer be met (Dynamo §4.5: the coordinator answers after W (or R) replies).
public struct QuorumTracker: Sendable {
    public enum Outcome: Hashable, Sendable {
        case pending
        case met
        /// Too many replicas failed for the quorum ever to be met.
        case unreachable
    }

    public let required: Int
    public private(set) var acknowledged: Set<NodeID> = []
    public private(set) var failed: Set<NodeID> = []
    private let replicas: Set<NodeID>

    public init(required: Int, replicas: some Sequence<NodeID>) {
        self.required = required
        self.replicas = Set(replicas)
    }

    public var outcome: Outcome {
        if acknowledged.count >= required { return .met }
        if replicas.count - failed.count < required { return .unreachable }
        return .pending
    }

    /// Records a replica's success; answers from unknown replicas, or repeats, change nothing.
    @discardableResult
    public mutating func acknowledge(_ replica: NodeID) -> Outcome {
        if replicas.contains(replica), !failed.contains(replica) { acknowledged.insert(replica) }
        return outcome
    }

    /// Records a replica's failure (error or timeout).
    @discardableResult
    public mutating func fail(_ replica: NodeID) -> Outcome {
        if replicas.contains(replica), !acknowledged.contains(replica) { failed.insert(replica) }
        return outcome
    }
}
