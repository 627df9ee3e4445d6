import Foundation
import Testing

/// Tombstone reaping (DESIGN §4, §6) with real `chorus agent` processes on loopback:
/// a delete's tombstone is physically removed once the grace period has passed and
/// every home replica holds it, and a replica that was down during the delete never
/// brings the deleted value back. Observed through `?replica=local` reads: a tombstone
/// answers 404 *with* a context header (its causal history), a reaped key 404 without.
///
/// The tests own `127.0.41.x`.
@Suite("Tombstone reaping, real agents", .serialized)
struct TombstoneProcessTests {
    static func value(of key: String) -> String { "value of \(key)" }

    /// Three agents, n=3 (every node is a home replica of every key), a 1 s grace and
    /// a 200 ms anti-entropy (and reaper) interval.
    static let flags = [
        "--partitions", "64", "--anti-entropy-interval", "200ms", "--anti-entropy-concurrency", "2",
        "--tombstone-grace", "1s", "--max-hint-window", "1s",
    ]

    /// What `agent` itself stores for `key`: "value", "tombstone", "absent" or the status.
    static func localState(_ key: String, on agent: Agent) async throws -> String {
        let local = try await agent.kvGet(key, local: true)
        switch local.status {
        case 200: return local.text == value(of: key) ? "value" : "other value"
        case 404: return local.header("X-Chorus-Context") == nil ? "absent" : "tombstone"
        default: return "status \(local.status)"
        }
    }

    /// Keys whose local state on some agent is not `wanted`, as "node/key: state".
    static func notIn(_ wanted: String, keys: [String], on agents: [Agent]) async throws -> [String] {
        var wrong: [String] = []
        for agent in agents {
            for key in keys {
                let state = try await localState(key, on: agent)
                if state != wanted { wrong.append("\(agent.name)/\(key): \(state)") }
            }
        }
        return wrong
    }

    /// Writes `keys` on every replica (w=3). A write that missed w=3 (a replica slower
    /// than the replica timeout on a loaded machine, just after start) is written again
    /// with the context of what is there, so it replaces its own first attempt.
    static func writeAll(_ keys: [String], via agent: Agent) async throws {
        for key in keys {
            var put = try await agent.kvPut(key, value(of: key), w: "3")
            for _ in 0..<3 where put.status == 503 {
                try await Task.sleep(for: .milliseconds(500))
                let read = try await agent.kvGet(key, r: "all")
                put = try await agent.kvPut(key, value(of: key), w: "3", context: read.header("X-Chorus-Context"))
            }
            try #require(put.status == 204, "PUT \(key) w=3: \(put)")
        }
    }

    static func reapedTotal(_ cluster: AgentCluster, _ agents: [Agent]) async throws -> Double {
        try await cluster.metricSum("chorus_tombstones_reaped_total", over: agents)
    }

    @Test func deletedKeysAreReapedEverywhereAndStayDeleted() async throws {
        try await AgentCluster.run(subnet: 41, label: "tombstone-reap") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 1, extraArguments: Self.flags)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let keys = (0..<30).map { "reap-\($0)" }
            try await Self.writeAll(keys, via: agents[0])
            for (index, key) in keys.enumerated() {
                let agent = agents[index % 3]
                let read = try await agent.kvGet(key, r: "3")
                try #require(read.status == 200, "GET \(key): \(read)")
                let delete = try await agent.kvDelete(key, w: "3", context: read.header("X-Chorus-Context"))
                try #require(delete.status == 204, "DELETE \(key) w=3: \(delete)")
            }

            let started = ContinuousClock.now
            var wrong: [String] = []
            try await cluster.waitUntil("every replica reaped every tombstone", deadline: .seconds(90)) {
                wrong = try await Self.notIn("absent", keys: keys, on: agents)
                return wrong.isEmpty
            }
            print("tombstones: \(keys.count) keys reaped on 3 replicas \(ContinuousClock.now - started) after delete")
            let reaped = try await Self.reapedTotal(cluster, agents)
            #expect(reaped >= Double(keys.count * 3), "chorus_tombstones_reaped_total over the nodes: \(reaped)")

            // Several anti-entropy rounds later nothing came back, on any replica or
            // through a quorum read of all of them.
            try await Task.sleep(for: .seconds(2))
            wrong = try await Self.notIn("absent", keys: keys, on: agents)
            #expect(wrong.isEmpty, "reaped keys came back: \(wrong.prefix(5))")
            for key in keys {
                let read = try await agents[1].kvGet(key, r: "all")
                #expect(read.status == 404, "GET \(key) r=all after the reap: \(read)")
            }
            let metrics = try await cluster.metricsText(of: agents[0])
            for family in [
                "chorus_antientropy_exchanges_total", "chorus_antientropy_keys_repaired_total",
                "chorus_antientropy_bytes_total", "chorus_tombstones_reaped_total",
            ] {
                #expect(metrics.contains("# HELP \(family) "), "/metrics lacks \(family)")
            }
            #expect(Metrics.value(metrics, "chorus_antientropy_exchanges_total") > 0)
            #expect(Metrics.value(metrics, "chorus_antientropy_bytes_total", labels: ["transport": "udp"]) > 0)
        }
    }

    @Test func aReplicaDownDuringTheDeleteDoesNotResurrectTheValue() async throws {
        try await AgentCluster.run(subnet: 41, label: "tombstone-resurrect") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 11, extraArguments: Self.flags)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let stale = agents[2]
            let live = Array(agents.prefix(2))
            let keys = (0..<30).map { "undead-\($0)" }
            try await Self.writeAll(keys, via: agents[0])

            try await cluster.stopGracefully([stale], seenBy: live)
            for key in keys {
                let read = try await live[0].kvGet(key, r: "2")
                try #require(read.status == 200, "GET \(key) before delete: \(read)")
                let delete = try await live[0].kvDelete(key, w: "2", context: read.header("X-Chorus-Context"))
                try #require(delete.status == 204, "DELETE \(key) w=2 with \(stale.name) down: \(delete)")
            }

            // Well past the grace period, with one home replica down: nothing is reaped
            // (its stale copy would come back), the live replicas keep their tombstones.
            try await Task.sleep(for: .seconds(3))
            var wrong = try await Self.notIn("tombstone", keys: keys, on: live)
            #expect(wrong.isEmpty, "tombstones reaped while \(stale.name) was down: \(wrong.prefix(5))")
            #expect(try await Self.reapedTotal(cluster, live) == 0)

            try cluster.restart(stale)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing([stale])

            // Anti-entropy brings the tombstone to the returning replica, then the
            // primaries reap everywhere. The deleted value never shows on a live replica.
            let started = ContinuousClock.now
            var resurrected: [String] = []
            try await cluster.waitUntil(
                "every replica reaped every tombstone after \(stale.name) returned", deadline: .seconds(120)
            ) {
                for agent in live {
                    for key in keys {
                        let state = try await Self.localState(key, on: agent)
                        if state == "value" { resurrected.append("\(agent.name)/\(key)") }
                    }
                }
                wrong = try await Self.notIn("absent", keys: keys, on: agents)
                return wrong.isEmpty
            }
            print("tombstones: reaped on 3 replicas \(ContinuousClock.now - started) after \(stale.name) returned")
            #expect(resurrected.isEmpty, "the deleted value came back: \(resurrected.prefix(5))")

            try await Task.sleep(for: .seconds(2))
            wrong = try await Self.notIn("absent", keys: keys, on: agents)
            #expect(wrong.isEmpty, "reaped keys came back: \(wrong.prefix(5))")
            for key in keys {
                let read = try await live[1].kvGet(key, r: "all")
                #expect(read.status == 404, "GET \(key) r=all after \(stale.name) returned: \(read)")
            }
        }
    }
}
