import Foundation
import Testing

/// `tools/cluster` on its own loopback /24 (CHORUS_CLUSTER_NET=127.0.72; tools/bench-kv
/// takes 127.0.70-71) and folder: `restart NAME` waits for every phase of a restart and
/// reports each, and the node serves afterwards. Runs the agents from CHORUS_BIN (no swift build inside swift test).
@Suite("tools/cluster, real agents", .serialized)
struct ClusterToolProcessTests {
    static let net = "127.0.72"
    static let phases = ["stop", "http", "alive", "hints", "serving"]

    /// "phase NAME  S.SSs  what" lines by phase name (the seconds, or nil for "-").
    static func phaseLines(_ output: String) -> [String: Double?] {
        var found: [String: Double?] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("phase ") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3 else { continue }
            let value = fields[2]
            found[String(fields[1])] = value.hasSuffix("s") ? Double(value.dropLast()) : nil
        }
        return found
    }

    @Test func restartReportsEachPhaseAndTheNodeServes() async throws {
        let dir = try RollingRestartProcessTests.tempDir("cluster-tool")
        let cluster = dir.appendingPathComponent("cluster")
        let env = ["CHORUS_CLUSTER_DIR": cluster.path, "CHORUS_CLUSTER_NET": Self.net]
        let tool = RollingRestartProcessTests.clusterTool
        // Stopped however the test ends: by `clean` at the end, or below when it throws.
        do {
            let (started, startOutput) = try await RollingRestartProcessTests.run(
                tool, ["start", "3"], dir: dir, env: env, timeout: 180)
            try #require(started == 0, "tools/cluster start failed:\n\(startOutput)")
            for i in 1...3 {
                #expect(startOutput.contains("node\(i)  \(Self.net).\(i):7400  alive"), "\(startOutput)")
            }
            #expect(
                (try? String(contentsOf: cluster.appendingPathComponent("net"), encoding: .utf8)) == Self.net + "\n")

            // A running node: every phase, the stop included, with its seconds.
            let (restarted, output) = try await RollingRestartProcessTests.run(
                tool, ["restart", "node2"], dir: dir, env: env, timeout: 300)
            try #require(restarted == 0, "tools/cluster restart failed:\n\(output)")
            let phases = Self.phaseLines(output)
            for phase in Self.phases {
                let seconds = phases[phase] ?? nil
                #expect(seconds != nil && seconds! >= 0, "phase \(phase) missing or without seconds:\n\(output)")
            }
            #expect(output.contains("SIGTERM -> exit 0"), "\(output)")
            let incarnations = output.split(separator: "\n").first { $0.hasPrefix("phase alive") }
                .flatMap { $0.split(separator: "incarnation ").last }?.split(separator: " ")
            let before = incarnations.flatMap { $0.first }.flatMap { UInt64($0) }
            let after = incarnations.flatMap { $0.last }.flatMap { UInt64($0) }
            #expect(before != nil && after != nil && after! > before!, "no higher incarnation:\n\(output)")
            #expect(output.contains("restarted node2 in "), "\(output)")

            // It serves: alive, joined, takes a quorum write, and every member sees it alive.
            let binary = try AgentCluster.locateBinary().path
            let (healthy, status) = try await RollingRestartProcessTests.run(
                binary,
                [
                    "status", "--wait-healthy", "--timeout", "5s", "--format", "json", "--http-addr",
                    "\(Self.net).2:7480",
                ],
                dir: dir, env: [:], timeout: 30)
            #expect(healthy == 0, "\(status)")
            #expect(status.contains("\"status\" : \"alive\""), "\(status)")
            let (put, putOutput) = try await RollingRestartProcessTests.run(
                binary, ["put", "--http-addr", "\(Self.net).2:7480", "after-restart", "v"], dir: dir, env: [:],
                timeout: 30)
            #expect(put == 0, "\(putOutput)")

            // A stopped node: no stop phase, the others still reported.
            let (stopped, stopOutput) = try await RollingRestartProcessTests.run(
                tool, ["stop", "node3"], dir: dir, env: env, timeout: 60)
            try #require(stopped == 0, "\(stopOutput)")
            let (again, againOutput) = try await RollingRestartProcessTests.run(
                tool, ["restart", "3"], dir: dir, env: env, timeout: 300)
            try #require(again == 0, "tools/cluster restart failed:\n\(againOutput)")
            let againPhases = Self.phaseLines(againOutput)
            #expect(againPhases.keys.contains("stop") && againPhases["stop"]! == nil, "\(againOutput)")
            #expect(againOutput.contains("node3 was not running"), "\(againOutput)")
            for phase in Self.phases.dropFirst() {
                #expect((againPhases[phase] ?? nil) != nil, "phase \(phase) missing:\n\(againOutput)")
            }

            // The recorded net wins; asking for another one is refused.
            let (wrongNet, wrongOutput) = try await RollingRestartProcessTests.run(
                tool, ["status"], dir: dir, env: env.merging(["CHORUS_CLUSTER_NET": "127.0.74"]) { _, new in new },
                timeout: 30)
            #expect(wrongNet != 0 && wrongOutput.contains("runs on \(Self.net).x"), "\(wrongOutput)")

            let (cleaned, cleanOutput) = try await RollingRestartProcessTests.run(
                tool, ["clean"], dir: dir, env: env, timeout: 120)
            #expect(cleaned == 0, "\(cleanOutput)")
            if cleaned == 0 { try? FileManager.default.removeItem(at: dir) }
        } catch {
            _ = try? await RollingRestartProcessTests.run(tool, ["stop"], dir: dir, env: env, timeout: 120)
            throw error
        }
    }
}
