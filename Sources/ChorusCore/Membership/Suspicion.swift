/// One suspicion timer with Lifeguard's dynamic timeout (Lifeguard §3.2, memberlist
/// `suspicion.go`).
///
/// The timeout starts at `maximum` and falls towards `minimum` as independent peers
/// confirm the suspicion: after `c` confirmations it is
/// `max(minimum, maximum − log(c+1)/log(k+1) × (maximum − minimum))`, measured from
/// the start of the suspicion. With no confirmations expected (`k < 1`) it is
/// `minimum` from the start.
struct Suspicion: Hashable, Sendable {
    /// When this node began suspecting.
    let start: MonotonicTime
    /// Expected confirmations, Lifeguard's K.
    let expected: Int
    let minimum: Duration
    let maximum: Duration
    /// Sources already counted: the first suspecter and each confirmer.
    private(set) var sources: Set<NodeID>
    /// Independent confirmations so far (the first suspecter excluded).
    private(set) var confirmations: Int = 0

    init(
        from source: NodeID, start: MonotonicTime, expected: Int, minimum: Duration, maximum: Duration
    ) {
        self.start = start
        self.expected = max(0, expected)
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.sources = [source]
    }

    /// The suspicion timeout's floor for a view of `members` nodes:
    /// `suspicionMult × max(1, log10(n)) × probeInterval` (memberlist `suspicionTimeout`).
    static func minimumTimeout(suspicionMult: Int, members: Int, probeInterval: Duration) -> Duration {
        let scale = max(1.0, Self.naturalLog(Double(max(1, members))) / Self.naturalLog(10))
        return probeInterval.scaled(by: Double(suspicionMult) * scale)
    }

    /// Lifeguard's K: `suspicionMult − 2` (the suspecter and the suspect take no part),
    /// fewer when the view has fewer other members to confirm, never negative.
    static func expectedConfirmations(suspicionMult: Int, members: Int) -> Int {
        max(0, min(suspicionMult - 2, members - 2))
    }

    /// Counts `source` as an independent confirmation. Returns false (nothing new, do
    /// not re-gossip) when it was already counted or enough confirmations arrived.
    mutating func confirm(from source: NodeID) -> Bool {
        guard confirmations < expected, !sources.contains(source) else { return false }
        sources.insert(source)
        confirmations += 1
        return true
    }

    /// The current timeout, measured from `start`.
    var timeout: Duration {
        guard expected >= 1 else { return minimum }
        let fraction =
            Self.naturalLog(Double(confirmations) + 1) / Self.naturalLog(Double(expected) + 1)
        let span = (maximum - minimum).seconds
        let raw = maximum.seconds - fraction * span
        let timeout = Duration.nanoseconds(Int64((raw * 1e9).rounded(.down)))
        return max(minimum, timeout)
    }

    /// When the suspect is declared dead unless it refutes.
    var deadline: MonotonicTime { start + timeout }
}

extension Suspicion {
    /// Natural logarithm of a positive finite `x`, in pure Swift: ChorusCore imports no C
    /// math library, and one implementation everywhere keeps simulated runs bit-identical
    /// across platforms. `x = m × 2^e` with `m` in [1, 2), then
    /// `ln m = 2 atanh((m − 1)/(m + 1))` by its series (|z| ≤ 1/3, so 30 terms are plenty).
    static func naturalLog(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        let exponent = Double(x.exponent)
        let mantissa = x.significand
        let z = (mantissa - 1) / (mantissa + 1)
        let zSquared = z * z
        var term = z
        var sum = 0.0
        for k in 0..<30 {
            sum += term / Double(2 * k + 1)
            term *= zSquared
        }
        return exponent * 0.693_147_180_559_945_3 + 2 * sum
    }
}
