import Foundation
import Testing

/// Ring changes with real agents under load (issue 7, DESIGN §9): `chorus leave`
/// streams a node's partitions to their next owners before it goes, a new node
/// fetches its partitions before it serves them, and `chorus remove` re-replicates
/// a dead node's partitions. Anti-entropy is off, so every copy the checks find
/// was put there by the ring handoff (or the writes themselves).
@Suite struct RingChangeProcessTests {
    static let flags = ["--partitions", "64", "--anti-entropy-concurrency", "0"]

    /// Five settled ring members, and `preload` keys written through node1...node4.
    static func startLoaded(_ cluster: AgentCluster, preload: Int) async throws -> ([Agent], RingWriteLog) {
        let agents = try cluster.startNodes(5, firstHost: 1, extraArguments: flags)
        try await cluster.waitAllAlive(agents)
        try await cluster.waitUntilRingSettled(agents)
        let writes = RingWriteLog()
        try await writes.preload(preload, via: agents.prefix(4).map(\.httpAddress))
        return (agents, writes)
    }

    @Test func leavingAndAddingANodeUnderLoadKeepsEveryKeyOnNReplicas() async throws {
        try await AgentCluster.run(subnet: 50, label: "ring-leave-join") { cluster in
            let (agents, writes) = try await Self.startLoaded(cluster, preload: 200)
            let clients = Array(agents.prefix(4))
            let addresses = clients.map(\.httpAddress)

            // node5 leaves while writes go on through the other four.
            let load = Task { await writes.run(via: addresses, limit: 1500) }
            let leaver = agents[4]
            let leave = try await cluster.command(
                ["leave", "--http-addr", leaver.httpAddress], deadline: .seconds(120))
            try leave.requireSuccess("chorus leave on node5")
            #expect(leave.stdout.contains("partitions"), "leave shows its progress: \(leave.stdout)")
            #expect(leave.stdout.contains("left the cluster"))
            _ = try await cluster.waitForExit(leaver)
            try await cluster.waitForViews("node5 is left in every view", of: clients) { _, members in
                members.named("node5")?.status == "left"
            }
            await writes.stop()
            await load.value
            var summary = await writes.summary
            #expect(summary.refused.isEmpty, "writes refused during the leave: \(summary.refused.prefix(5))")
            #expect(summary.acknowledged.count > 200)
            try await cluster.expectEveryKeyOnNReplicas(summary.acknowledged, via: clients)

            // A new node joins under load: it fetches its partitions before it serves them.
            await writes.resume()
            let load2 = Task { await writes.run(via: addresses, limit: 1500) }
            let newcomer = try cluster.start(
                name: "node6", hostIndex: 6, join: [cluster.gossipAddress(1)], extraArguments: Self.flags)
            let members = clients + [newcomer]
            try await cluster.waitForViews("node6 is alive everywhere", of: members) { _, view in
                view.named("node6")?.status == "alive"
            }
            try await cluster.waitUntilRingSettled(members)
            await writes.stop()
            await load2.value
            summary = await writes.summary
            #expect(summary.refused.isEmpty, "writes refused during the join: \(summary.refused.prefix(5))")
            let status = try await cluster.ringStatus(of: newcomer)
            #expect(status.transfer == "joining" && status.state == "done" && status.objects > 0, "\(status)")
            try await cluster.expectEveryKeyOnNReplicas(summary.acknowledged, via: members)

            // The nodes node6 displaced drop the copies it took over, once the ring is settled.
            let sample = Dictionary(
                uniqueKeysWithValues: summary.acknowledged.sorted { $0.key < $1.key }.prefix(150).map {
                    ($0.key, $0.value)
                })
            try await cluster.waitUntil("only home replicas hold copies", deadline: .seconds(60)) {
                try await cluster.strayCopies(Array(sample.keys), via: members).isEmpty
            }
            try await cluster.expectEveryKeyOnNReplicas(summary.acknowledged, via: members)
        }
    }

    @Test func removingADeadNodeReReplicatesItsPartitions() async throws {
        try await AgentCluster.run(subnet: 51, label: "ring-remove") { cluster in
            let (agents, writes) = try await Self.startLoaded(cluster, preload: 300)
            let survivors = Array(agents.prefix(4))
            let addresses = survivors.map(\.httpAddress)

            try await cluster.kill9(agents[4])
            try await cluster.waitForViews("node5 is dead everywhere", of: survivors) { _, members in
                members.named("node5")?.status == "dead"
            }
            // Writes while it is down leave hints for it.
            try await writes.preload(100, via: addresses)
            let refused = try await cluster.command(["remove", "node2", "--http-addr", agents[0].httpAddress])
            #expect(refused.status != 0 && refused.stderr.contains("alive"), "a live member is not removed")

            let removal = try await cluster.command(["remove", "node5", "--http-addr", agents[0].httpAddress])
            try removal.requireSuccess("chorus remove node5")
            try await cluster.waitForViews("node5 is left in every view", of: survivors) { _, members in
                members.named("node5")?.status == "left"
            }
            let summary = await writes.summary
            #expect(summary.refused.isEmpty, "\(summary.refused.prefix(5))")
            try await cluster.waitUntil("every key is on 3 replicas again", deadline: .seconds(90)) {
                try await cluster.missingReplicas(summary.acknowledged, via: survivors).isEmpty
            }
        }
    }
}

/// Unique keys written once each with w=quorum, round-robin over the clients;
/// what was acknowledged and what was refused.
actor RingWriteLog {
    struct Summary {
        var acknowledged: [String: String] = [:]
        var refused: [String] = []
    }

    private(set) var summary = Summary()
    private var next = 0
    private var stopped = false

    func preload(_ count: Int, via clients: [String]) async throws {
        for _ in 0..<count { await write(via: clients) }
        if !summary.refused.isEmpty { throw HarnessError("preload refused: \(summary.refused.prefix(3))") }
    }

    /// Writes until `stop()` or `limit` writes.
    func run(via clients: [String], limit: Int) async {
        var done = 0
        while !stopped, done < limit {
            await write(via: clients)
            done += 1
        }
    }

    func stop() { stopped = true }
    func resume() { stopped = false }

    /// One write through the client at HTTP address `clients[index % count]`.
    private func write(via clients: [String]) async {
        let index = next
        next += 1
        let key = "ring-\(index)"
        let value = "value-\(index)"
        let client = clients[index % clients.count]
        do {
            let response = try await KVHTTP.request(
                "PUT", client, Agent.kvTarget(bucket: "default", key: key, query: [("w", "quorum")]),
                body: Array(value.utf8))
            if response.status == 204 {
                summary.acknowledged[key] = value
            } else {
                summary.refused.append("\(key) via \(client): \(response)")
            }
        } catch {
            summary.refused.append("\(key) via \(client): \(error)")
        }
    }
}

/// `GET /v1/status`'s `ring` part.
struct RingStatus: Decodable, Sendable, CustomStringConvertible {
    var phase: String
    var transfer: String
    var state: String
    var objects: Int
    var error: String?

    var description: String {
        "phase=\(phase) transfer=\(transfer) state=\(state) objects=\(objects) error=\(error ?? "-")"
    }
}

extension AgentCluster {
    func ringStatus(of agent: Agent) async throws -> RingStatus {
        struct Status: Decodable { var ring: RingStatus }
        return try await KVHTTP.request("GET", agent.httpAddress, "/v1/status").decode(Status.self).ring
    }

    /// Waits until no agent is joining or leaving, and none is moving data.
    func waitUntilRingSettled(_ agents: [Agent]) async throws {
        for agent in agents {
            try await waitUntil("\(agent.name) is a settled ring member", deadline: .seconds(90)) {
                let status = try await ringStatus(of: agent)
                return status.phase == "member" && status.state != "settling" && status.state != "streaming"
            }
        }
    }

    /// Keys whose home replicas (as `/v1/ring` names them) do not all hold the
    /// acknowledged value, with what is wrong.
    func missingReplicas(_ writes: [String: String], via agents: [Agent]) async throws -> [String] {
        let byName = Dictionary(uniqueKeysWithValues: agents.map { ($0.name, $0) })
        var missing: [String] = []
        for (key, value) in writes.sorted(by: { $0.key < $1.key }) {
            let ring = try await KVHTTP.request("GET", agents[0].httpAddress, "/v1/ring?key=\(key)")
                .decode(RingView.self)
            let replicas = ring.key?.replicas ?? []
            if replicas.count != 3 { missing.append("\(key): \(replicas.count) home replicas") }
            for name in replicas {
                guard let agent = byName[name] else {
                    missing.append("\(key): home replica \(name) is not a running agent")
                    continue
                }
                let response = try await agent.kvGet(key, local: true)
                if response.status != 200 || response.text != value {
                    missing.append("\(key) on \(name): \(response)")
                }
            }
        }
        return missing
    }

    /// Copies of `keys` on agents that are not their home replicas.
    func strayCopies(_ keys: [String], via agents: [Agent]) async throws -> [String] {
        var stray: [String] = []
        for key in keys {
            let ring = try await KVHTTP.request("GET", agents[0].httpAddress, "/v1/ring?key=\(key)")
                .decode(RingView.self)
            let home = Set(ring.key?.replicas ?? [])
            for agent in agents where !home.contains(agent.name) {
                if try await agent.kvGet(key, local: true).status != 404 { stray.append("\(key) on \(agent.name)") }
            }
        }
        return stray
    }

    func expectEveryKeyOnNReplicas(_ writes: [String: String], via agents: [Agent]) async throws {
        let missing = try await missingReplicas(writes, via: agents)
        #expect(missing.isEmpty, "\(missing.count) missing copies, e.g. \(missing.prefix(5))")
    }
}
