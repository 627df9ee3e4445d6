/// Traffic and drop counters for `chorus status` (DESIGN §7: anything dropped is
/// counted by reason).
struct DatagramCounters: Sendable {
    var datagramsIn: UInt64 = 0
    var datagramsOut: UInt64 = 0
    var bytesIn: UInt64 = 0
    var bytesOut: UInt64 = 0
    /// Datagrams dropped, by reason: `too_short`, `bad_magic`, `bad_version`,
    /// `unknown_key`, `auth_failed`, `oversize`, `malformed`, `replay`, `stale`.
    var dropped: [String: UInt64] = [:]
    /// Membership requests (push-pull, probes, key rotation) received over sessions.
    var tcpRequestsIn: UInt64 = 0
    /// TCP sessions refused at handshake or cut for a bad frame, by reason
    /// (same labels as datagrams, plus `stale` hellos), and `unsupported`: requests of a
    /// message type this version does not know, refused while the session stays.
    var tcpDropped: [String: UInt64] = [:]

    mutating func drop(_ reason: String) {
        dropped[reason, default: 0] += 1
    }

    mutating func dropTCP(_ reason: String) {
        tcpDropped[reason, default: 0] += 1
    }
}
