import ChorusStorage
import CoreMetrics
import Foundation
import Testing

@testable import ChorusNode

/// A parsed Prometheus text exposition: sample values by series (`name{labels}` exactly as
/// rendered), and each family's HELP text and TYPE.
private struct Exposition {
    var samples: [String: Double] = [:]
    var help: [String: String] = [:]
    var type: [String: String] = [:]
    /// Family names in the order their TYPE lines appear.
    var families: [String] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst("# HELP ".count).split(separator: " ", maxSplits: 1)
                help[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst("# TYPE ".count).split(separator: " ")
                type[String(parts[0])] = String(parts[1])
                families.append(String(parts[0]))
            } else if let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) {
                samples[String(line[..<space])] = value
            } else {
                Issue.record("unparsable exposition line: \(line)")
            }
        }
    }

    /// The series named `name` (their samples' keys, labels included).
    func series(of name: String) -> [String] {
        samples.keys.filter { $0 == name || $0.hasPrefix(name + "{") }.sorted()
    }
}

private func scrape(_ metrics: AgentMetrics) -> Exposition {
    Exposition(metrics.exposition())
}

@Suite struct AgentMetricsTests {
    static let families: [String: String] = [
        "chorus_requests_total": "counter",
        "chorus_request_duration_seconds": "histogram",
        "chorus_replica_requests_total": "counter",
        "chorus_hints_pending_bytes": "gauge",
        "chorus_hints_stored_total": "counter",
        "chorus_hints_delivered_total": "counter",
        "chorus_hints_expired_total": "counter",
        "chorus_hints_dropped_total": "counter",
        "chorus_read_repairs_total": "counter",
        "chorus_read_speculations_total": "counter",
        "chorus_members": "gauge",
        "chorus_local_health": "gauge",
        "chorus_datagrams_total": "counter",
        "chorus_datagrams_dropped_total": "counter",
        "chorus_tcp_refused_total": "counter",
        "chorus_store_commits_total": "counter",
        "chorus_store_operations_total": "counter",
        "chorus_store_queued": "gauge",
        "chorus_store_read_only": "gauge",
        "chorus_antientropy_exchanges_total": "counter",
        "chorus_antientropy_keys_repaired_total": "counter",
        "chorus_antientropy_bytes_total": "counter",
        "chorus_tombstones_reaped_total": "counter",
    ]

    @Test func everyFamilyHasHelpAndTypeAndStartsAtZero() {
        let exposition = scrape(AgentMetrics())
        #expect(exposition.type == Self.families)
        for family in Self.families.keys {
            #expect(!(exposition.help[family] ?? "").isEmpty, "\(family) has no HELP")
        }
        #expect(exposition.families == exposition.families.sorted())
        #expect(exposition.samples.values.allSatisfy { $0 == 0 })
        // Every combination of the closed label sets exists from the first scrape.
        #expect(exposition.series(of: "chorus_requests_total").count == 3 * 7)
        #expect(exposition.series(of: "chorus_replica_requests_total").count == 2 * 3)
        #expect(exposition.series(of: "chorus_members").count == 5)
        #expect(exposition.samples[#"chorus_hints_dropped_total{reason="full"}"#] == 0)
        #expect(exposition.samples[#"chorus_tcp_refused_total{reason="auth_failed"}"#] == 0)
        #expect(exposition.series(of: "chorus_hints_pending").isEmpty)
    }

    @Test func requestsCountByOperationAndOutcomeAndTimeInSeconds() {
        let metrics = AgentMetrics()
        metrics.request("get", outcome: "ok", duration: .milliseconds(3))
        metrics.request("get", outcome: "ok", duration: .milliseconds(40))
        metrics.request("put", outcome: "quorum_failed", duration: .seconds(20))
        metrics.request("delete", outcome: "not_found", duration: .microseconds(100))
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_requests_total{operation="get",outcome="ok"}"#] == 2)
        #expect(exposition.samples[#"chorus_requests_total{operation="put",outcome="quorum_failed"}"#] == 1)
        #expect(exposition.samples[#"chorus_requests_total{operation="delete",outcome="not_found"}"#] == 1)
        #expect(exposition.samples[#"chorus_requests_total{operation="get",outcome="error"}"#] == 0)

        let get = "chorus_request_duration_seconds"
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="0.0005"}"#] == 0)
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="0.0025"}"#] == 0)
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="0.005"}"#] == 1)
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="0.05"}"#] == 2)
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="10.0"}"#] == 2)
        #expect(exposition.samples[#"\#(get)_bucket{operation="get",le="+Inf"}"#] == 2)
        #expect(exposition.samples[#"\#(get)_count{operation="get"}"#] == 2)
        let sum = exposition.samples[#"\#(get)_sum{operation="get"}"#] ?? 0
        #expect(abs(sum - 0.043) < 1e-9)
        // 20 s is past the last bucket: only +Inf holds it.
        #expect(exposition.samples[#"\#(get)_bucket{operation="put",le="10.0"}"#] == 0)
        #expect(exposition.samples[#"\#(get)_bucket{operation="put",le="+Inf"}"#] == 1)
        #expect(exposition.samples[#"\#(get)_bucket{operation="delete",le="0.0005"}"#] == 1)
        // 14 bounds from 0.5 ms to 10 s, plus +Inf, per operation.
        let bounds = exposition.series(of: "\(get)_bucket").filter { $0.contains(#"operation="get",le="#) }
        #expect(bounds.count == AgentMetrics.requestDurationBuckets.count + 1)
    }

    @Test func replicaRequestsReadRepairsAndStore() {
        let metrics = AgentMetrics()
        metrics.replicaRequest(kind: "write", outcome: "ok")
        metrics.replicaRequest(kind: "write", outcome: "ok")
        metrics.replicaRequest(kind: "read", outcome: "timeout")
        metrics.readRepair()
        metrics.readRepair(count: 2)
        metrics.readRepair(count: 0)
        var store = StoreStatistics()
        store.commits = 2
        store.operations = 30
        store.queued = 7
        metrics.observe(store)
        store.commits = 5
        store.operations = 41
        store.queued = 0
        metrics.observe(store)
        metrics.setStoreReadOnly(true)
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_replica_requests_total{kind="write",outcome="ok"}"#] == 2)
        #expect(exposition.samples[#"chorus_replica_requests_total{kind="read",outcome="timeout"}"#] == 1)
        #expect(exposition.samples[#"chorus_replica_requests_total{kind="read",outcome="ok"}"#] == 0)
        #expect(exposition.samples["chorus_read_repairs_total"] == 3)
        #expect(exposition.samples["chorus_store_commits_total"] == 5)
        #expect(exposition.samples["chorus_store_operations_total"] == 41)
        #expect(exposition.samples["chorus_store_queued"] == 0)
        #expect(exposition.samples["chorus_store_read_only"] == 1)
    }

    @Test func hintsCountAndPendingFollowTheLatestSnapshot() {
        let metrics = AgentMetrics()
        metrics.hintStored()
        metrics.hintStored()
        metrics.hintStored()
        metrics.hintDelivered()
        metrics.hintExpired(count: 5)
        metrics.hintExpired(count: 0)
        metrics.hintDropped(reason: "full")
        metrics.hintDropped(reason: "full")
        metrics.setHintsPending(["node-b": 7, "node-c": 2], bytes: 4096)
        var exposition = scrape(metrics)
        #expect(exposition.samples["chorus_hints_stored_total"] == 3)
        #expect(exposition.samples["chorus_hints_delivered_total"] == 1)
        #expect(exposition.samples["chorus_hints_expired_total"] == 5)
        #expect(exposition.samples[#"chorus_hints_dropped_total{reason="full"}"#] == 2)
        #expect(exposition.samples[#"chorus_hints_pending{target="node-b"}"#] == 7)
        #expect(exposition.samples[#"chorus_hints_pending{target="node-c"}"#] == 2)
        #expect(exposition.samples["chorus_hints_pending_bytes"] == 4096)
        #expect(exposition.type["chorus_hints_pending"] == "gauge")
        #expect(!(exposition.help["chorus_hints_pending"] ?? "").isEmpty)

        // node-b drained and left the summary: its series goes; node-c's is updated.
        metrics.setHintsPending(["node-c": 1], bytes: 100)
        exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_hints_pending{target="node-b"}"#] == nil)
        #expect(exposition.samples[#"chorus_hints_pending{target="node-c"}"#] == 1)
        #expect(exposition.samples["chorus_hints_pending_bytes"] == 100)

        metrics.setHintsPending([:], bytes: 0)
        exposition = scrape(metrics)
        #expect(exposition.series(of: "chorus_hints_pending").isEmpty)
        #expect(exposition.samples["chorus_hints_pending_bytes"] == 0)
    }

    @Test func hintTargetsAreCappedWithTheRestSummedIntoOther() {
        let metrics = AgentMetrics()
        var byTarget: [String: Int] = [:]
        for i in 0..<(MetricLabels.maxHintTargets + 10) { byTarget["node-\(i)"] = 1000 - i }
        metrics.setHintsPending(byTarget, bytes: 1)
        let exposition = scrape(metrics)
        let series = exposition.series(of: "chorus_hints_pending")
        #expect(series.count == MetricLabels.maxHintTargets)
        // The largest keep their own series; the 11 smallest are summed.
        #expect(exposition.samples[#"chorus_hints_pending{target="node-0"}"#] == 1000)
        let kept = MetricLabels.maxHintTargets - 1
        let summed = (kept..<(MetricLabels.maxHintTargets + 10)).reduce(0) { $0 + 1000 - $1 }
        #expect(exposition.samples[#"chorus_hints_pending{target="other"}"#] == Double(summed))
        #expect(exposition.samples[#"chorus_hints_pending{target="node-\#(kept)"}"#] == nil)
        #expect(series.map { exposition.samples[$0] ?? 0 }.reduce(0, +) == Double(byTarget.values.reduce(0, +)))
    }

    @Test func membersAndLocalHealthAreGauges() {
        let metrics = AgentMetrics()
        metrics.setMembers(["alive": 4, "suspect": 1, "dead": 0, "stopped": 0, "left": 2])
        metrics.setLocalHealth(3)
        var exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_members{status="alive"}"#] == 4)
        #expect(exposition.samples[#"chorus_members{status="suspect"}"#] == 1)
        #expect(exposition.samples[#"chorus_members{status="left"}"#] == 2)
        #expect(exposition.samples["chorus_local_health"] == 3)

        // A status missing from the snapshot reads zero; gauges go down as well as up.
        metrics.setMembers(["alive": 5])
        metrics.setLocalHealth(0)
        exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_members{status="alive"}"#] == 5)
        #expect(exposition.samples[#"chorus_members{status="suspect"}"#] == 0)
        #expect(exposition.samples[#"chorus_members{status="left"}"#] == 0)
        #expect(exposition.samples["chorus_local_health"] == 0)
    }

    @Test func transportCountersAdvanceByTheGrowthOfTheTotals() {
        let metrics = AgentMetrics()
        metrics.observeTransportTotals(
            datagramsIn: 10, datagramsOut: 12, datagramsDropped: ["replay": 2, "auth_failed": 1],
            tcpRefused: ["stale": 1])
        metrics.observeTransportTotals(
            datagramsIn: 15, datagramsOut: 12, datagramsDropped: ["replay": 3, "auth_failed": 1],
            tcpRefused: ["stale": 1, "oversize": 2])
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_datagrams_total{direction="in"}"#] == 15)
        #expect(exposition.samples[#"chorus_datagrams_total{direction="out"}"#] == 12)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="replay"}"#] == 3)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="auth_failed"}"#] == 1)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="too_short"}"#] == 0)
        #expect(exposition.samples[#"chorus_tcp_refused_total{reason="stale"}"#] == 1)
        #expect(exposition.samples[#"chorus_tcp_refused_total{reason="oversize"}"#] == 2)
    }

    @Test func statusSnapshotFeedsMembersHealthAndTransport() {
        let metrics = AgentMetrics()
        let status = StatusView(
            name: "a", id: "1", address: "127.0.0.1:7946", status: "alive", incarnation: 1, clusterName: "c",
            members: ["alive": 3, "dead": 1, "stopped": 0, "suspect": 0, "left": 0], uptimeSeconds: 1,
            localHealth: 2,
            datagrams: .init(in: 7, out: 9, bytesIn: 700, bytesOut: 900, dropped: ["stale": 4]),
            tcp: .init(requestsIn: 1, requestsOut: 1, requestFailures: 0, dropped: ["malformed": 1]),
            keyringVersion: 1)
        metrics.observe(status)
        metrics.observe(status)  // a second scrape of the same totals adds nothing
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_members{status="alive"}"#] == 3)
        #expect(exposition.samples[#"chorus_members{status="dead"}"#] == 1)
        #expect(exposition.samples["chorus_local_health"] == 2)
        #expect(exposition.samples[#"chorus_datagrams_total{direction="in"}"#] == 7)
        #expect(exposition.samples[#"chorus_datagrams_total{direction="out"}"#] == 9)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="stale"}"#] == 4)
        #expect(exposition.samples[#"chorus_tcp_refused_total{reason="malformed"}"#] == 1)
    }

    @Test func antiEntropyCountersAdvanceByTheGrowthOfItsTotals() {
        let metrics = AgentMetrics()
        func view(equal: UInt64, repaired: UInt64, failed: UInt64, keys: UInt64, reaped: UInt64) -> AntiEntropyView {
            AntiEntropyView(
                trees: 1, treesRebuilt: 1, keysIndexed: 10, rebuildSeconds: 0.1, exchanges: equal + repaired,
                exchangesEqual: equal, exchangesRepaired: repaired, exchangesFailed: failed, answered: 0, malformed: 0,
                keysRepaired: keys, udpBytes: 100 * equal, tcpBytes: 1000 * repaired, tombstonesReaped: reaped,
                catchUpPending: 0,
                partitionsExchanged: 1, partitionsReplicated: 1, oldestExchangeAgeSeconds: nil,
                newestExchangeAgeSeconds: nil)
        }
        metrics.observe(view(equal: 3, repaired: 1, failed: 2, keys: 5, reaped: 4))
        metrics.observe(view(equal: 3, repaired: 1, failed: 2, keys: 5, reaped: 4))  // same totals: nothing added
        metrics.observe(view(equal: 4, repaired: 2, failed: 2, keys: 7, reaped: 6))
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_antientropy_exchanges_total{outcome="equal"}"#] == 4)
        #expect(exposition.samples[#"chorus_antientropy_exchanges_total{outcome="repaired"}"#] == 2)
        #expect(exposition.samples[#"chorus_antientropy_exchanges_total{outcome="failed"}"#] == 2)
        #expect(exposition.samples["chorus_antientropy_keys_repaired_total"] == 7)
        #expect(exposition.samples[#"chorus_antientropy_bytes_total{transport="udp"}"#] == 400)
        #expect(exposition.samples[#"chorus_antientropy_bytes_total{transport="tcp"}"#] == 2000)
        #expect(exposition.samples["chorus_tombstones_reaped_total"] == 6)
        // The agent restarted its counting: growth from zero again.
        metrics.observe(view(equal: 1, repaired: 0, failed: 0, keys: 0, reaped: 1))
        #expect(scrape(metrics).samples["chorus_tombstones_reaped_total"] == 7)
    }

    @Test func labelValuesOutsideTheClosedSetsBecomeOther() {
        let metrics = AgentMetrics()
        metrics.request("scan", outcome: "ok", duration: .milliseconds(1))
        metrics.request("get", outcome: "teapot", duration: .milliseconds(1))
        metrics.request("GET", outcome: "OK", duration: .milliseconds(1))
        metrics.replicaRequest(kind: "handoff", outcome: "ok")
        metrics.replicaRequest(kind: "write", outcome: "refused")
        metrics.hintDropped(reason: "cosmic ray")
        metrics.hintDropped(reason: "\"quoted\"\nnewline")
        metrics.setMembers(["alive": 1, "zombie": 2, "undead": 3])
        metrics.observeTransportTotals(
            datagramsIn: 0, datagramsOut: 0, datagramsDropped: ["weird": 2, "odd": 3, "replay": 1],
            tcpRefused: ["bizarre": 1])
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_requests_total{operation="other",outcome="ok"}"#] == 1)
        #expect(exposition.samples[#"chorus_requests_total{operation="get",outcome="other"}"#] == 1)
        #expect(exposition.samples[#"chorus_requests_total{operation="other",outcome="other"}"#] == 1)
        #expect(exposition.samples[#"chorus_request_duration_seconds_count{operation="other"}"#] == 2)
        #expect(exposition.samples[#"chorus_replica_requests_total{kind="other",outcome="ok"}"#] == 1)
        #expect(exposition.samples[#"chorus_replica_requests_total{kind="write",outcome="other"}"#] == 1)
        #expect(exposition.samples[#"chorus_hints_dropped_total{reason="other"}"#] == 2)
        #expect(exposition.samples[#"chorus_members{status="other"}"#] == 5)
        #expect(exposition.samples[#"chorus_members{status="alive"}"#] == 1)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="other"}"#] == 5)
        #expect(exposition.samples[#"chorus_datagrams_dropped_total{reason="replay"}"#] == 1)
        #expect(exposition.samples[#"chorus_tcp_refused_total{reason="other"}"#] == 1)
        // No raw value leaked into a label.
        for series in exposition.samples.keys {
            let labels = series.drop { $0 != "{" }
            for raw in [
                "scan", "teapot", "GET", "handoff", "refused", "cosmic", "quoted", "zombie", "weird", "bizarre",
            ] {
                #expect(!labels.contains(raw), "\(series) carries \(raw)")
            }
        }
        // Only "other" was added: the number of series stays bounded however many odd values come.
        let before = exposition.samples.count
        for i in 0..<100 { metrics.hintDropped(reason: "reason-\(i)") }
        #expect(scrape(metrics).samples.count == before)
    }

    @Test func twoFacadesInOneProcessDoNotInterfere() {
        let a = AgentMetrics()
        let b = AgentMetrics()
        // One global bootstrap per process, whichever facade asks first; later asks change nothing.
        let aInstalled = a.bootstrapGlobalMetricsSystem()
        #expect(!b.bootstrapGlobalMetricsSystem())
        #expect(!a.bootstrapGlobalMetricsSystem())
        if aInstalled {
            // swift-metrics users land in the bootstrapping facade's registry only.
            CoreMetrics.Counter(label: "chorus_test_swift_metrics_total").increment(by: 2)
            #expect(scrape(a).samples["chorus_test_swift_metrics_total"] == 2)
            #expect(scrape(b).samples["chorus_test_swift_metrics_total"] == nil)
        }
        a.request("put", outcome: "ok", duration: .milliseconds(2))
        a.hintStored()
        a.setMembers(["alive": 3])
        a.setHintsPending(["node-x": 4], bytes: 10)
        b.request("get", outcome: "not_found", duration: .milliseconds(2))
        b.setMembers(["alive": 5])
        let ea = scrape(a)
        let eb = scrape(b)
        #expect(ea.samples[#"chorus_requests_total{operation="put",outcome="ok"}"#] == 1)
        #expect(ea.samples[#"chorus_requests_total{operation="get",outcome="not_found"}"#] == 0)
        #expect(eb.samples[#"chorus_requests_total{operation="put",outcome="ok"}"#] == 0)
        #expect(eb.samples[#"chorus_requests_total{operation="get",outcome="not_found"}"#] == 1)
        #expect(ea.samples["chorus_hints_stored_total"] == 1)
        #expect(eb.samples["chorus_hints_stored_total"] == 0)
        #expect(ea.samples[#"chorus_members{status="alive"}"#] == 3)
        #expect(eb.samples[#"chorus_members{status="alive"}"#] == 5)
        #expect(ea.samples[#"chorus_hints_pending{target="node-x"}"#] == 4)
        #expect(eb.series(of: "chorus_hints_pending").isEmpty)
    }

    @Test func concurrentRecordingLosesNothing() async {
        let metrics = AgentMetrics()
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<1000 {
                        metrics.request(i % 2 == 0 ? "get" : "put", outcome: "ok", duration: .microseconds(i))
                        metrics.hintStored()
                        if task == 0, i % 100 == 0 { _ = metrics.exposition() }
                    }
                }
            }
        }
        let exposition = scrape(metrics)
        #expect(exposition.samples[#"chorus_requests_total{operation="get",outcome="ok"}"#] == 4000)
        #expect(exposition.samples[#"chorus_requests_total{operation="put",outcome="ok"}"#] == 4000)
        #expect(exposition.samples[#"chorus_request_duration_seconds_count{operation="get"}"#] == 4000)
        #expect(exposition.samples["chorus_hints_stored_total"] == 8000)
    }

    @Test func metricsResponseIsPrometheusText() {
        let metrics = AgentMetrics()
        metrics.readRepair()
        let response = APIResponse.metrics(metrics)
        #expect(response.status == .ok)
        #expect(response.contentType == "text/plain; version=0.0.4; charset=utf-8")
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.hasSuffix("\n"))
        #expect(text.contains("\nchorus_read_repairs_total 1\n"))
        #expect(Exposition(text).samples == scrape(metrics).samples)
    }
}
