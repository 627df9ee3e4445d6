import ChorusCore

/// The simulated datagram network: per-link latency, loss, duplication and
/// reordering. Partitions live in `PartitionTable`; whole-node faults in the simulator.
///
/// Latency of one datagram on the directed link a→b is
/// `base(a, b) + Exp(jitterMean)` where `base(a, b)` is fixed for the run, uniform in
/// `[minimumLatency, minimumLatency + linkSpread]` and derived from a hash of the
/// link and the run's seed (so it costs no draw and no memory per link). A
/// reordered datagram is held back by an extra `reorderDelay`, so later datagrams on
/// the same link overtake it; a duplicated one arrives twice with independent delays.
public struct NetworkModel: Sendable, Codable, Hashable {
    /// One-way latency floor (same rack: ~100–200 µs).
    public var minimumLatency: Duration = .microseconds(200)
    /// Spread of the per-link base latency above the floor.
    public var linkSpread: Duration = .microseconds(800)
    /// Mean of the exponential per-datagram jitter.
    public var jitterMean: Duration = .microseconds(300)
    /// Fraction of datagrams lost, on every link.
    public var loss: Double = 0
    /// Fraction of datagrams delivered twice.
    public var duplication: Double = 0
    /// Fraction of datagrams held back by `reorderDelay`.
    public var reordering: Double = 0
    public var reorderDelay: Duration = .milliseconds(20)
    /// Per directed link exceptions (a lossy NIC, a slow path).
    public var links: [LinkOverride] = []

    public init(loss: Double = 0) {
        self.loss = loss
    }

    /// A directed link with its own loss and extra latency.
    public struct LinkOverride: Sendable, Codable, Hashable {
        public var from: Int
        public var to: Int
        public var loss: Double
        public var extraLatency: Duration

        public init(from: Int, to: Int, loss: Double, extraLatency: Duration = .zero) {
            self.from = from
            self.to = to
            self.loss = loss
            self.extraLatency = extraLatency
        }
    }
}

/// The network as the simulator uses it: the model plus the per-run link salt.
struct SimNetwork {
    let model: NetworkModel
    let salt: UInt64
    private let overrides: [Int: NetworkModel.LinkOverride]
    private let nodeCount: Int

    init(model: NetworkModel, nodeCount: Int, salt: UInt64) {
        self.model = model
        self.salt = salt
        self.nodeCount = nodeCount
        var overrides: [Int: NetworkModel.LinkOverride] = [:]
        for link in model.links { overrides[link.from * nodeCount + link.to] = link }
        self.overrides = overrides
    }

    /// The fixed base latency of the directed link.
    func baseLatency(from: Int, to: Int) -> Duration {
        let spread = model.linkSpread.nanosecondsClamped
        var nanos = model.minimumLatency.nanosecondsClamped
        if spread > 0 {
            let hash = SimMath.mix(salt ^ (UInt64(from) << 32 | UInt64(to)))
            nanos += Int64(hash % UInt64(spread))
        }
        if let link = overrides[from * nodeCount + to] { nanos += link.extraLatency.nanosecondsClamped }
        return .nanoseconds(nanos)
    }

    /// One datagram's delay, drawn afresh.
    func latency(from: Int, to: Int, random: inout SeededRandom) -> Duration {
        baseLatency(from: from, to: to) + random.exponential(mean: model.jitterMean)
    }

    /// The delays after which copies of one datagram arrive: none when lost, two when
    /// duplicated. Draws in a fixed order, so the trace depends on the seed alone.
    func transmit(from: Int, to: Int, random: inout SeededRandom) -> [Duration] {
        let loss = overrides.isEmpty ? model.loss : (overrides[from * nodeCount + to]?.loss ?? model.loss)
        if random.chance(loss) { return [] }
        var delays = [latency(from: from, to: to, random: &random)]
        if random.chance(model.reordering) { delays[0] += model.reorderDelay }
        if random.chance(model.duplication) { delays.append(latency(from: from, to: to, random: &random)) }
        return delays
    }
}
