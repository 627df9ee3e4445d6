/// Drops replayed and stale datagrams (DESIGN §7; memberlist has no replay
/// protection). Every sealed datagram carries its sender's id, a boot id, a
/// per-boot sequence number and the sender's wall-clock send time; this window,
/// per sender, accepts each (boot, sequence) once, like the anti-replay window of
/// IPsec ESP (RFC 4303 §3.4.3).
///
/// Pure: the caller supplies the wall clock.
public struct ReplayWindow: Sendable {
    public enum Verdict: Hashable, Sendable {
        case accept
        /// The same (boot, sequence) was seen already, or it fell behind the window.
        case replay
        /// Sent too long ago (or too far in the future) by the sender's clock, or by
        /// a boot older than the sender's current one.
        case stale
    }

    /// How far a datagram's send time may be from our clock. Generous, because it
    /// only bounds how long a captured datagram stays replayable against a node
    /// that has never heard from the sender; the sequence window does the rest.
    public var maxClockDistance: Duration
    /// Sequences remembered behind the highest seen (RFC 4303 suggests ≥ 64).
    public static let windowSize: UInt64 = 1024
    /// Senders remembered; the least recently heard is forgotten beyond this.
    public var maxSenders: Int

    private struct SenderWindow: Sendable {
        var bootID: UInt64
        var bootFirstSentAt: UInt64
        var highest: UInt64
        var seen: [UInt64]  // bitmap of windowSize bits; bit (seq % windowSize)
        var lastHeard: UInt64
    }

    private var senders: [NodeID: SenderWindow] = [:]

    public init(maxClockDistance: Duration = .seconds(600), maxSenders: Int = 16_384) {
        self.maxClockDistance = maxClockDistance
        self.maxSenders = maxSenders
    }

    /// Decides whether to accept a datagram; records it when accepted.
    /// `wallNow` and `sentAt` are nanoseconds since the Unix epoch.
    public mutating func admit(
        sender: NodeID, bootID: UInt64, sequence: UInt64, sentAt: UInt64, wallNow: UInt64
    ) -> Verdict {
        let tolerance = UInt64(max(0, maxClockDistance.nanosecondsClamped))
        let distance = sentAt > wallNow ? sentAt - wallNow : wallNow - sentAt
        guard distance <= tolerance else { return .stale }

        guard var window = senders[sender] else {
            if senders.count >= maxSenders { evictLeastRecentlyHeard() }
            senders[sender] = Self.fresh(bootID: bootID, sequence: sequence, sentAt: sentAt, wallNow: wallNow)
            return .accept
        }
        if window.bootID != bootID {
            // A new boot must be newer than the one we know; an older boot's datagram
            // is a replay from a previous life of the sender.
            guard sentAt > window.bootFirstSentAt else { return .stale }
            senders[sender] = Self.fresh(bootID: bootID, sequence: sequence, sentAt: sentAt, wallNow: wallNow)
            return .accept
        }
        if sequence > window.highest {
            let shift = sequence - window.highest
            if shift >= Self.windowSize {
                window.seen = Array(repeating: 0, count: Int(Self.windowSize / 64))
            } else {
                var s = window.highest + 1
                while s < sequence {  // clear the bits the window slides over
                    Self.clear(&window.seen, s)
                    s += 1
                }
            }
            window.highest = sequence
            Self.set(&window.seen, sequence)
        } else {
            guard window.highest - sequence < Self.windowSize else { return .replay }
            guard !Self.isSet(window.seen, sequence) else { return .replay }
            Self.set(&window.seen, sequence)
        }
        window.lastHeard = wallNow
        senders[sender] = window
        return .accept
    }

    /// Forget a sender (for example one that was reaped).
    public mutating func forget(_ sender: NodeID) {
        senders[sender] = nil
    }

    private static func fresh(bootID: UInt64, sequence: UInt64, sentAt: UInt64, wallNow: UInt64) -> SenderWindow {
        var seen = Array(repeating: UInt64(0), count: Int(windowSize / 64))
        set(&seen, sequence)
        return SenderWindow(
            bootID: bootID, bootFirstSentAt: sentAt, highest: sequence, seen: seen, lastHeard: wallNow)
    }

    private mutating func evictLeastRecentlyHeard() {
        if let oldest = senders.min(by: { $0.value.lastHeard < $1.value.lastHeard })?.key {
            senders[oldest] = nil
        }
    }

    private static func bit(_ sequence: UInt64) -> (word: Int, mask: UInt64) {
        let index = sequence % windowSize
        return (Int(index / 64), 1 << (index % 64))
    }

    private static func set(_ bits: inout [UInt64], _ sequence: UInt64) {
        let (word, mask) = bit(sequence)
        bits[word] |= mask
    }

    private static func clear(_ bits: inout [UInt64], _ sequence: UInt64) {
        let (word, mask) = bit(sequence)
        bits[word] &= ~mask
    }

    private static func isSet(_ bits: [UInt64], _ sequence: UInt64) -> Bool {
        let (word, mask) = bit(sequence)
        return bits[word] & mask != 0
    }
}
