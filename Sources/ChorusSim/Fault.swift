/// A fault injected at a point of simulated time.
public enum Fault: Sendable, Codable, Hashable {
    /// The node stops for good: it processes nothing more and its in-flight inbound
    /// datagrams are lost. It is expected dead everywhere within the detection bound.
    case crash(node: Int)
    /// The node processes nothing for `duration` (a GC pause, CPU starvation): its
    /// timers and inbound datagrams wait (up to the receive buffer) until it resumes.
    case pause(node: Int, duration: Duration)
    /// For `duration` the node is slow, not frozen (CPU starvation, a GC-heavy or
    /// overloaded process: the case Lifeguard §2 describes and its evaluation injects):
    /// it reads each inbound datagram (and TCP answer, and push-pull reply) `lag` after
    /// it arrived, in arrival order, and its timers fire `lag × timerLag` late — timers
    /// fire as soon as the process runs, while datagrams wait behind the backlog. So it
    /// sends pings on time but reads their acks late: without Lifeguard it times out
    /// its probes and suspects healthy members.
    case slow(node: Int, duration: Duration, lag: Duration, timerLag: Double)
    /// The partition is in force for `duration`, then heals; views must converge
    /// within the scenario's convergence bound after that.
    case partition(Partition, duration: Duration)
    /// The node changes its tags (a fresh alive update at a higher incarnation):
    /// the dissemination measurement follows this one update to every node.
    case announce(node: Int)
}

/// A fault and when it strikes, from the start of the run.
public struct ScheduledFault: Sendable, Codable, Hashable {
    public var at: Duration
    public var fault: Fault

    public init(at: Duration, _ fault: Fault) {
        self.at = at
        self.fault = fault
    }
}

/// What a paused node does first when it resumes.
public enum ResumeOrder: String, Sendable, Codable, Hashable {
    /// Timers that fell due during the pause fire before the datagrams that waited are
    /// read: the slow node times out probes whose acks sit unread in its buffer — the
    /// case Lifeguard §2 describes (and a Go runtime waking from a GC pause may do).
    case timersFirst
    /// Waiting datagrams are read first, then timers (SwiftNIO's loop order).
    case inboundFirst
}
