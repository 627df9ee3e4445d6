/// The summary messages of a tree exchange (DESIGN §6), one per encrypted UDP datagram,
/// each under `ExchangeCodec.maxMessageBytes`. They play the part of Riak's
/// `aae_exchange` fetch_root / fetch_branches / fetch_clocks steps, but between two
/// peers directly, with the responder answering from its own tree.
///
/// The initiator I and the responder R:
///
///     I → R  summary(shape, root, top level)
///     R → I  summaryReply(differing top-level nodes, children of the first few)
///              (no differing node: the roots match, the exchange is over)
///     I → R  branchRequest(level, nodes)          ┐ until the differing
///     R → I  branchReply(level, children hashes)  ┘ segments are known
///     I → R  segments(differing segments)          the resolution
///
/// Every message names its exchange (a random id picked by the initiator) and the
/// partition whose trees are compared.
public struct ExchangeMessage: Hashable, Sendable {
    public var exchangeID: UInt64
    public var partition: Int
    public var body: Body

    public init(exchangeID: UInt64, partition: Int, body: Body) {
        self.exchangeID = exchangeID
        self.partition = partition
        self.body = body
    }

    public enum Body: Hashable, Sendable {
        /// The initiator's root and top level (level 1), and its tree's shape.
        case summary(segmentCount: Int, root: UInt64, topLevel: [UInt64])
        /// The top-level nodes whose hashes differ from the summary's, ascending, and the
        /// children of as many of them as fit in the datagram (saving a round trip).
        /// Empty `differing`: the trees are equal. For a one-level tree the top level is
        /// the segments, and `differing` is the answer.
        case summaryReply(differing: [Int], branches: [BranchHashes])
        /// Asks for the children of nodes `indices` of inner `level`.
        case branchRequest(request: UInt32, level: Int, indices: [Int])
        /// The responder's children of the requested nodes, in request order.
        case branchReply(request: UInt32, level: Int, branches: [BranchHashes])
        /// The differing segments, ascending: the outcome, from the initiator.
        case segments(differing: [Int])
        /// The responder will not take part.
        case refused(ExchangeRefusal)
    }
}

/// The hashes of the children of one inner node.
public struct BranchHashes: Hashable, Sendable {
    /// The node's index within its level.
    public var index: Int
    public var children: [UInt64]

    public init(index: Int, children: [UInt64]) {
        self.index = index
        self.children = children
    }
}

/// Why a responder refused an exchange. Wire values: append only.
public enum ExchangeRefusal: UInt8, Hashable, Sendable, CaseIterable {
    /// Its tree for the partition has another shape (a configuration mismatch).
    case shapeMismatch = 1
    /// It does not replicate the partition (any more).
    case notReplica = 2
    /// It runs as many exchanges as it allows.
    case busy = 3
    /// The request names nodes its tree does not have, or too many of them.
    case badRequest = 4
}
