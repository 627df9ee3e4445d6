import Foundation
import Testing

/// Operator conveniences on real agents: `chorus status --wait-healthy` and SIGHUP.
@Suite("Operations, real agents", .serialized)
struct OperationsProcessTests {
    @Test func waitHealthyReturnsOnceTheNodeServesAndFailsWhenNoneDoes() async throws {
        try await AgentCluster.run(subnet: 42, label: "wait-healthy") { cluster in
            let agent = try cluster.start(name: "node1", hostIndex: 1, join: [])
            let healthy = try await cluster.command(
                ["status", "--wait-healthy", "--timeout", "30s", "--format", "json", "--http-addr", agent.httpAddress],
                deadline: .seconds(40))
            #expect(healthy.status == 0, "\(healthy)")
            #expect(healthy.stdout.contains("\"status\" : \"alive\""))
            let nobody = try await cluster.command(
                ["status", "--wait-healthy", "--timeout", "1s", "--http-addr", cluster.host(9) + ":7480"])
            #expect(nobody.status == 1)
            #expect(nobody.stderr.contains("not healthy"))
        }
    }

    @Test func sighupReloadsTheLogLevelAndTheKeyring() async throws {
        try await AgentCluster.run(subnet: 42, label: "sighup") { cluster in
            let config = cluster.root.appendingPathComponent("chorus.toml")
            try "log_level = \"info\"\n".write(to: config, atomically: true, encoding: .utf8)
            let agent = try cluster.start(
                name: "node1", hostIndex: 2, join: [], extraArguments: ["--config", config.path])
            let ready = try await cluster.command(
                ["status", "--wait-healthy", "--timeout", "30s", "--http-addr", agent.httpAddress],
                deadline: .seconds(40))
            try #require(ready.status == 0, "\(ready)")
            try "log_level = \"debug\"\n".write(to: config, atomically: true, encoding: .utf8)
            agent.signal(SIGHUP)
            try await cluster.waitUntil("the reload is logged", deadline: .seconds(20)) { () async throws -> Bool in
                agent.logTail(lines: 50).contains("log_level=debug")
            }
            // Still serving after the reload.
            let after = try await cluster.command(["status", "--format", "json", "--http-addr", agent.httpAddress])
            #expect(after.status == 0, "\(after)")
        }
    }
}
