import ChorusCore

/// Counts what the nodes send, from the end of the warm-up on.
struct TrafficMeter {
    /// Bytes a sealed datagram adds to its plaintext: 2 + 1 + 4 + 24 + 16 = 47
    /// (ChorusCrypto `Sealer.overhead`; ChorusSim depends on ChorusCore only).
    static let sealOverhead = 47

    var windowStart: MonotonicTime = .zero
    var datagrams = 0
    var messages = 0
    var bytes = 0
    var tcpBytes = 0
    /// Lost to the network or a partition (all run long).
    var lost = 0
    var droppedWhilePaused = 0
    /// Dropped because a slow node's backlog filled its receive buffer.
    var droppedWhileSlow = 0

    mutating func sent(messages count: Int, bytes size: Int, at now: MonotonicTime) {
        guard now >= windowStart else { return }
        datagrams += 1
        messages += count
        bytes += size
    }

    mutating func sentOverTCP(_ updates: [MemberUpdate], at now: MonotonicTime) {
        guard now >= windowStart else { return }
        tcpBytes += updates.reduce(Self.sealOverhead) { $0 + SWIMCodec.encodedSize(of: .update($1)) }
    }
}
