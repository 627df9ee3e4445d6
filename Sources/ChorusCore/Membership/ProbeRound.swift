/// One probe round of this node (SWIM §4.3, Lifeguard §3.1, memberlist `probeNode`):
/// a direct ping, then — if no ack within the probe timeout — ping requests to
/// `indirectChecks` relays and a TCP probe, all answered or not by the end of the
/// probe interval.
struct ProbeRound: Hashable, Sendable {
    let sequence: UInt64
    let target: NodeID
    let address: Endpoint
    let started: MonotonicTime
    /// Direct-ack timeout: `probeTimeout × (localHealth + 1)`.
    let ackDeadline: MonotonicTime
    /// End of the round: `probeInterval × (localHealth + 1)` after the start.
    let end: MonotonicTime
    /// An ack arrived, direct or relayed: the round succeeded.
    var acked = false
    /// The ping requests and the TCP probe went out.
    var escalated = false
    /// Relays asked (with `wantsNack`): each owes an ack or a nack (Lifeguard §3.1).
    var relays: Set<NodeID> = []
    var nacksFrom: Set<NodeID> = []
    /// The TCP fallback reached the target (UDP alone failed).
    var reachableOverTCP = false

    /// Expected nacks that never came: each one counts against this node's own health
    /// (Lifeguard §4.3: "probe with missed nack").
    var missedNacks: Int { relays.subtracting(nacksFrom).count }
}

/// A probe this node runs on another's behalf after a ping request (SWIM §3.1).
struct RelayedProbe: Hashable, Sendable {
    let requester: Endpoint
    let originalSequence: UInt64
    let target: NodeID
    let wantsNack: Bool
    /// memberlist: a relay nacks after `probeTimeout × 0.8` without an ack, leaving the
    /// requester time to receive it within its own round.
    let nackDeadline: MonotonicTime
}

/// A forgotten member: stale updates about it (incarnation at most `incarnation`) are
/// ignored until `until`, so a reaped member is not resurrected by a peer that has not
/// reaped it yet (push-pull would otherwise bounce it back and forth).
struct Tombstone: Hashable, Sendable {
    let incarnation: UInt64
    let until: MonotonicTime
}
