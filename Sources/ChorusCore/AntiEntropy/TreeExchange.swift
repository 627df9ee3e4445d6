/// One summary exchange (DESIGN §6) between this node and a co-replica for one
/// partition, as a pure state machine: the shell feeds it received messages and clock
/// ticks and carries out its effects (send a datagram, report the outcome). It finds the
/// segments whose tictac hashes differ, which the bulk repair then reconciles over TCP:
/// the Merkle descent of Riak's `aae_exchange` over `kv_index_tictactree`s, driven by
/// one side instead of a third-party coordinator.
///
/// The initiator sends its root and top level; the responder answers with the top-level
/// nodes that differ and the children of the first few of them; the initiator asks for
/// the children of the rest, level by level (several requests in flight), compares them
/// with its own, and ends with `.finished(differingSegments:)` after telling the
/// responder the outcome. Equal roots end the exchange in one round trip. Lost
/// datagrams are retried after `Settings.timeout`, each at most `Settings.maxRetries`
/// times; then the exchange fails with `.timedOut`.
///
/// The responder keeps no state an answer depends on (`answer(_:from:)` is a pure
/// function of the request and its tree), so duplicated and retried requests get the
/// same answers. Its state machine only reports the outcome: `.finished` when the roots
/// match or when the initiator's `segments` arrive, `.failed(.timedOut)` when the
/// initiator falls silent (the `segments` message is not acknowledged: if it is lost the
/// responder does not learn the outcome, which the initiator's repair does not need).
///
/// Both sides compare snapshots of their trees taken when the exchange starts: the
/// result is exact for those snapshots, and writes landing meanwhile are caught by the
/// next exchange.
public struct TreeExchange: Sendable {
    public struct Settings: Hashable, Sendable {
        /// How long to wait for a reply before sending a request again.
        public var timeout: Duration
        /// How many times a request is sent again before the exchange fails.
        public var maxRetries: Int
        /// Most branch requests in flight at once.
        public var maxOutstandingRequests: Int

        public init(timeout: Duration = .milliseconds(500), maxRetries: Int = 3, maxOutstandingRequests: Int = 4) {
            self.timeout = timeout
            self.maxRetries = max(0, maxRetries)
            self.maxOutstandingRequests = max(1, maxOutstandingRequests)
        }

        /// How long a responder waits for the initiator's next message: as long as the
        /// initiator may spend retrying one request, and one timeout more.
        public var responderIdleTimeout: Duration {
            timeout * (maxRetries + 2)
        }
    }

    public enum Role: Hashable, Sendable {
        case initiator
        case responder
    }

    public enum Effect: Hashable, Sendable {
        /// Send this message to the co-replica, in one datagram.
        case send(ExchangeMessage)
        /// The exchange is over; these segments differ (empty: the trees are equal).
        case finished(differingSegments: [Int])
        /// The exchange is over without a result.
        case failed(Failure)
    }

    public enum Failure: Hashable, Sendable {
        /// A request went unanswered through every retry (initiator), or the initiator
        /// fell silent (responder).
        case timedOut
        /// The responder refused (initiator), or this side refused (responder).
        case refused(ExchangeRefusal)
        /// The peer sent a message that does not fit the exchange (a bug or a
        /// version mismatch, not a lost datagram).
        case invalidMessage(String)
    }

    /// A branch request waiting for its reply.
    struct Outstanding: Hashable, Sendable {
        var message: ExchangeMessage
        var level: Int
        var indices: [Int]
        var sentAt: MonotonicTime
        var sends: Int
    }

    public let role: Role
    public let exchangeID: UInt64
    public let partition: Int
    public let settings: Settings
    /// This side's tree, as it was when the exchange was created.
    public let tree: TictacTree

    /// Set once the exchange has finished or failed.
    public private(set) var outcome: Effect?
    /// Messages this side has sent, retries included.
    public private(set) var messagesSent = 0
    /// Messages sent again after a timeout.
    public private(set) var retransmissions = 0

    // Initiator state.
    private var summary: Outstanding?
    private var outstanding: [UInt32: Outstanding] = [:]
    private var pending: [(level: Int, index: Int)] = []
    private var differing: [Int] = []
    private var nextRequest: UInt32 = 1

    // Responder state.
    private var lastHeard = MonotonicTime.zero

    /// The initiating side of exchange `exchangeID` for `partition`, comparing `tree`.
    public init(initiating exchangeID: UInt64, partition: Int, tree: TictacTree, settings: Settings = Settings()) {
        self.role = .initiator
        self.exchangeID = exchangeID
        self.partition = partition
        self.tree = tree
        self.settings = settings
    }

    /// The responding side of exchange `exchangeID` for `partition`, answering from
    /// `tree`. Created when the initiator's `summary` arrives (then fed to `received`).
    public init(responding exchangeID: UInt64, partition: Int, tree: TictacTree, settings: Settings = Settings()) {
        self.role = .responder
        self.exchangeID = exchangeID
        self.partition = partition
        self.tree = tree
        self.settings = settings
    }

    public var isDone: Bool { outcome != nil }

    /// When `tick` next has something to do; nil once done.
    public var nextDeadline: MonotonicTime? {
        guard !isDone else { return nil }
        switch role {
        case .initiator:
            let sentTimes = outstanding.values.map(\.sentAt) + (summary.map { [$0.sentAt] } ?? [])
            return sentTimes.min().map { $0 + settings.timeout }
        case .responder:
            return lastHeard + settings.responderIdleTimeout
        }
    }

    // MARK: - Events

    /// Starts the exchange: the initiator sends its root and top level; the responder
    /// starts its idle timer.
    public mutating func start(now: MonotonicTime) -> [Effect] {
        lastHeard = now
        guard role == .initiator, !isDone, summary == nil else { return [] }
        let message = self.message(
            .summary(segmentCount: tree.shape.segmentCount, root: tree.root, topLevel: tree.topLevel))
        summary = Outstanding(message: message, level: 0, indices: [0], sentAt: now, sends: 1)
        messagesSent += 1
        return [.send(message)]
    }

    /// A message from the co-replica. Messages of other exchanges or partitions, late
    /// duplicates and replies nobody waits for are ignored.
    public mutating func received(_ message: ExchangeMessage, now: MonotonicTime) -> [Effect] {
        guard message.exchangeID == exchangeID, message.partition == partition else { return [] }
        switch role {
        case .initiator:
            guard !isDone else { return [] }
            return initiatorReceived(message.body, now: now)
        case .responder:
            return responderReceived(message, now: now)
        }
    }

    /// Time has passed: requests unanswered for `settings.timeout` are sent again, or
    /// the exchange fails once one has used up its retries.
    public mutating func tick(now: MonotonicTime) -> [Effect] {
        guard !isDone else { return [] }
        switch role {
        case .responder:
            guard now >= lastHeard + settings.responderIdleTimeout else { return [] }
            return end(.failed(.timedOut))
        case .initiator:
            var effects: [Effect] = []
            if var request = summary, now >= request.sentAt + settings.timeout {
                guard request.sends <= settings.maxRetries else { return end(.failed(.timedOut)) }
                request.sentAt = now
                request.sends += 1
                summary = request
                effects.append(resend(request.message))
            }
            for id in outstanding.keys.sorted() {
                guard var request = outstanding[id], now >= request.sentAt + settings.timeout else { continue }
                guard request.sends <= settings.maxRetries else { return end(.failed(.timedOut)) }
                request.sentAt = now
                request.sends += 1
                outstanding[id] = request
                effects.append(resend(request.message))
            }
            return effects
        }
    }

    // MARK: - Responder

    /// The responder's answer to `message` from `tree`: a pure function, so a node may
    /// answer without keeping any exchange state. Nil for messages that need no answer.
    public static func answer(_ message: ExchangeMessage, from tree: TictacTree) -> ExchangeMessage? {
        let shape = tree.shape
        func reply(_ body: ExchangeMessage.Body) -> ExchangeMessage {
            ExchangeMessage(exchangeID: message.exchangeID, partition: message.partition, body: body)
        }
        switch message.body {
        case .summary(let segmentCount, _, let topLevel):
            guard segmentCount == shape.segmentCount else { return reply(.refused(.shapeMismatch)) }
            guard topLevel.count == shape.levelWidths[shape.topLevel] else { return reply(.refused(.badRequest)) }
            let mine = tree.topLevel
            let differing = mine.indices.filter { mine[$0] != topLevel[$0] }
            guard shape.leafLevel > shape.topLevel else {
                return reply(.summaryReply(differing: differing, branches: []))
            }
            let count = ExchangeCodec.branchesPerMessage(childrenPerNode: shape.childrenPerNode(atLevel: 1))
            let branches = differing.prefix(count).map {
                BranchHashes(index: $0, children: tree.children(level: shape.topLevel, index: $0))
            }
            return reply(.summaryReply(differing: differing, branches: branches))
        case .branchRequest(let request, let level, let indices):
            guard level >= 0, level < shape.leafLevel, !indices.isEmpty,
                indices.count
                    <= ExchangeCodec.branchesPerMessage(childrenPerNode: shape.childrenPerNode(atLevel: level)),
                indices.allSatisfy({ shape.isInnerNode(level: level, index: $0) })
            else { return reply(.refused(.badRequest)) }
            let branches = indices.map { BranchHashes(index: $0, children: tree.children(level: level, index: $0)) }
            return reply(.branchReply(request: request, level: level, branches: branches))
        case .summaryReply, .branchReply, .segments, .refused:
            return nil
        }
    }

    private mutating func responderReceived(_ message: ExchangeMessage, now: MonotonicTime) -> [Effect] {
        lastHeard = now
        var effects: [Effect] = []
        if let answer = Self.answer(message, from: tree) {
            messagesSent += 1
            effects.append(.send(answer))
            guard !isDone else { return effects }
            switch answer.body {
            case .refused(let reason):
                effects += end(.failed(.refused(reason)))
            case .summaryReply(let differing, _) where differing.isEmpty:
                effects += end(.finished(differingSegments: []))
            default:
                break
            }
            return effects
        }
        guard !isDone, case .segments(let segments) = message.body else { return effects }
        guard segments.allSatisfy({ $0 >= 0 && $0 < tree.shape.segmentCount }) else {
            return end(.failed(.invalidMessage("segment out of range")))
        }
        return end(.finished(differingSegments: segments.sorted()))
    }

    // MARK: - Initiator

    private mutating func initiatorReceived(_ body: ExchangeMessage.Body, now: MonotonicTime) -> [Effect] {
        let shape = tree.shape
        switch body {
        case .refused(let reason):
            return end(.failed(.refused(reason)))
        case .summaryReply(let theirDiffering, let branches):
            guard summary != nil else { return [] }
            let width = shape.levelWidths[shape.topLevel]
            guard theirDiffering.allSatisfy({ $0 >= 0 && $0 < width }),
                zip(theirDiffering, theirDiffering.dropFirst()).allSatisfy({ $0 < $1 })
            else { return end(.failed(.invalidMessage("summary reply names unknown nodes"))) }
            summary = nil
            // Equal top levels: equal roots, and the responder already knows.
            if theirDiffering.isEmpty { return end(.finished(differingSegments: [])) }
            if shape.leafLevel == shape.topLevel {
                guard branches.isEmpty else { return end(.failed(.invalidMessage("branches of leaves"))) }
                differing = theirDiffering
                return finish()
            }
            let included = Set(branches.map(\.index))
            guard included.count == branches.count, included.isSubset(of: theirDiffering) else {
                return end(.failed(.invalidMessage("summary reply carries unasked branches")))
            }
            for branch in branches {
                guard compare(branch, level: shape.topLevel) else {
                    return end(.failed(.invalidMessage("branch of the wrong size")))
                }
            }
            pending += theirDiffering.filter { !included.contains($0) }.map { (shape.topLevel, $0) }
            return dispatch(now: now)
        case .branchReply(let request, let level, let branches):
            guard let asked = outstanding[request] else { return [] }
            guard level == asked.level, branches.map(\.index) == asked.indices else {
                return end(.failed(.invalidMessage("branch reply does not match its request")))
            }
            outstanding[request] = nil
            for branch in branches {
                guard compare(branch, level: level) else {
                    return end(.failed(.invalidMessage("branch of the wrong size")))
                }
            }
            return dispatch(now: now)
        case .summary, .branchRequest, .segments:
            return []
        }
    }

    /// Compares the peer's children of one node of `level` with ours: differing leaves
    /// join the result, differing inner nodes the queue. False if the sizes disagree.
    private mutating func compare(_ branch: BranchHashes, level: Int) -> Bool {
        let shape = tree.shape
        guard shape.isInnerNode(level: level, index: branch.index) else { return false }
        let mine = tree.children(level: level, index: branch.index)
        guard mine.count == branch.children.count else { return false }
        let first = branch.index * mine.count
        for offset in mine.indices where mine[offset] != branch.children[offset] {
            if level + 1 == shape.leafLevel {
                differing.append(first + offset)
            } else {
                pending.append((level + 1, first + offset))
            }
        }
        return true
    }

    /// Sends queued branch requests while the window allows; finishes when nothing is
    /// queued or in flight.
    private mutating func dispatch(now: MonotonicTime) -> [Effect] {
        var effects: [Effect] = []
        while outstanding.count < settings.maxOutstandingRequests, let level = pending.first?.level {
            let perMessage = ExchangeCodec.branchesPerMessage(
                childrenPerNode: tree.shape.childrenPerNode(atLevel: level))
            var indices: [Int] = []
            var rest: [(level: Int, index: Int)] = []
            for item in pending {
                if item.level == level, indices.count < perMessage {
                    indices.append(item.index)
                } else {
                    rest.append(item)
                }
            }
            pending = rest
            let request = nextRequest
            nextRequest &+= 1
            let message = self.message(.branchRequest(request: request, level: level, indices: indices))
            outstanding[request] = Outstanding(message: message, level: level, indices: indices, sentAt: now, sends: 1)
            messagesSent += 1
            effects.append(.send(message))
        }
        if outstanding.isEmpty, pending.isEmpty {
            effects += finish()
        }
        return effects
    }

    /// The differing segments are known: tell the responder and report them.
    private mutating func finish() -> [Effect] {
        let segments = differing.sorted()
        messagesSent += 1
        return [.send(message(.segments(differing: segments)))] + end(.finished(differingSegments: segments))
    }

    // MARK: - Helpers

    private func message(_ body: ExchangeMessage.Body) -> ExchangeMessage {
        ExchangeMessage(exchangeID: exchangeID, partition: partition, body: body)
    }

    private mutating func resend(_ message: ExchangeMessage) -> Effect {
        messagesSent += 1
        retransmissions += 1
        return .send(message)
    }

    private mutating func end(_ effect: Effect) -> [Effect] {
        summary = nil
        outstanding = [:]
        pending = []
        outcome = effect
        return [effect]
    }
}
