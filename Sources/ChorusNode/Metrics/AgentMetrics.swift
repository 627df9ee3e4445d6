import ChorusStorage
import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// The agent's Prometheus metrics, served on `GET /metrics`: the one place the rest of the agent
/// records into. Every method is synchronous, cheap and thread-safe (counters and gauges are
/// atomics; histograms and the few dynamic tables take a short lock).
///
/// Each facade owns its `PrometheusCollectorRegistry` and creates its metrics in it directly, so
/// several agents in one process (tests) never see each other's numbers. The agent also makes
/// its registry the process-wide swift-metrics backend, once per process, through
/// ``bootstrapGlobalMetricsSystem()``: anything recording through the swift-metrics API lands in
/// the same exposition (swift-metrics metrics carry no HELP text, so never give them a name
/// listed here: the registry refuses one name with two different HELP texts).
///
/// Label values are closed sets (``MetricLabels``); anything else is recorded as `other`.
///
/// | Metric | Type | Labels | HELP |
/// |---|---|---|---|
/// | `chorus_requests_total` | counter | `operation`, `outcome` | Client key-value requests answered, by operation and outcome. |
/// | `chorus_request_duration_seconds` | histogram | `operation` | Time to answer a client key-value request. |
/// | `chorus_replica_requests_total` | counter | `kind`, `outcome` | Requests this node sent to replicas as coordinator, by kind and outcome. |
/// | `chorus_hints_pending` | gauge | `target` | Hints held for a replica, by the node they are for. |
/// | `chorus_hints_pending_bytes` | gauge | | Total size of the hints held. |
/// | `chorus_hints_stored_total` | counter | | Hints stored for a replica that was down or slow. |
/// | `chorus_hints_delivered_total` | counter | | Hints delivered to their replica and deleted. |
/// | `chorus_hints_expired_total` | counter | | Hints deleted undelivered because they outlived the hint window. |
/// | `chorus_hints_dropped_total` | counter | `reason` | Hints not stored, by reason; anti-entropy repairs their keys later. |
/// | `chorus_read_repairs_total` | counter | | Read-repair writes sent to replicas that answered a read with an older or missing version. |
/// | `chorus_read_speculations_total` | counter | | Replicas a quorum read asked beyond its first R because one was slow (speculative retry). |
/// | `chorus_members` | gauge | `status` | Cluster members in this node's view, by SWIM status. |
/// | `chorus_local_health` | gauge | | This node's SWIM local health multiplier score (0 is healthy). |
/// | `chorus_datagrams_total` | counter | `direction` | Gossip datagrams received and sent. |
/// | `chorus_datagrams_dropped_total` | counter | `reason` | Gossip datagrams dropped, by reason. |
/// | `chorus_tcp_refused_total` | counter | `reason` | Cluster TCP sessions refused at handshake or cut for a bad frame, by reason. |
/// | `chorus_antientropy_exchanges_total` | counter | `outcome` | Anti-entropy exchanges this node started, by outcome: trees equal, differences repaired, or failed. |
/// | `chorus_antientropy_keys_repaired_total` | counter | | Keys anti-entropy repair moved to or from this node. |
/// | `chorus_antientropy_bytes_total` | counter | `transport` | Anti-entropy bytes: tree summaries over UDP, bulk repair over TCP. |
/// | `chorus_tombstones_reaped_total` | counter | | Tombstones this node physically removed once every home replica held them. |
/// | `chorus_store_commits_total` | counter | | Durable commits (commit groups) of the object store. |
/// | `chorus_store_operations_total` | counter | | Writes the object store made durable (operations over commits: the mean commit group). |
/// | `chorus_store_queued` | gauge | | Writes waiting for the object store's writer thread. |
/// | `chorus_store_read_only` | gauge | | 1 while the object store refuses writes (disk full, I/O error, or damage found while running), else 0. |
final class AgentMetrics: Sendable {
    /// The registry the exposition is rendered from.
    let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory over ``registry`` (what ``bootstrapGlobalMetricsSystem()`` installs).
    let factory: PrometheusMetricsFactory

    /// Upper bounds of `chorus_request_duration_seconds`: 0.5 ms to 10 s.
    static let requestDurationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    private let requests: LabeledMetric<Prometheus.Counter>
    private let requestDurations: LabeledMetric<DurationHistogram>
    private let replicaRequests: LabeledMetric<Prometheus.Counter>
    private let hintsStored: Prometheus.Counter
    private let hintsDelivered: Prometheus.Counter
    private let hintsExpired: Prometheus.Counter
    private let hintsDropped: LabeledMetric<Prometheus.Counter>
    private let hintsPendingBytes: Prometheus.Gauge
    /// `chorus_hints_pending` by target: targets come and go with the cluster, so this one is
    /// dynamic (and capped at ``MetricLabels/maxHintTargets``).
    private let hintsPending = NIOLockedValueBox<[String: Prometheus.Gauge]>([:])
    private let readRepairs: Prometheus.Counter
    private let readSpeculations: Prometheus.Counter
    private let members: LabeledMetric<Prometheus.Gauge>
    private let localHealth: Prometheus.Gauge
    private let datagrams: LabeledMetric<Prometheus.Counter>
    private let datagramsDropped: LabeledMetric<Prometheus.Counter>
    private let tcpRefused: LabeledMetric<Prometheus.Counter>
    /// The transport totals last seen by ``observeTransportTotals(datagramsIn:datagramsOut:datagramsDropped:tcpRefused:)``.
    private let transportTotals = NIOLockedValueBox<[TransportSeries: UInt64]>([:])
    private let antiEntropyExchanges: LabeledMetric<Prometheus.Counter>
    private let antiEntropyKeysRepaired: Prometheus.Counter
    private let antiEntropyBytes: LabeledMetric<Prometheus.Counter>
    private let tombstonesReaped: Prometheus.Counter
    /// The anti-entropy totals last seen by ``observe(_:)-(AntiEntropyView)``.
    private let antiEntropyTotals = NIOLockedValueBox<[AntiEntropySeries: UInt64]>([:])
    private let storeCommits: Prometheus.Counter
    private let storeOperations: Prometheus.Counter
    private let storeQueued: Prometheus.Gauge
    private let storeTotals = NIOLockedValueBox<[StoreSeries: UInt64]>([:])
    private let storeReadOnly: Prometheus.Gauge

    private enum StoreSeries: Hashable {
        case commits, operations
    }

    private enum AntiEntropySeries: Hashable {
        case exchanges(String)
        case keysRepaired
        case bytes(String)
        case tombstonesReaped
    }

    private enum TransportSeries: Hashable {
        case datagrams(String)
        case dropped(String)
        case refused(String)
    }

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)

        func counter(_ name: String, _ help: String) -> Prometheus.Counter {
            registry.makeCounter(descriptor: AgentMetrics.describe(name, help), labels: [])
        }
        func counters(_ name: String, _ help: String, _ labels: [(name: String, allowed: [String])])
            -> LabeledMetric<Prometheus.Counter>
        {
            LabeledMetric(labels: labels) {
                registry.makeCounter(descriptor: AgentMetrics.describe(name, help), labels: $0)
            }
        }
        func gauge(_ name: String, _ help: String) -> Prometheus.Gauge {
            registry.makeGauge(descriptor: AgentMetrics.describe(name, help), labels: [])
        }

        requests = counters(
            "chorus_requests_total", "Client key-value requests answered, by operation and outcome.",
            [("operation", MetricLabels.operations), ("outcome", MetricLabels.requestOutcomes)])
        let buckets = Self.requestDurationBuckets
        requestDurations = LabeledMetric(labels: [("operation", MetricLabels.operations)]) {
            registry.makeDurationHistogram(
                descriptor: AgentMetrics.describe(
                    "chorus_request_duration_seconds", "Time to answer a client key-value request."),
                labels: $0, buckets: buckets)
        }
        replicaRequests = counters(
            "chorus_replica_requests_total",
            "Requests this node sent to replicas as coordinator, by kind and outcome.",
            [("kind", MetricLabels.replicaKinds), ("outcome", MetricLabels.replicaOutcomes)])
        hintsStored = counter("chorus_hints_stored_total", "Hints stored for a replica that was down or slow.")
        hintsDelivered = counter("chorus_hints_delivered_total", "Hints delivered to their replica and deleted.")
        hintsExpired = counter(
            "chorus_hints_expired_total", "Hints deleted undelivered because they outlived the hint window.")
        hintsDropped = counters(
            "chorus_hints_dropped_total", "Hints not stored, by reason; anti-entropy repairs their keys later.",
            [("reason", MetricLabels.hintDropReasons)])
        hintsPendingBytes = gauge("chorus_hints_pending_bytes", "Total size of the hints held.")
        readRepairs = counter(
            "chorus_read_repairs_total",
            "Read-repair writes sent to replicas that answered a read with an older or missing version.")
        readSpeculations = counter(
            "chorus_read_speculations_total",
            "Replicas a quorum read asked beyond its first R because one was slow (speculative retry).")
        members = LabeledMetric(labels: [("status", MetricLabels.memberStatuses)]) {
            registry.makeGauge(
                descriptor: AgentMetrics.describe(
                    "chorus_members", "Cluster members in this node's view, by SWIM status."),
                labels: $0)
        }
        localHealth = gauge(
            "chorus_local_health", "This node's SWIM local health multiplier score (0 is healthy).")
        datagrams = counters(
            "chorus_datagrams_total", "Gossip datagrams received and sent.",
            [("direction", MetricLabels.directions)])
        datagramsDropped = counters(
            "chorus_datagrams_dropped_total", "Gossip datagrams dropped, by reason.",
            [("reason", MetricLabels.dropReasons)])
        tcpRefused = counters(
            "chorus_tcp_refused_total", "Cluster TCP sessions refused at handshake or cut for a bad frame, by reason.",
            [("reason", MetricLabels.dropReasons)])
        antiEntropyExchanges = counters(
            "chorus_antientropy_exchanges_total",
            "Anti-entropy exchanges this node started, by outcome: trees equal, differences repaired, or failed.",
            [("outcome", MetricLabels.antiEntropyOutcomes)])
        antiEntropyKeysRepaired = counter(
            "chorus_antientropy_keys_repaired_total", "Keys anti-entropy repair moved to or from this node.")
        antiEntropyBytes = counters(
            "chorus_antientropy_bytes_total", "Anti-entropy bytes: tree summaries over UDP, bulk repair over TCP.",
            [("transport", MetricLabels.antiEntropyTransports)])
        tombstonesReaped = counter(
            "chorus_tombstones_reaped_total",
            "Tombstones this node physically removed once every home replica held them.")
        storeCommits = counter("chorus_store_commits_total", "Durable commits (commit groups) of the object store.")
        storeOperations = counter(
            "chorus_store_operations_total",
            "Writes the object store made durable (operations over commits: the mean commit group).")
        storeQueued = gauge("chorus_store_queued", "Writes waiting for the object store's writer thread.")
        storeReadOnly = gauge(
            "chorus_store_read_only",
            "1 while the object store refuses writes (disk full, I/O error, or damage found while running), else 0.")
    }

    /// A descriptor for a metric named in full (`chorus_..._total`), with its HELP text.
    private static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    // MARK: Process-wide swift-metrics

    private static let globalBootstrap = NIOLockedValueBox(false)

    /// Installs ``factory`` as the process-wide swift-metrics backend unless some facade already
    /// did in this process (swift-metrics allows one bootstrap per process). Returns whether this
    /// call installed it.
    @discardableResult
    func bootstrapGlobalMetricsSystem() -> Bool {
        Self.globalBootstrap.withLockedValue { done in
            guard !done else { return false }
            MetricsSystem.bootstrap(factory)
            done = true
            return true
        }
    }

    // MARK: Client requests

    /// A client request answered: `operation` is `get`, `put` or `delete`; `outcome` one of
    /// ``MetricLabels/requestOutcomes``; `duration` from receiving the request to answering it.
    func request(_ operation: String, outcome: String, duration: Duration) {
        requests[operation, outcome].increment()
        requestDurations[operation].record(max(duration, .zero))
    }

    /// A request this node sent to a replica as coordinator finished: `kind` is `write` or
    /// `read`; `outcome` is `ok`, `error` or `timeout`.
    func replicaRequest(kind: String, outcome: String) {
        replicaRequests[kind, outcome].increment()
    }

    /// `count` read-repair writes sent (one per replica repaired).
    func readSpeculation() {
        readSpeculations.increment()
    }

    func readRepair(count: Int = 1) {
        if count > 0 { readRepairs.increment(by: Int64(count)) }
    }

    // MARK: Hinted handoff

    /// A hint durably stored for a replica.
    func hintStored() {
        hintsStored.increment()
    }

    /// A hint acknowledged by its target and deleted here.
    func hintDelivered() {
        hintsDelivered.increment()
    }

    /// `count` hints deleted undelivered for outliving the hint window.
    func hintExpired(count: Int = 1) {
        if count > 0 { hintsExpired.increment(by: Int64(count)) }
    }

    /// A hint not stored: `reason` is `full`, `disabled` or `error`.
    func hintDropped(reason: String) {
        hintsDropped[reason].increment()
    }

    /// The hints now held: count by target node, and their total bytes. Replaces the previous
    /// snapshot: a target missing from `byTarget` loses its series (nothing pending for it).
    /// Beyond ``MetricLabels/maxHintTargets`` targets, those with the fewest hints are summed
    /// into `target="other"`.
    func setHintsPending(_ byTarget: [String: Int], bytes: Int) {
        let ranked = byTarget.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var counts: [String: Int] = [:]
        if ranked.count <= MetricLabels.maxHintTargets {
            for (target, count) in ranked { counts[target] = count }
        } else {
            for (target, count) in ranked.prefix(MetricLabels.maxHintTargets - 1) { counts[target] = count }
            counts[MetricLabels.other, default: 0] += ranked.dropFirst(MetricLabels.maxHintTargets - 1).reduce(0) {
                $0 + $1.value
            }
        }
        hintsPending.withLockedValue { gauges in
            for (target, gauge) in gauges where counts[target] == nil {
                registry.unregisterGauge(gauge)
                gauges[target] = nil
            }
            for (target, count) in counts {
                let gauge =
                    gauges[target]
                    ?? registry.makeGauge(
                        descriptor: AgentMetrics.describe(
                            "chorus_hints_pending", "Hints held for a replica, by the node they are for."),
                        labels: [("target", target)])
                gauges[target] = gauge
                gauge.set(to: Double(count))
            }
        }
        hintsPendingBytes.set(to: Double(bytes))
    }

    // MARK: Membership and transport

    /// Members in this node's view by status (`MemberStatus.description`); statuses missing from
    /// `byStatus` are set to zero.
    func setMembers(_ byStatus: [String: Int]) {
        var counts: [String: Int] = [:]
        for (status, count) in byStatus {
            counts[MetricLabels.bounded(status, to: MetricLabels.memberStatuses), default: 0] += count
        }
        for status in MetricLabels.memberStatuses where counts[status] == nil { counts[status] = 0 }
        for (status, count) in counts { members[status].set(to: Double(count)) }
    }

    /// This node's SWIM local health score.
    func setLocalHealth(_ score: Int) {
        localHealth.set(to: Double(score))
    }

    /// Advances the transport counters to the membership service's running totals (its
    /// `DatagramCounters`, read at scrape time): each counter grows by what its total grew since
    /// the last call. Totals that went down (the source restarted) count from zero again.
    func observeTransportTotals(
        datagramsIn: UInt64, datagramsOut: UInt64, datagramsDropped: [String: UInt64], tcpRefused: [String: UInt64]
    ) {
        var totals: [TransportSeries: UInt64] = [.datagrams("in"): datagramsIn, .datagrams("out"): datagramsOut]
        for (reason, count) in datagramsDropped {
            totals[.dropped(MetricLabels.bounded(reason, to: MetricLabels.dropReasons)), default: 0] += count
        }
        for (reason, count) in tcpRefused {
            totals[.refused(MetricLabels.bounded(reason, to: MetricLabels.dropReasons)), default: 0] += count
        }
        Self.advance(transportTotals, to: totals) { series in
            switch series {
            case .datagrams(let direction): datagrams[direction]
            case .dropped(let reason): self.datagramsDropped[reason]
            case .refused(let reason): self.tcpRefused[reason]
            }
        }
    }

    /// Members, local health and transport totals from one `GET /v1/status` snapshot.
    func observe(_ status: StatusView) {
        setMembers(status.members)
        setLocalHealth(status.localHealth)
        observeTransportTotals(
            datagramsIn: status.datagrams.in, datagramsOut: status.datagrams.out,
            datagramsDropped: status.datagrams.dropped, tcpRefused: status.tcp.dropped)
    }

    // MARK: Anti-entropy

    /// Advances the anti-entropy counters to the component's running totals (its
    /// `AntiEntropyView`, read at scrape time, like ``observeTransportTotals(datagramsIn:datagramsOut:datagramsDropped:tcpRefused:)``):
    /// each counter grows by what its total grew since the last call, so nothing is counted
    /// twice; totals that went down (the source restarted) count from zero again.
    func observe(_ entropy: AntiEntropyView) {
        let totals: [AntiEntropySeries: UInt64] = [
            .exchanges("equal"): entropy.exchangesEqual, .exchanges("repaired"): entropy.exchangesRepaired,
            .exchanges("failed"): entropy.exchangesFailed, .keysRepaired: entropy.keysRepaired,
            .bytes("udp"): entropy.udpBytes, .bytes("tcp"): entropy.tcpBytes,
            .tombstonesReaped: entropy.tombstonesReaped,
        ]
        Self.advance(antiEntropyTotals, to: totals) { series in
            switch series {
            case .exchanges(let outcome): antiEntropyExchanges[outcome]
            case .keysRepaired: antiEntropyKeysRepaired
            case .bytes(let transport): antiEntropyBytes[transport]
            case .tombstonesReaped: tombstonesReaped
            }
        }
    }

    /// Grows each series' counter by what its running total grew since the last
    /// call, so nothing is counted twice; a total that went down (its source
    /// restarted) counts from zero again.
    private static func advance<Series: Hashable>(
        _ last: NIOLockedValueBox<[Series: UInt64]>, to totals: [Series: UInt64],
        counter: (Series) -> Prometheus.Counter
    ) {
        last.withLockedValue { last in
            for (series, total) in totals {
                let previous = last[series] ?? 0
                let delta = total >= previous ? total - previous : total
                last[series] = total
                if delta > 0 { counter(series).increment(by: Int64(clamping: delta)) }
            }
        }
    }

    // MARK: Store

    /// Advances the store counters to its running totals (read at scrape time, like
    /// ``observe(_:)-(AntiEntropyView)``) and sets its queue length.
    func observe(_ store: StoreStatistics) {
        let totals: [StoreSeries: UInt64] = [
            .commits: UInt64(max(0, store.commits)), .operations: UInt64(max(0, store.operations)),
        ]
        Self.advance(storeTotals, to: totals) { series in
            switch series {
            case .commits: storeCommits
            case .operations: storeOperations
            }
        }
        storeQueued.set(to: Double(store.queued))
    }

    /// Whether the store refuses writes now (`StoreHealth`, read at scrape time).
    func setStoreReadOnly(_ readOnly: Bool) {
        storeReadOnly.set(to: readOnly ? 1 : 0)
    }

    // MARK: Exposition

    /// Every metric in the Prometheus text format 0.0.4, families sorted by name.
    func exposition() -> String {
        var families: [(name: Substring, lines: [Substring])] = []
        for line in registry.emitToString().split(separator: "\n") {
            // Each family starts with its `# HELP` / `# TYPE` lines; samples follow them.
            if line.hasPrefix("# ") {
                let name = line.split(separator: " ", maxSplits: 3).dropFirst(2).first ?? ""
                if families.last?.name != name {
                    families.append((name, []))
                }
            }
            if families.isEmpty { families.append(("", [])) }
            families[families.count - 1].lines.append(line)
        }
        return families.sorted { $0.name < $1.name }.flatMap(\.lines).map { $0 + "\n" }.joined()
    }
}
