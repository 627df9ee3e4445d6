/// One write's replication, as a pure state machine (Dynamo §4.5–4.6): the
/// coordinator has stored the new version locally; it sends it to the other home
/// replicas, and for each one SWIM marks down, or that fails or does not answer
/// within the replica timeout, to the next node of the partition's ranking with a
/// hint naming the home replica it stands in for. Hinted acknowledgements count
/// toward W unless the request is strict (`sloppy = false`).
///
/// The shell executes the effects (sends, replica timers) and feeds back answers.
/// After the outcome is reported the machine keeps substituting for failures, so
/// the write still reaches N nodes when it can.
public struct SloppyWrite: Sendable {
    public enum Effect: Hashable, Sendable {
        /// Send the object to `node`; `hintFor` names the home replica it stands in for.
        case send(to: NodeID, hintFor: NodeID?)
        /// Call `replicaTimedOut(node)` after the replica timeout unless `node` answered.
        case startReplicaTimer(NodeID)
        /// The client's answer: reported once.
        case finish(Outcome)
    }

    public struct Outcome: Hashable, Sendable {
        public var met: Bool
        /// Home replicas holding the write, the coordinator included.
        public var homeAcknowledgements: Int
        /// Fallback nodes holding it as a hint.
        public var hintedAcknowledgements: Int
        public var required: Int
        public var sloppy: Bool
        /// Why each failed node failed, in the order failures happened.
        public var failures: [Failure]

        /// The acknowledgements that count toward `required`.
        public var counted: Int { sloppy ? homeAcknowledgements + hintedAcknowledgements : homeAcknowledgements }
    }

    public struct Failure: Hashable, Sendable {
        public var node: NodeID
        public var reason: String
    }

    private let required: Int
    private let sloppy: Bool
    private var fallbacks: [NodeID]
    /// Nodes sent to and not yet answered (or failed), with whom they stand in for.
    private var outstanding: [NodeID: NodeID?] = [:]
    private var homeAcks: Set<NodeID> = []
    private var hintedAcks: Set<NodeID> = []
    private var failures: [Failure] = []
    /// Nodes past their replica timeout, with whom they stood in for: a late
    /// acknowledgement still counts.
    private var timedOut: [NodeID: NodeID?] = [:]
    private var finished = false
    private var coordinator: NodeID?

    /// - Parameters:
    ///   - coordinator: this node, a home replica; `coordinatorStored` says whether
    ///     its own copy is durable yet (else report it with `coordinatorStored()`
    ///     or `failed(coordinator, ...)`: the coordinator may send to the others
    ///     while its own commit is in flight).
    ///   - home: the partition's N home replicas, in ranking order.
    ///   - fallbacks: the rest of the ranking, in order.
    ///   - reachable: nodes SWIM believes answer (alive or suspect).
    public init(
        coordinator: NodeID, home: [NodeID], fallbacks: [NodeID], required: Int, sloppy: Bool,
        reachable: Set<NodeID>, coordinatorStored: Bool = true, effects: inout [Effect]
    ) {
        self.required = required
        self.sloppy = sloppy
        self.fallbacks = fallbacks.filter { reachable.contains($0) && $0 != coordinator }
        if coordinatorStored {
            homeAcks.insert(coordinator)
        } else {
            // Awaiting its own durable commit, as if it were a replica in flight; a
            // local failure is not replaced by a fallback (the others carry the write).
            outstanding[coordinator] = .some(nil)
            self.coordinator = coordinator
        }
        for replica in home where replica != coordinator {
            if reachable.contains(replica) {
                outstanding[replica] = .some(nil)
                effects.append(.send(to: replica, hintFor: nil))
                effects.append(.startReplicaTimer(replica))
            } else {
                failures.append(Failure(node: replica, reason: "down"))
                substitute(for: replica, effects: &effects)
            }
        }
        settle(&effects)
    }

    public mutating func acknowledged(by node: NodeID) -> [Effect] {
        var effects: [Effect] = []
        guard let standIn = outstanding.removeValue(forKey: node) ?? timedOut.removeValue(forKey: node) else {
            return effects
        }
        if standIn == nil { homeAcks.insert(node) } else { hintedAcks.insert(node) }
        settle(&effects)
        return effects
    }

    /// The coordinator's own copy is durable.
    public mutating func coordinatorStored() -> [Effect] {
        guard let coordinator else { return [] }
        return acknowledged(by: coordinator)
    }

    public mutating func failed(_ node: NodeID, reason: String) -> [Effect] {
        var effects: [Effect] = []
        guard let standIn = outstanding.removeValue(forKey: node) else { return effects }
        failures.append(Failure(node: node, reason: reason))
        if node == coordinator {
            settle(&effects)
            return effects
        }
        // A failed fallback is replaced in turn, for the same home replica.
        substitute(for: standIn ?? node, effects: &effects)
        settle(&effects)
        return effects
    }

    /// The replica timeout passed without an answer: stand in for it now, but
    /// still count its acknowledgement if it arrives.
    public mutating func replicaTimedOut(_ node: NodeID) -> [Effect] {
        var effects: [Effect] = []
        guard let standIn = outstanding.removeValue(forKey: node) else { return effects }
        timedOut[node] = standIn
        failures.append(Failure(node: node, reason: "no answer within the replica timeout"))
        substitute(for: standIn ?? node, effects: &effects)
        settle(&effects)
        return effects
    }

    /// The request's own timeout: answer with what is acknowledged now.
    public mutating func requestTimedOut() -> [Effect] {
        guard !finished else { return [] }
        finished = true
        var outcome = self.outcome
        outcome.failures.append(
            contentsOf: outstanding.keys.sorted().map { Failure(node: $0, reason: "no answer within the request timeout") })
        return [.finish(outcome)]
    }

    public var outcome: Outcome {
        Outcome(
            met: (sloppy ? homeAcks.count + hintedAcks.count : homeAcks.count) >= required,
            homeAcknowledgements: homeAcks.count, hintedAcknowledgements: hintedAcks.count, required: required,
            sloppy: sloppy, failures: failures)
    }

    private mutating func substitute(for home: NodeID, effects: inout [Effect]) {
        guard !fallbacks.isEmpty else { return }
        let fallback = fallbacks.removeFirst()
        outstanding[fallback] = .some(home)
        effects.append(.send(to: fallback, hintFor: home))
        effects.append(.startReplicaTimer(fallback))
    }

    private mutating func settle(_ effects: inout [Effect]) {
        guard !finished else { return }
        let outcome = self.outcome
        if outcome.met || outstanding.isEmpty {
            finished = true
            effects.append(.finish(outcome))
        }
    }
}
