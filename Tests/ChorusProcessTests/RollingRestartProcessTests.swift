import Foundation
import Testing

/// `tools/rolling-restart` on 5 local agents (tools/cluster's 127.0.0.1-5, which no other
/// suite uses), graceful and `--kill`, must pass its own verification; and the
/// `--nodes-file` + `--restart-cmd` template path works with local commands.
///
/// The tool gets `CHORUS_BIN` (the binary the other process tests use), so it creates
/// the cluster from it and never runs `swift build` while `swift test` holds the build.
@Suite(.serialized)
struct RollingRestartProcessTests {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tool = repoRoot.appendingPathComponent("tools/rolling-restart").path
    static let clusterTool = repoRoot.appendingPathComponent("tools/cluster").path

    struct Run {
        let status: Int32
        let output: String
        let report: [String: Any]
    }

    static func tempDir(_ label: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("chorus-process-tests")
            .appendingPathComponent("rolling-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs a command with a bounded wait, on a thread of its own (`onOwnThread`); output
    /// goes to a file in `dir`.
    static func run(
        _ executable: String, _ arguments: [String], dir: URL, env extra: [String: String],
        timeout: TimeInterval = 420
    ) async throws -> (Int32, String) {
        try await onOwnThread { try runBlocking(executable, arguments, dir: dir, env: extra, timeout: timeout) }
    }

    private static func runBlocking(
        _ executable: String, _ arguments: [String], dir: URL, env extra: [String: String],
        timeout: TimeInterval
    ) throws -> (Int32, String) {
        let binary = try AgentCluster.locateBinary()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = repoRoot
        var env = ProcessInfo.processInfo.environment
        env["CHORUS_BIN"] = binary.path
        for (k, v) in extra { env[k] = v }
        process.environment = env
        let logURL = dir.appendingPathComponent("output-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
        }
        if process.isRunning {
            process.interrupt()  // SIGINT: the tool stops its load and the cluster it started
            Thread.sleep(forTimeInterval: 20)
            if process.isRunning { process.terminate() }
        }
        process.waitUntilExit()
        try? handle.close()
        let output = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }

    static func rollingRestart(_ arguments: [String], dir: URL, env: [String: String] = [:]) async throws -> Run {
        let reportURL = dir.appendingPathComponent("report.json")
        let (status, output) = try await run(tool, arguments + ["--report", reportURL.path], dir: dir, env: env)
        var report: [String: Any] = [:]
        if let data = try? Data(contentsOf: reportURL),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            report = object
        }
        return Run(status: status, output: output, report: report)
    }

    /// Runs `body`, then stops the local cluster in `dir` whether or not it threw (the
    /// tools stop the clusters they start; this is for a failed run).
    static func stoppingCluster<T>(_ dir: URL, _ body: () async throws -> T) async throws -> T {
        do {
            let result = try await body()
            await stopCluster(dir)
            return result
        } catch {
            await stopCluster(dir)
            throw error
        }
    }

    static func stopCluster(_ dir: URL) async {
        _ = try? await run(clusterTool, ["stop"], dir: dir, env: ["CHORUS_CLUSTER_DIR": dir.path], timeout: 120)
    }

    static func check(_ run: Run) {
        #expect(run.status == 0, "tools/rolling-restart exited \(run.status):\n\(run.output.suffix(6000))")
        #expect(run.report["lost_writes"] as? Int == 0, "lost writes:\n\(run.output.suffix(3000))")
        #expect(run.report["writes_refused"] as? Int == 0, "refused writes:\n\(run.output.suffix(3000))")
        #expect(run.report["converged"] as? Bool == true, "not converged:\n\(run.output.suffix(3000))")
        #expect((run.report["writes_acknowledged"] as? Int ?? 0) > 0)
        #expect((run.report["restarts"] as? [Any])?.count == 5)
    }

    @Test func gracefulRollingRestartLosesNothing() async throws {
        let dir = try Self.tempDir("graceful")
        let cluster = dir.appendingPathComponent("cluster")
        let run = try await Self.stoppingCluster(cluster) {
            try await Self.rollingRestart(
                ["--nodes", "5", "--duration-per-node", "5", "--rate", "50", "--cluster-dir", cluster.path], dir: dir)
        }
        Self.check(run)
        if run.status == 0 { try? FileManager.default.removeItem(at: dir) }
    }

    @Test func killRollingRestartLosesNothing() async throws {
        let dir = try Self.tempDir("kill")
        let cluster = dir.appendingPathComponent("cluster")
        let run = try await Self.stoppingCluster(cluster) {
            try await Self.rollingRestart(
                ["--nodes", "5", "--duration-per-node", "5", "--rate", "50", "--kill", "--cluster-dir", cluster.path],
                dir: dir)
        }
        Self.check(run)
        if run.status == 0 { try? FileManager.default.removeItem(at: dir) }
    }

    /// The real-hosts path: a nodes file and a restart template, here formatted into
    /// tools/cluster commands.
    @Test func nodesFileAndRestartTemplate() async throws {
        let dir = try Self.tempDir("template")
        let cluster = dir.appendingPathComponent("cluster")
        let restartLog = dir.appendingPathComponent("restarts.log")
        // Stopped before its folder is removed (the stop needs the pid files).
        let run = try await Self.stoppingCluster(cluster) {
            let (status, nodesText) = try await Self.run(
                Self.tool, ["--nodes", "5", "--cluster-dir", cluster.path, "--start-only"], dir: dir, env: [:])
            try #require(status == 0, "could not start the cluster:\n\(nodesText)")
            let lines = nodesText.split(separator: "\n").filter { $0.hasPrefix("node") && $0.contains(":7480") }
            try #require(lines.count == 5, "nodes file:\n\(nodesText)")
            let nodesFile = dir.appendingPathComponent("nodes")
            try (lines.joined(separator: "\n") + "\n").write(to: nodesFile, atomically: true, encoding: .utf8)
            let quoted = "'\(Self.clusterTool)'"
            let template =
                "echo {name} {host} {http} >> '\(restartLog.path)' && "
                + "CHORUS_CLUSTER_DIR='\(cluster.path)' \(quoted) stop {name} && "
                + "CHORUS_CLUSTER_DIR='\(cluster.path)' \(quoted) restart {name}"
            return try await Self.rollingRestart(
                [
                    "--nodes-file", nodesFile.path, "--restart-cmd", template, "--duration-per-node", "3",
                    "--rate", "40",
                ], dir: dir)
        }
        Self.check(run)
        let restarted = (try? String(contentsOf: restartLog, encoding: .utf8)) ?? ""
        #expect(restarted.contains("node3 127.0.0.3 127.0.0.3:7480"), "template not formatted:\n\(restarted)")
        #expect(restarted.split(separator: "\n").count == 5)
        if run.status == 0 { try? FileManager.default.removeItem(at: dir) }
    }
}
