import ChorusCore

/// The simulator's draws from its one `SeededRandom` (uniforms, coin flips,
/// exponential jitter). Spelled out here, not taken from the standard library, so a
/// seed's sequence of choices is fixed by this code on every platform.
extension SeededRandom {
    /// Uniform in [0, 1), 53 bits.
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// True with probability `p` (never for p ≤ 0, without drawing).
    mutating func chance(_ p: Double) -> Bool {
        guard p > 0 else { return false }
        return unit() < p
    }

    /// Uniform index in `0 ..< bound` (0 when bound ≤ 1), Lemire's multiply-high.
    mutating func index(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Uniform duration in [low, high].
    mutating func duration(between low: Duration, and high: Duration) -> Duration {
        let lo = low.nanosecondsClamped
        let hi = max(lo, high.nanosecondsClamped)
        return .nanoseconds(lo + Int64(unit() * Double(hi - lo)))
    }

    /// Exponentially distributed with the given mean (0 for a zero mean).
    mutating func exponential(mean: Duration) -> Duration {
        let nanos = mean.nanosecondsClamped
        guard nanos > 0 else { return .zero }
        let u = 1 - unit()  // (0, 1]
        let sample = -SimMath.log(u) * Double(nanos)
        return .nanoseconds(Int64(min(sample, Double(nanos) * 50)))
    }

    /// `count` distinct indices of `0 ..< bound`, in random order.
    mutating func distinctIndices(_ count: Int, below bound: Int, excluding: Set<Int> = []) -> [Int] {
        var pool = (0..<bound).filter { !excluding.contains($0) }
        var chosen: [Int] = []
        while chosen.count < count, !pool.isEmpty {
            chosen.append(pool.remove(at: index(below: pool.count)))
        }
        return chosen
    }
}

/// Pure-Swift math, so simulated runs are bit-identical everywhere.
enum SimMath {
    /// Natural logarithm of a positive finite `x`: `x = m × 2^e`, `ln m = 2 atanh((m−1)/(m+1))`.
    static func log(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return x == 0 ? -.infinity : .nan }
        let mantissa = x.significand
        let z = (mantissa - 1) / (mantissa + 1)
        let zSquared = z * z
        var term = z
        var sum = 0.0
        for k in 0..<30 {
            sum += term / Double(2 * k + 1)
            term *= zSquared
        }
        return Double(x.exponent) * 0.693_147_180_559_945_3 + 2 * sum
    }

    static func log2(_ x: Double) -> Double { log(x) / 0.693_147_180_559_945_3 }
    static func log10(_ x: Double) -> Double { log(x) / 2.302_585_092_994_045_7 }

    /// SplitMix64 finaliser: a fixed hash of one word.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
