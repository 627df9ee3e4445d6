import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs real `chorus agent` processes on loopback for the process tests.
///
/// Each suite owns the addresses `127.0.<subnet>.<i>` (gossip port 7400, HTTP port
/// 7480), so suites never clash and Swift Testing may run them in parallel. Agents run
/// with fast but sane timing, share one key from `chorus keygen`, and log to
/// `<temp>/<name>.log`. Observation is by polling `chorus members --format json`
/// against a bounded deadline: tests wait for a state, they never sleep for one.
///
/// Use ``run(subnet:label:_:)`` so every agent is stopped however the test ends.
final class AgentCluster {
    /// Deadline for any awaited cluster state. Generous: it bounds a hung test, it is
    /// not an expectation about speed (a loaded two-core CI box is slow).
    static let defaultDeadline: Duration = .seconds(45)
    static let gossipPort = 7400
    static let httpPort = 7480
    /// Timing for tests: 2x memberlist's LAN probe rate, still far above loopback RTT.
    static let timingFlags = [
        "--probe-interval", "500ms",
        "--probe-timeout", "250ms",
        "--gossip-interval", "100ms",
        "--push-pull-interval", "5s",
    ]

    let subnet: Int
    let label: String
    let root: URL
    let binary: URL
    /// The cluster key every agent is started with unless a test says otherwise.
    private(set) var key = ""
    private(set) var agents: [Agent] = []
    private var commandCounter = 0

    /// Starts a cluster scope, runs `body`, and always shuts every agent down. On an
    /// error the tails of all agent logs are printed and the temp folder is kept.
    static func run<T>(
        subnet: Int, label: String, _ body: (AgentCluster) async throws -> T
    ) async throws -> T {
        let cluster = try AgentCluster(subnet: subnet, label: label)
        do {
            try await cluster.generateKey()
            let result = try await body(cluster)
            await cluster.shutdown()
            cluster.removeFolder()
            return result
        } catch {
            await cluster.shutdown()
            print(cluster.diagnostics(header: "\(label) failed: \(error)"))
            throw error
        }
    }

    init(subnet: Int, label: String) throws {
        precondition((1...254).contains(subnet))
        self.subnet = subnet
        self.label = label
        self.binary = try Self.locateBinary()
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("chorus-process-tests")
            .appendingPathComponent("\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        self.root = folder
    }

    // MARK: Binary

    /// `CHORUS_BIN`, else `<package root>/.build/debug/chorus` found from this file.
    static func locateBinary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["CHORUS_BIN"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw HarnessError("CHORUS_BIN=\(path) is not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        // #filePath = <root>/Tests/ChorusProcessTests/AgentCluster.swift
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = packageRoot.appendingPathComponent(".build/debug/chorus")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw HarnessError(
                """
                chorus binary not found: set CHORUS_BIN, or run `swift build` first so \
                \(candidate.path) exists (tools/test does both)
                """)
        }
        return candidate
    }

    // MARK: Addresses

    /// `127.0.<subnet>.<index>`.
    func host(_ index: Int) -> String {
        precondition((1...254).contains(index))
        return "127.0.\(subnet).\(index)"
    }

    func gossipAddress(_ index: Int) -> String { "\(host(index)):\(Self.gossipPort)" }

    // MARK: Starting agents

    /// Generates the cluster key with `chorus keygen`.
    func generateKey() async throws {
        key = try await keygen()
    }

    func keygen() async throws -> String {
        let result = try await command(["keygen"])
        try result.requireSuccess("chorus keygen")
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw HarnessError("chorus keygen printed nothing") }
        return text
    }

    /// Starts `node1...nodeN` on hosts 1...N; nodes 2...N join node1. Does not wait.
    @discardableResult
    func startNodes(_ count: Int) throws -> [Agent] {
        try (1...count).map { index in
            try start(name: "node\(index)", hostIndex: index, join: index == 1 ? [] : [gossipAddress(1)])
        }
    }

    /// Creates and launches an agent. `key` defaults to the cluster key; `dataDir`
    /// defaults to a fresh folder named after the agent; `environment` is added to
    /// the agent's (clean) environment.
    @discardableResult
    func start(
        name: String, hostIndex: Int, join: [String], key: String? = nil, dataDir: URL? = nil,
        extraArguments: [String] = [], environment: [String: String] = [:]
    ) throws -> Agent {
        let agent = Agent(
            name: name, host: host(hostIndex),
            dataDir: dataDir ?? root.appendingPathComponent("\(name)-data-\(agents.count)"),
            logFile: root.appendingPathComponent("\(name)-\(agents.count).log"),
            join: join, key: key ?? self.key, extraArguments: extraArguments)
        agent.environment = environment
        try FileManager.default.createDirectory(at: agent.dataDir, withIntermediateDirectories: true)
        agents.append(agent)
        try launch(agent)
        return agent
    }

    /// Starts a stopped agent again, same data dir and flags; optionally on another
    /// host (same data dir, so same node id, new address).
    func restart(_ agent: Agent, onHostIndex hostIndex: Int? = nil) throws {
        precondition(!agent.isRunning, "restart(\(agent.name)) while it runs")
        if let hostIndex { agent.host = host(hostIndex) }
        try launch(agent)
    }

    private func launch(_ agent: Agent) throws {
        if !FileManager.default.fileExists(atPath: agent.logFile.path) {
            _ = FileManager.default.createFile(atPath: agent.logFile.path, contents: nil)
        }
        do {
            let log = try FileHandle(forWritingTo: agent.logFile)
            defer { try? log.close() }
            try log.seekToEnd()
            let banner = "==== \(Date()) starting \(agent.name) on \(agent.gossipAddress) (test harness)\n"
            try log.write(contentsOf: Data(banner.utf8))
        }

        var arguments = [
            "agent",
            "--name", agent.name,
            "--data-dir", agent.dataDir.path,
            "--bind", agent.gossipAddress,
            "--advertise", agent.gossipAddress,
            "--http-addr", agent.httpAddress,
            "--log-level", "debug",
        ]
        for seed in agent.join { arguments += ["--join", seed] }
        if !agent.key.isEmpty { arguments += ["--encrypt-key", agent.key] }
        arguments += Self.timingFlags + agent.extraArguments

        agent.process = try SpawnedProcess(
            executable: binary.path, arguments: arguments,
            environment: Self.cleanEnvironment().merging(agent.environment) { _, extra in extra },
            logFile: agent.logFile.path)
        agent.starts += 1
    }

    /// The test runner's environment without `CHORUS_*`, so nothing from the
    /// developer's shell changes an agent or a command.
    static func cleanEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHORUS_") }
    }

    // MARK: Stopping agents

    /// Sends SIGTERM (graceful stop: the agent announces `stopped`).
    func terminate(_ agent: Agent) {
        agent.signal(SIGTERM)
    }

    /// Sends SIGKILL (a crash) and waits for the process to be gone.
    func kill9(_ agent: Agent) async throws {
        agent.signal(SIGKILL)
        _ = try await waitForExit(agent, deadline: .seconds(10))
    }

    /// Waits until the agent's process has exited; returns how it ended.
    func waitForExit(_ agent: Agent, deadline: Duration = .seconds(20)) async throws -> Termination {
        guard let process = agent.process else { throw HarnessError("\(agent.name) was never started") }
        let end = ContinuousClock.now + deadline
        while true {
            if let exit = process.exit { return exit }
            if ContinuousClock.now >= end {
                throw HarnessError("\(agent.name) (pid \(process.pid)) did not exit within \(deadline)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// SIGTERM to every running agent, up to 10 s to exit, then SIGKILL.
    func shutdown() async {
        let running = agents.filter(\.isRunning)
        for agent in running { agent.signal(SIGTERM) }
        let end = ContinuousClock.now + .seconds(10)
        while running.contains(where: \.isRunning) && ContinuousClock.now < end {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for agent in running where agent.isRunning {
            print("[\(label)] \(agent.name) ignored SIGTERM for 10 s; sending SIGKILL")
            agent.signal(SIGKILL)
        }
        // Reap; SIGKILL cannot be ignored, so this ends quickly.
        for agent in running { agent.process?.waitBlocking() }
    }

    func removeFolder() {
        if ProcessInfo.processInfo.environment["CHORUS_KEEP_TEST_DATA"] == nil {
            try? FileManager.default.removeItem(at: root)
        }
    }

    // MARK: Commands

    /// Runs `chorus <arguments>` with stdout and stderr captured (through files, so a
    /// large output can never block the child), killing it after `deadline`.
    func command(_ arguments: [String], deadline: Duration = .seconds(15)) async throws -> CommandResult {
        commandCounter += 1
        let base = root.appendingPathComponent("cmd-\(commandCounter)")
        let outURL = base.appendingPathExtension("out")
        let errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }

        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = Self.cleanEnvironment()
        process.standardInput = FileHandle.nullDevice
        do {
            let out = try FileHandle(forWritingTo: outURL)
            let err = try FileHandle(forWritingTo: errURL)
            defer {
                try? out.close()
                try? err.close()
            }
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }
        let end = ContinuousClock.now + deadline
        while process.isRunning {
            if ContinuousClock.now >= end {
                // Never waitUntilExit(): it has no deadline of its own.
                kill(process.processIdentifier, SIGKILL)
                throw HarnessError("`chorus \(arguments.joined(separator: " "))` did not finish within \(deadline)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return CommandResult(
            arguments: arguments,
            status: process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// `chorus members --format json` against `agent`'s HTTP API.
    func members(of agent: Agent) async throws -> [MemberView] {
        let result = try await command(["members", "--format", "json", "--http-addr", agent.httpAddress])
        try result.requireSuccess("members of \(agent.name)")
        return try result.decode([MemberView].self)
    }

    /// `chorus status --format json` against `agent`'s HTTP API.
    func status(of agent: Agent) async throws -> AgentStatus {
        let result = try await command(["status", "--format", "json", "--http-addr", agent.httpAddress])
        try result.requireSuccess("status of \(agent.name)")
        return try result.decode(AgentStatus.self)
    }

    // MARK: Waiting

    /// Polls `check` until it returns true. `check` may throw (an agent not answering
    /// yet); the last error or `observation` is reported when the deadline passes.
    func waitUntil(
        _ description: String, deadline: Duration = AgentCluster.defaultDeadline,
        _ check: () async throws -> Bool
    ) async throws {
        let end = ContinuousClock.now + deadline
        var last = "never checked"
        while true {
            try Task.checkCancellation()
            do {
                if try await check() { return }
                last = "condition false"
            } catch let error as CancellationError {
                throw error
            } catch {
                last = "\(error)"
            }
            if ContinuousClock.now >= end {
                throw HarnessError("timed out after \(deadline) waiting until \(description); last check: \(last)")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Polls the member lists of `observers` until `predicate(observer, members)`
    /// holds for every observer at once; returns those views. On timeout the error
    /// shows the last view of each observer.
    @discardableResult
    func waitForViews(
        _ description: String, of observers: [Agent], deadline: Duration = AgentCluster.defaultDeadline,
        _ predicate: (Agent, [MemberView]) -> Bool
    ) async throws -> [String: [MemberView]] {
        let end = ContinuousClock.now + deadline
        var lastViews: [String: String] = [:]
        while true {
            try Task.checkCancellation()
            var views: [String: [MemberView]] = [:]
            var allHold = true
            for observer in observers {
                do {
                    let members = try await members(of: observer)
                    views[observer.name] = members
                    lastViews[observer.name] = MemberView.summary(members)
                    if !predicate(observer, members) { allHold = false }
                } catch let error as CancellationError {
                    throw error
                } catch {
                    lastViews[observer.name] = "error: \(error)"
                    allHold = false
                }
                if !allHold { break }  // one failing view is enough; poll again
            }
            if allHold { return views }
            if ContinuousClock.now >= end {
                let shown = observers.map { "  \($0.name) sees: \(lastViews[$0.name] ?? "(not polled)")" }
                throw HarnessError(
                    "timed out after \(deadline) waiting until \(description)\n" + shown.joined(separator: "\n"))
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Waits until every agent in `agents` sees exactly the members in `names`, all
    /// alive.
    @discardableResult
    func waitAllAlive(_ observers: [Agent], names: Set<String>? = nil) async throws -> [String: [MemberView]] {
        let expected = names ?? Set(observers.map(\.name))
        return try await waitForViews("\(expected.sorted()) are all alive in every view", of: observers) {
            _, members in
            Set(members.map(\.name)) == expected && members.count == expected.count
                && members.allSatisfy { $0.status == "alive" }
        }
    }

    // MARK: Diagnostics

    /// The last lines of every agent's log.
    func diagnostics(header: String, lines: Int = 60) -> String {
        var text = "==== \(header)\n==== cluster folder: \(root.path)\n"
        for agent in agents {
            let running = agent.isRunning ? "running" : "not running"
            text +=
                "---- \(agent.name) (\(agent.gossipAddress), \(running)) log \(agent.logFile.path), last \(lines) lines:\n"
            text += agent.logTail(lines: lines) + "\n"
        }
        return text
    }
}

/// One agent the harness started (and may restart).
final class Agent {
    let name: String
    var host: String
    let dataDir: URL
    let logFile: URL
    let join: [String]
    let key: String
    let extraArguments: [String]
    /// Added to the agent's environment at every (re)start.
    var environment: [String: String] = [:]
    var process: SpawnedProcess?
    var starts = 0

    init(name: String, host: String, dataDir: URL, logFile: URL, join: [String], key: String, extraArguments: [String])
    {
        self.name = name
        self.host = host
        self.dataDir = dataDir
        self.logFile = logFile
        self.join = join
        self.key = key
        self.extraArguments = extraArguments
    }

    var gossipAddress: String { "\(host):\(AgentCluster.gossipPort)" }
    var httpAddress: String { "\(host):\(AgentCluster.httpPort)" }
    var isRunning: Bool { process?.isRunning ?? false }

    func signal(_ signal: Int32) {
        process?.send(signal)
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func logTail(lines: Int) -> String {
        log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

struct Termination: Equatable, CustomStringConvertible {
    var reason: Process.TerminationReason
    var status: Int32

    var isCleanExit: Bool { reason == .exit && status == 0 }
    var description: String { reason == .exit ? "exit \(status)" : "signal \(status)" }
}

struct CommandResult: CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String {
        "`chorus \(arguments.joined(separator: " "))` exited \(status); stdout: \(stdout.prefix(2000)) stderr: \(stderr.prefix(2000))"
    }

    func requireSuccess(_ what: String) throws {
        guard status == 0 else { throw HarnessError("\(what) failed: \(self)") }
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(stdout.utf8))
        } catch {
            throw HarnessError("cannot decode \(T.self) from \(self): \(error)")
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: JSON the CLI prints

/// One element of `chorus members --format json`.
struct MemberView: Decodable, Equatable, Sendable {
    var name: String
    var id: String
    var address: String
    var status: String
    var incarnation: UInt64
    var tags: [String: String]?

    static func summary(_ members: [MemberView]) -> String {
        members.sorted { $0.name < $1.name }
            .map { "\($0.name)=\($0.status)@\($0.address)#\($0.incarnation)" }
            .joined(separator: " ")
    }
}

extension Array where Element == MemberView {
    func named(_ name: String) -> MemberView? { first { $0.name == name } }
}

/// `chorus status --format json` (only the fields the tests read).
struct AgentStatus: Decodable, Sendable {
    struct Datagrams: Decodable, Sendable {
        var `in`: UInt64
        var out: UInt64
        var dropped: [String: UInt64]

        var droppedTotal: UInt64 { dropped.values.reduce(0, +) }
    }

    /// TCP (join, push-pull, key operations): only what was refused, by reason.
    struct TCP: Decodable, Sendable {
        var dropped: [String: UInt64]
    }

    var name: String
    var id: String
    var incarnation: UInt64
    var members: [String: Int]
    var datagrams: Datagrams
    var tcp: TCP?
}
