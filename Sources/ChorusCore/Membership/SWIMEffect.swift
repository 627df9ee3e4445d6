/// What the SWIM core asks its shell to do (swift-cluster-membership's directives).
public enum SWIMEffect: Hashable, Sendable {
    /// Send these messages in one datagram to `address`.
    case send([SWIMMessage], to: Endpoint)
    /// Direct UDP probe of `target` timed out: also probe it over TCP (memberlist's
    /// fallback), and report with `SWIMInstance.tcpProbeAnswered(sequence:target:now:)`.
    case probeOverTCP(sequence: UInt64, target: NodeID, address: Endpoint)
    /// A member's state changed in this node's view (for logs and listeners).
    case memberChanged(MemberChange)
}

/// A change of one member's state in the local view.
public struct MemberChange: Hashable, Sendable {
    /// Nil when the member was new to this view.
    public var previous: MemberStatus?
    /// Nil when the member was reaped (forgotten).
    public var current: MemberStatus?
    public var member: Member

    public init(previous: MemberStatus?, current: MemberStatus?, member: Member) {
        self.previous = previous
        self.current = current
        self.member = member
    }
}

/// Verdict on a node asking to join through push-pull.
public enum JoinDecision: Hashable, Sendable {
    case accept
    case refuse(reason: String)
}

/// Per-peer probe observations, for `chorus members --detailed`.
public struct ProbeStats: Hashable, Sendable {
    /// Round-trip time of the last successful direct probe.
    public var lastRoundTrip: Duration?
    /// False when the last probe round got an answer only over TCP (UDP is blocked).
    public var reachableOverUDP: Bool

    public init(lastRoundTrip: Duration? = nil, reachableOverUDP: Bool = true) {
        self.lastRoundTrip = lastRoundTrip
        self.reachableOverUDP = reachableOverUDP
    }
}
