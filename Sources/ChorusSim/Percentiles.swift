/// Summary of a sample of latencies, in seconds (nearest-rank percentiles).
public struct Percentiles: Sendable, Codable, Hashable {
    public var count: Int
    public var p50: Double
    public var p99: Double
    public var max: Double

    public init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        func rank(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Int((q * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
        }
        p50 = rank(0.5)
        p99 = rank(0.99)
        max = sorted.last ?? 0
    }
}
