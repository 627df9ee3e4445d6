/// The messages of the SWIM protocol (SWIM §4, Lifeguard §3).
///
/// Several travel in one datagram: a probe and the gossip piggybacked on it.
public enum SWIMMessage: Hashable, Sendable {
    /// Direct probe. `target` names the intended receiver so a ping that reaches a
    /// different node on a reused address is ignored rather than acked.
    case ping(sequence: UInt64, target: NodeID)
    /// Ask the receiver to probe `target` at `targetAddress` on the sender's behalf
    /// (SWIM §3.1). `wantsNack` asks for a nack when the target does not answer
    /// (Lifeguard §3.1: a nack tells the requester that the relay itself is healthy).
    case pingRequest(sequence: UInt64, target: NodeID, targetAddress: Endpoint, wantsNack: Bool)
    /// Answer to a ping, or relayed answer to a ping request, for `sequence`.
    case ack(sequence: UInt64)
    /// A relay did not hear from the target in time (Lifeguard §3.1).
    case nack(sequence: UInt64)
    /// A membership update, piggybacked or gossiped (SWIM §4.2).
    case update(MemberUpdate)
    /// An anti-entropy summary (`ExchangeCodec` bytes, at most
    /// `SWIMCodec.maxAntiEntropyBytes`) riding the encrypted UDP channel (DESIGN §6).
    /// Not part of SWIM: the shell routes it to anti-entropy and `SWIMInstance` ignores it.
    case antiEntropy([UInt8])
}

/// One datagram's plaintext: who sent it, when, and a sequence number for the
/// replay window (DESIGN §7), followed by its messages.
public struct SWIMEnvelope: Hashable, Sendable {
    public var sender: NodeID
    /// Random per process start, so a restarted sender opens a fresh replay window.
    public var bootID: UInt64
    /// Increases by one per datagram within a boot.
    public var sequence: UInt64
    /// The sender's wall clock at send time, nanoseconds since the Unix epoch.
    public var sentAt: UInt64
    public var messages: [SWIMMessage]

    public init(sender: NodeID, bootID: UInt64, sequence: UInt64, sentAt: UInt64, messages: [SWIMMessage]) {
        self.sender = sender
        self.bootID = bootID
        self.sequence = sequence
        self.sentAt = sentAt
        self.messages = messages
    }
}
