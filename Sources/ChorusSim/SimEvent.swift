import ChorusCore

/// One entry of the scheduler's queue.
enum SimEvent {
    /// The node's `nextDeadline`; stale when `generation` is not the node's current one.
    case tick(node: Int, generation: UInt32)
    case datagram(to: Int, from: Int, messages: [SWIMMessage])
    case tcpProbeAnswer(node: Int, sequence: UInt64, target: NodeID, reachable: Bool)
    /// Periodic push-pull with a live member, or (reconnect) with a dead one.
    case pushPullTimer(node: Int, reconnect: Bool)
    case pushPullRequest(from: Int, to: Int, state: [MemberUpdate])
    case pushPullReply(to: Int, from: Int, state: [MemberUpdate])
    /// `scenario.faults[index]` strikes.
    case fault(index: Int)
    case resume(node: Int)
    /// A slow node reads an inbound that waited `lag` (its backlog, in order).
    case lateInbound(node: Int, inbound: Inbound)
    case endSlow(node: Int)
    case heal(partition: Int)
    case detectionCheck(crash: Int)
    case convergenceCheck(partition: Int)
}

/// What waits for a paused node: read in order when it resumes.
enum Inbound {
    case datagram(from: Int, messages: [SWIMMessage])
    case tcpProbeAnswer(sequence: UInt64, target: NodeID, reachable: Bool)
    case merge(state: [MemberUpdate])
}
