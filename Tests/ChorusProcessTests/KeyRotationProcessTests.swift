import Foundation
import Testing

/// Cluster key rotation like `serf keys`: install, use, remove, reaching every member,
/// and a member that missed a rotation catching up when it rejoins.
@Suite("Key rotation, real agents")
struct KeyRotationProcessTests {
    /// One node's line in the JSON of `chorus keys ... --format json`.
    struct KeyResult: Decodable, Sendable {
        var node: String
        var ok: Bool
        var error: String?
        var primary: String?
        var keys: [String]
    }

    @Test func installUseRemoveReachesEveryNode() async throws {
        try await AgentCluster.run(subnet: 22, label: "keys-rotate") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            let oldKey = cluster.key
            let newKey = try await cluster.keygen()
            let names: Set<String> = ["node1", "node2", "node3"]

            let installed = try await Self.keys(cluster, ["install", newKey], via: agents[0])
            #expect(Set(installed.map(\.node)) == names, "install reported \(installed)")
            for result in installed {
                #expect(result.ok, "install on \(result.node): \(result.error ?? "?")")
                #expect(result.primary == oldKey, "install must not change \(result.node)'s primary")
                #expect(Set(result.keys) == [oldKey, newKey], "\(result.node) holds \(result.keys.count) keys")
            }

            // Ask a different node each time: any member coordinates a rotation.
            let used = try await Self.keys(cluster, ["use", newKey], via: agents[1])
            #expect(Set(used.map(\.node)) == names, "use reported \(used)")
            for result in used {
                #expect(result.ok, "use on \(result.node): \(result.error ?? "?")")
                #expect(result.primary == newKey, "\(result.node)'s primary is not the new key")
            }

            let removed = try await Self.keys(cluster, ["remove", oldKey], via: agents[2])
            #expect(Set(removed.map(\.node)) == names, "remove reported \(removed)")
            for result in removed {
                #expect(result.ok, "remove on \(result.node): \(result.error ?? "?")")
                #expect(result.keys == [newKey], "\(result.node) still holds the old key")
            }

            // Every node's `keys list` shows the new key primary everywhere...
            for agent in agents {
                let listed = try await Self.keys(cluster, ["list"], via: agent)
                #expect(Set(listed.map(\.node)) == names, "keys list on \(agent.name): \(listed)")
                for result in listed {
                    #expect(
                        result.ok && result.primary == newKey && result.keys == [newKey],
                        """
                        keys list on \(agent.name): \(result.node) has primary \(result.primary ?? "none") \
                        (\(result.error ?? "no error"))
                        """)
                }
            }
            // ...and gossip still flows, now under the new key only.
            try await cluster.waitAllAlive(agents)
        }
    }

    @Test func nodeDownDuringInstallAndUseReceivesTheCurrentKeyringWhenItRejoins() async throws {
        try await AgentCluster.run(subnet: 23, label: "keys-rejoin") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            let oldKey = cluster.key
            let newKey = try await cluster.keygen()
            let absent = agents[2]

            cluster.terminate(absent)
            _ = try await cluster.waitForExit(absent)
            try await cluster.waitForViews("node3 is stopped in the others' views", of: Array(agents.prefix(2))) {
                _, members in members.named("node3")?.status == "stopped"
            }

            // Install and use while node3 is down; the old key stays installed, so
            // node3 (which only knows the old key) can still reach the others.
            for operation in [["install", newKey], ["use", newKey]] {
                let results = try await Self.keys(cluster, operation, via: agents[0], requireSuccess: false)
                for name in ["node1", "node2"] {
                    let result = results.first { $0.node == name }
                    #expect(result?.ok == true, "\(operation[0]) on \(name): \(String(describing: result))")
                }
                #expect(!results.contains { $0.node == "node3" && $0.ok }, "node3 is down: \(results)")
            }

            try cluster.restart(absent)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntil("node3 holds the current keyring (new key primary, old key installed)") {
                let listed = try await Self.keys(cluster, ["list"], via: absent)
                guard let own = listed.first(where: { $0.node == "node3" }) else { return false }
                return own.ok && own.primary == newKey && Set(own.keys) == [oldKey, newKey]
            }
            // Every node agrees.
            for agent in agents {
                let listed = try await Self.keys(cluster, ["list"], via: agent)
                #expect(listed.count == 3, "keys list on \(agent.name): \(listed)")
                for result in listed {
                    #expect(
                        result.primary == newKey && Set(result.keys) == [oldKey, newKey],
                        """
                        keys list on \(agent.name): \(result.node) has primary \(result.primary ?? "none") \
                        (\(result.error ?? "no error"))
                        """)
                }
            }
            // And node3 keeps talking after the old key is gone.
            let removed = try await Self.keys(cluster, ["remove", oldKey], via: agents[0])
            #expect(removed.count == 3 && removed.allSatisfy { $0.ok && $0.keys == [newKey] }, "remove: \(removed)")
            try await cluster.waitAllAlive(agents)
        }
    }

    /// `chorus keys <arguments> --format json` against `agent`.
    static func keys(
        _ cluster: AgentCluster, _ arguments: [String], via agent: Agent, requireSuccess: Bool = true
    ) async throws -> [KeyResult] {
        let result = try await cluster.command(
            ["keys"] + arguments + ["--format", "json", "--http-addr", agent.httpAddress])
        if requireSuccess { try result.requireSuccess("chorus keys \(arguments.first ?? "")") }
        return try result.decode([KeyResult].self)
    }
}
