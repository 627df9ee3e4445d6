/// Lifeguard's local health multiplier (Lifeguard §4.3, memberlist `awareness.go`).
///
/// A node that misses acks and nacks is more likely the slow one itself (CPU
/// starvation, a saturated NIC) than its peers: it stretches its own probe interval and
/// probe timeout by `score + 1` instead of suspecting healthy peers.
struct LocalHealth: Hashable, Sendable {
    /// 0 (healthy) ... `maximum - 1`.
    private(set) var score: Int = 0
    /// Lifeguard's S: the multiplier ceiling (memberlist `AwarenessMaxMultiplier`, 8).
    let maximum: Int

    init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Lifeguard §4.3 events: +1 failed probe, +1 per missed nack, +1 refuting a
    /// suspicion of self, -1 successful probe. Clamped to `0 ..< maximum`.
    mutating func apply(_ delta: Int) {
        score = min(max(score + delta, 0), maximum - 1)
    }

    /// `timeout` scaled by the multiplier, `timeout × (score + 1)`.
    func scale(_ timeout: Duration) -> Duration {
        timeout * (score + 1)
    }
}
