import Foundation
import Testing

/// Anti-entropy (DESIGN §6) as operators see it: real `chorus agent` processes on
/// loopback with hinted handoff off, so only the Merkle exchanges can bring a replica
/// that missed writes up to date; observed through `?replica=local` reads (one node's
/// own copy, never a coordinated read, so no read repair) and `chorus repair`.
///
/// The tests own `127.0.34.x`.
@Suite("Anti-entropy, real agents", .serialized)
struct AntiEntropyProcessTests {
    static func value(of key: String) -> String { "value of \(key)" }

    /// Three agents, n=3: every node is a home replica of every key. 64 partitions and
    /// a 200 ms interval make a full sweep take seconds instead of hours.
    static let flags = [
        "--partitions", "64", "--anti-entropy-interval", "200ms", "--anti-entropy-concurrency", "2",
    ]

    struct RepairReport: Decodable {
        var partitions: Int
        var keysRepaired: Int
        var udpBytes: Int
        var tcpBytes: Int
        var failed: Int
        var running: Bool

        enum CodingKeys: String, CodingKey {
            case partitions, failed, running
            case keysRepaired = "keys_repaired"
            case udpBytes = "udp_bytes"
            case tcpBytes = "tcp_bytes"
        }
    }

    /// `GET /v1/antientropy/roots`: partition number (as a string) → root hash (hex).
    static func roots(of agent: Agent) async throws -> [String: String] {
        let response = try await KVHTTP.request("GET", agent.httpAddress, "/v1/antientropy/roots")
        guard response.status == 200 else {
            throw HarnessError("GET /v1/antientropy/roots on \(agent.name): \(response)")
        }
        return try response.decode([String: String].self)
    }

    /// Writes every key (its `value(of:)`) with w=2, through `nodes` in turn; every
    /// write must succeed.
    static func write(_ keys: [String], w2Via nodes: [Agent]) async throws {
        let addresses = nodes.map(\.httpAddress)
        let puts = try await HandoffRequests.parallelMap(Array(keys.enumerated())) { pair in
            try await HandoffRequests.put(
                pair.element, Self.value(of: pair.element), w: "2", via: addresses[pair.offset % addresses.count])
        }
        let failed = zip(keys, puts).filter { $0.1.status != 204 }
        try #require(failed.isEmpty, "\(failed.count) writes failed, first: \(failed.prefix(3))")
    }

    /// Polls `agent`'s own copies (`?replica=local`, no read repair) until it holds every
    /// key of `keys` with its value.
    static func waitUntil(_ agent: Agent, holds keys: [String], in cluster: AgentCluster, deadline: Duration)
        async throws
    {
        let address = agent.httpAddress
        try await cluster.waitUntil("\(agent.name) holds every key it should", deadline: deadline) {
            let absent = try await HandoffRequests.parallelMap(keys, width: 8) { key -> Bool in
                let local = try await HandoffRequests.localGet(key, via: address)
                return !(local.status == 200 && local.text == Self.value(of: key))
            }
            return !absent.contains(true)
        }
    }

    @Test func aReplicaThatMissedWritesConvergesWithoutAnyClientRead() async throws {
        try await AgentCluster.run(subnet: 34, label: "anti-entropy-converge") { cluster in
            let config = cluster.root.appendingPathComponent("chorus.toml")
            // A 5 s replica timeout: the 2,000 w=2 writes below need both live replicas,
            // and on a loaded CI machine one answered a write after more than the default
            // second once (this test is about anti-entropy, not write latency).
            try "hinted_handoff = false\n[store]\nreplica_timeout = \"5s\"\n".write(
                to: config, atomically: true, encoding: .utf8)
            let agents = try cluster.startNodes(
                3, firstHost: 1, extraArguments: ["--config", config.path] + Self.flags)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let stale = agents[2]
            let live = Array(agents.prefix(2))

            // Keys every replica holds, deleted (with their context) while one is down.
            let doomed = (0..<50).map { "ae-deleted-\($0)" }
            for key in doomed {
                let put = try await live[0].kvPut(key, Self.value(of: key), w: "3")
                try #require(put.status == 204, "PUT \(key) w=3: \(put)")
            }

            try await cluster.stopGracefully([stale], seenBy: live)

            // 2,000 writes with w=2 while the third replica is down.
            let keys = (0..<2000).map { "ae-\($0)" }
            try await Self.write(keys, w2Via: live)
            for key in doomed {
                let read = try await live[1].kvGet(key, r: "2")
                try #require(read.status == 200, "GET \(key) before delete: \(read)")
                let delete = try await live[1].kvDelete(key, w: "2", context: read.header("X-Chorus-Context"))
                try #require(delete.status == 204, "DELETE \(key) w=2: \(delete)")
            }

            let started = ContinuousClock.now
            try cluster.restart(stale)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing([stale])

            // No client read: only anti-entropy can bring the keys.
            try await Self.waitUntil(stale, holds: keys, in: cluster, deadline: .seconds(120))
            let converged = ContinuousClock.now - started
            print("anti-entropy: \(stale.name) converged on \(keys.count) keys \(converged) after its restart")

            // Every key on every home replica (all three), and no delete came back.
            for agent in agents {
                let address = agent.httpAddress
                let wrong = try await HandoffRequests.parallelMap(keys, width: 8) { key -> String? in
                    let local = try await HandoffRequests.localGet(key, via: address)
                    return local.status == 200 && local.text == Self.value(of: key) ? nil : "\(key): \(local.status)"
                }.compactMap { $0 }
                #expect(wrong.isEmpty, "\(agent.name) lacks \(wrong.count) keys, first: \(wrong.prefix(5))")
                for key in doomed {
                    let local = try await agent.kvGet(key, local: true)
                    #expect(
                        local.status == 404,
                        "\(key) deleted while \(stale.name) was down is back on \(agent.name): \(local)")
                }
            }

            // Equal roots for every partition: with n=3 on three nodes each holds a tree
            // for every partition (every one has keys), and all three trees agree. The
            // last tombstones may still be on their way, so bounded polling.
            var roots: [String: [String: String]] = [:]
            try await cluster.waitUntil(
                "all three nodes report equal roots for every partition", deadline: .seconds(60)
            ) {
                for agent in agents { roots[agent.name] = try await Self.roots(of: agent) }
                let reference = roots[agents[0].name] ?? [:]
                return reference.count == 64 && agents.allSatisfy { roots[$0.name] == reference }
            }
            for agent in agents {
                #expect(
                    roots[agent.name]?.count == 64,
                    "\(agent.name) reports roots for \(roots[agent.name]?.count ?? 0) partitions")
            }

            // A full round on demand: every partition compared, nothing left to repair.
            let result = try await cluster.command(
                ["repair", "--format", "json", "--http-addr", stale.httpAddress], deadline: .seconds(60))
            try result.requireSuccess("chorus repair on \(stale.name)")
            let report = try result.decode(RepairReport.self)
            print("anti-entropy: chorus repair after convergence: \(result.stdout)")
            #expect(report.partitions == 64, "chorus repair compared \(report.partitions) partitions: \(result.stdout)")
            #expect(!report.running && report.failed == 0, "\(result.stdout)")
            #expect(
                report.keysRepaired == 0 && report.tcpBytes == 0, "converged replicas still differ: \(result.stdout)")
            #expect(report.udpBytes > 0 && report.udpBytes < 64 * 2 * 1024, "\(result.stdout)")

            let status = try await cluster.command(["status", "--format", "json", "--http-addr", stale.httpAddress])
            try status.requireSuccess("chorus status")
            #expect(status.stdout.contains("\"anti_entropy\""), "chorus status: \(status.stdout)")
        }
    }

    /// Catch-up (`ReturnWatch`): a replica killed while writes went on, with no node to
    /// hold hints for it (n=3 on three nodes), holds every write within a minute of its
    /// restart, although the periodic exchanges (one partition per minute here) would
    /// take an hour to come round; no client read touches the keys.
    @Test func aRestartedReplicaCatchesUpWithoutWaitingForThePeriodicExchanges() async throws {
        try await AgentCluster.run(subnet: 38, label: "anti-entropy-catch-up") { cluster in
            let agents = try cluster.startNodes(
                3, firstHost: 1,
                extraArguments: [
                    "--partitions", "64", "--anti-entropy-interval", "60s", "--anti-entropy-concurrency", "2",
                ])
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let stale = agents[2]
            let live = Array(agents.prefix(2))

            try await cluster.kill9(stale)
            try await cluster.waitForViews("\(stale.name) is dead in every view", of: live) { _, members in
                members.named(stale.name)?.status == "dead"
            }
            let keys = (0..<300).map { "catch-up-\($0)" }
            try await Self.write(keys, w2Via: live)

            try cluster.restart(stale)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing([stale])
            let restarted = ContinuousClock.now
            try await Self.waitUntil(stale, holds: keys, in: cluster, deadline: .seconds(60))
            print(
                "anti-entropy: catch-up gave \(stale.name) \(keys.count) keys \(ContinuousClock.now - restarted) after it served"
            )
            // The keys may arrive through the co-replicas' own catch-ups (they saw node3
            // return) before node3's finishes: wait for its log line, bounded.
            try? await cluster.waitUntil("\(stale.name) logs a finished catch-up", deadline: .seconds(60)) {
                stale.log.contains("anti-entropy catch-up finished")
            }
            #expect(
                stale.log.contains("anti-entropy catch-up finished"),
                "\(stale.name) logged no finished catch-up:\n\(stale.logTail(lines: 30))")
        }
    }

    /// Catch-up of gained partitions: two nodes that join a lone node at the same moment
    /// (a ring smaller than n, where the join fetch of one may find the other not yet a
    /// member) end up holding every key the lone node had, without waiting for the
    /// periodic exchanges (one partition per minute here) and without a client read.
    @Test func twoNodesJoiningALoneNodeAtOnceHoldItsKeys() async throws {
        try await AgentCluster.run(subnet: 39, label: "anti-entropy-joins") { cluster in
            let flags = ["--partitions", "64", "--anti-entropy-interval", "60s", "--anti-entropy-concurrency", "2"]
            let lone = try cluster.start(name: "node1", hostIndex: 1, join: [], extraArguments: flags)
            try await cluster.waitUntilServing([lone])
            let keys = (0..<200).map { "lone-\($0)" }
            let loneAddress = lone.httpAddress
            let puts = try await HandoffRequests.parallelMap(keys) { key in
                try await HandoffRequests.put(key, Self.value(of: key), w: "1", via: loneAddress)
            }
            try #require(puts.allSatisfy { $0.status == 204 }, "writes to the lone node: \(puts.prefix(3))")

            let joiners = try [2, 3].map { index in
                try cluster.start(
                    name: "node\(index)", hostIndex: index, join: [cluster.gossipAddress(1)], extraArguments: flags)
            }
            let agents = [lone] + joiners
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            for joiner in joiners {
                try await Self.waitUntil(joiner, holds: keys, in: cluster, deadline: .seconds(60))
            }
        }
    }
}
