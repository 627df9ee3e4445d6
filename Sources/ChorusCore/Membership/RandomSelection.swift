/// The membership core's random choices (probe order, relays, gossip targets), all
/// drawn from the instance's one `SeededRandom` so a run replays from its seed.
extension SeededRandom {
    /// A uniform index in `0 ..< bound` (0 when `bound` ≤ 1), by Lemire's
    /// multiply-high, spelled out so a seed's sequence of choices is fixed by this
    /// code rather than by the standard library's version.
    mutating func uniformIndex(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let product = next().multipliedFullWidth(by: UInt64(bound))
        return Int(product.high)
    }

    /// Fisher–Yates shuffle with `uniformIndex(below:)`.
    mutating func fisherYatesShuffle<T>(_ elements: inout [T]) {
        guard elements.count > 1 else { return }
        for i in stride(from: elements.count - 1, to: 0, by: -1) {
            elements.swapAt(i, uniformIndex(below: i + 1))
        }
    }

    /// Up to `count` elements of `elements` in random order.
    mutating func randomSample<T>(_ elements: [T], count: Int) -> [T] {
        var pool = elements
        fisherYatesShuffle(&pool)
        return Array(pool.prefix(max(0, count)))
    }
}
