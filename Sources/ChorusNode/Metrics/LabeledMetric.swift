/// One metric family whose label values come from closed sets (``MetricLabels``): every
/// combination of allowed values is created up front, so the series exist (at zero) from the
/// first scrape and looking one up is a read of an immutable dictionary, with no lock. A value
/// outside its set is recorded as ``MetricLabels/other``; those series are created on first use
/// (the registry hands back the same metric for the same labels).
struct LabeledMetric<Metric: Sendable>: Sendable {
    private let names: [String]
    private let allowed: [[String]]
    private let known: [[String]: Metric]
    private let make: @Sendable ([(String, String)]) -> Metric

    /// `labels` in exposition order, each with its allowed values; `make` creates (or returns the
    /// registry's existing) metric for one label set.
    init(labels: [(name: String, allowed: [String])], make: @escaping @Sendable ([(String, String)]) -> Metric) {
        self.names = labels.map(\.name)
        self.allowed = labels.map(\.allowed)
        self.make = make
        var combinations: [[String]] = [[]]
        for (_, values) in labels {
            combinations = combinations.flatMap { prefix in values.map { prefix + [$0] } }
        }
        var known: [[String]: Metric] = [:]
        for values in combinations {
            known[values] = make(Array(zip(names, values)))
        }
        self.known = known
    }

    /// The metric for these label values, in the order the labels were declared.
    subscript(_ values: String...) -> Metric {
        precondition(values.count == names.count, "expected labels \(names)")
        let bounded = zip(values, allowed).map { MetricLabels.bounded($0, to: $1) }
        return known[bounded] ?? make(Array(zip(names, bounded)))
    }
}
