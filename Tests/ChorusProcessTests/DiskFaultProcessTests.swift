import Foundation
import Testing

/// Disk faults against a real agent (issue 8): a damaged database stops the agent at
/// start naming the file; a full disk (a 2 MB tmpfs) makes it refuse writes with a
/// reason, acknowledge nothing it could not store, keep serving reads, say so in its log
/// and in `chorus status`, and take writes again once space is freed.
///
/// Subnets 127.0.60.x (damaged files) and 127.0.61.x (full disk).
@Suite("Disk faults, real agents", .serialized)
struct DiskFaultProcessTests {
    enum Damage: String, CaseIterable, CustomStringConvertible {
        case truncatedToHalf = "truncated-half"
        case garbageHeader = "garbage-header"
        case overwrittenMiddle = "overwritten-middle"

        var description: String { rawValue }
    }

    /// Starts node1, writes 150 values of 2,000 bytes (a file of many pages or records), stops it.
    func startFillAndStop(_ cluster: AgentCluster, extraArguments: [String] = []) async throws -> Agent {
        let agent = try cluster.start(name: "node1", hostIndex: 1, join: [], extraArguments: extraArguments)
        try await cluster.waitUntil("node1 serves", deadline: .seconds(30)) { () async throws -> Bool in
            (try? await cluster.members(of: agent))?.isEmpty == false
        }
        let value = String(repeating: "v", count: 2000)
        for index in 0..<150 {
            let put = try await agent.kvPut("key-\(index)", value, w: "1")
            try #require(put.status == 204, "put key-\(index): \(put)")
        }
        cluster.terminate(agent)
        _ = try await cluster.waitForExit(agent)
        return agent
    }

    /// Restarts the agent and expects it to exit with status 1, its log naming `file` as
    /// corrupt and telling the operator what to do.
    func expectRefusesToStart(_ agent: Agent, in cluster: AgentCluster, naming file: String) async throws {
        try cluster.restart(agent)
        let exit = try await cluster.waitForExit(agent)
        #expect(exit.reason == .exit && exit.status == 1, "agent should exit with status 1, got \(exit)")
        let tail = agent.logTail(lines: 20)
        #expect(tail.contains("cannot start: stopping:"), "log: \(tail)")
        #expect(tail.contains(file), "the message names the file: \(tail)")
        #expect(tail.contains("restore from a replica or remove the data dir"), "log: \(tail)")
    }

    @Test(arguments: Damage.allCases)
    func damagedDatabaseStopsTheAgentAtStartNamingTheFile(_ damage: Damage) async throws {
        try await AgentCluster.run(subnet: 60, label: "damaged-db-\(damage)") { cluster in
            // The objects in the database (the sqlite backend), so that the damage hits them.
            let agent = try await startFillAndStop(cluster, extraArguments: ["--backend", "sqlite"])

            let database = agent.dataDir.appendingPathComponent("chorus.db")
            // A stop leaves the WAL as it is; copy it into the file, as the background
            // checkpoints of a long-running agent would, so that the damage hits the data.
            try checkpointIntoDatabaseFile(path: database.path)
            let size = try #require(
                try FileManager.default.attributesOfItem(atPath: database.path)[.size] as? Int)
            try #require(size > 64 * 4096, "database is only \(size) bytes")
            let handle = try FileHandle(forUpdatingAtPath: database.path).unwrapped("open \(database.path)")
            switch damage {
            case .truncatedToHalf:
                try handle.truncate(atOffset: UInt64(size / 2))
            case .garbageHeader:
                try handle.write(contentsOf: Data((0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }))
            case .overwrittenMiddle:
                try handle.seek(toOffset: UInt64(size / 2 / 4096 * 4096))
                try handle.write(contentsOf: Data((0..<12_288).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
            }
            try handle.close()

            try await expectRefusesToStart(agent, in: cluster, naming: database.path)
        }
    }

    /// The log backend (the default): damage in a segment stops the agent naming the segment.
    @Test func damagedObjectLogSegmentStopsTheAgentAtStartNamingTheFile() async throws {
        try await AgentCluster.run(subnet: 60, label: "damaged-log") { cluster in
            let agent = try await startFillAndStop(cluster)

            let segment = agent.dataDir.appendingPathComponent("chorus.db-objects/0000000001.seg")
            let handle = try FileHandle(forUpdatingAtPath: segment.path).unwrapped("open \(segment.path)")
            // A quarter in: far from the last commit group, so not mistaken for a torn write.
            try handle.seek(toOffset: UInt64(150 * 2000 / 4))
            try handle.write(contentsOf: Data((0..<512).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
            try handle.close()

            try await expectRefusesToStart(agent, in: cluster, naming: segment.path)
        }
    }

    @Test func fullDiskRefusesWritesKeepsReadsAndRecoversWhenSpaceIsFreed() async throws {
        try await AgentCluster.run(subnet: 61, label: "full-disk") { cluster in
            try await withTmpfs(
                size: "2m", in: cluster, skipping: "fullDiskRefusesWritesKeepsReadsAndRecoversWhenSpaceIsFreed"
            ) { mountPoint in
                // Ballast, removed later to free space without touching the database.
                let ballast = mountPoint.appendingPathComponent("ballast")
                try Data(repeating: 0xAB, count: 640 << 10).write(to: ballast)
                let agent = try cluster.start(
                    name: "node1", hostIndex: 1, join: [], dataDir: mountPoint.appendingPathComponent("data"))
                try await cluster.waitUntil("node1 serves", deadline: .seconds(30)) { () async throws -> Bool in
                    (try? await cluster.members(of: agent))?.isEmpty == false
                }
                try await checkFullDisk(cluster: cluster, agent: agent, ballast: ballast)
                cluster.terminate(agent)
                let exit = try await cluster.waitForExit(agent)
                #expect(exit.isCleanExit, "graceful stop after the disk filled: \(exit)")
            }
        }
    }

    /// A fallback whose disk is full refuses the hint instead of acknowledging it: the
    /// write it was meant to complete misses its quorum (503 naming the fallback), and
    /// nothing is left in the fallback's hints. Four agents (n = 3); node4's data dir is
    /// on a tmpfs filled by a ballast file and by writes until its store turns read-only.
    @Test func fallbackOnAFullDiskRefusesTheHint() async throws {
        try await AgentCluster.run(subnet: 63, label: "full-disk-hint") { cluster in
            try await withTmpfs(size: "4m", in: cluster, skipping: "fallbackOnAFullDiskRefusesTheHint") { mountPoint in
                let agents = try cluster.startNodes(3, firstHost: 1)
                let full = try cluster.start(
                    name: "node4", hostIndex: 4, join: [cluster.gossipAddress(1)],
                    dataDir: mountPoint.appendingPathComponent("data"))
                let all = agents + [full]
                try await cluster.waitAllAlive(all)
                try await cluster.waitUntilServing(all)
                try await checkFallbackRefusesHint(cluster: cluster, others: agents, full: full, mountPoint: mountPoint)
                cluster.terminate(full)
                _ = try await cluster.waitForExit(full)
            }
        }
    }

    /// Mounts a tmpfs of `size` in the cluster's folder, runs `body` with its path, then
    /// unmounts it. Where no tmpfs can be mounted (not root) the test is skipped with a
    /// message. If `body` throws, the agents whose data dir is on the tmpfs are killed and
    /// it is unmounted lazily.
    private func withTmpfs(
        size: String, in cluster: AgentCluster, skipping test: String, _ body: (URL) async throws -> Void
    ) async throws {
        let mountPoint = cluster.root.appendingPathComponent("tmpfs")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let mount = try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", mountPoint.path])
        guard mount.status == 0 else {
            print("SKIPPED \(test): cannot mount a tmpfs (needs root): \(mount.output)")
            return
        }
        do {
            try await body(mountPoint)
        } catch {
            for agent in cluster.agents where agent.isRunning && agent.dataDir.path.hasPrefix(mountPoint.path) {
                try? await cluster.kill9(agent)
            }
            _ = try? await run("/bin/umount", ["-l", mountPoint.path])
            throw error
        }
        let unmount = try await run("/bin/umount", [mountPoint.path])
        #expect(unmount.status == 0, "umount: \(unmount.output)")
    }

    private func checkFallbackRefusesHint(
        cluster: AgentCluster, others: [Agent], full: Agent, mountPoint: URL
    ) async throws {
        // Fill node4's volume: a ballast file takes what is free, then writes that node4
        // must store (it is a home replica, w=all) use up what SQLite had in hand.
        if let ballast = FileHandle(
            forWritingAtPath: {
                let path = mountPoint.appendingPathComponent("ballast").path
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                return path
            }())
        {
            let chunk = Data(repeating: 0xAB, count: 16 << 10)
            while (try? ballast.write(contentsOf: chunk)) != nil {}
            try? ballast.close()
        }
        func storageWritable(_ agent: Agent) async throws -> Bool? {
            let json = try await cluster.command(["status", "--format", "json", "--http-addr", agent.httpAddress])
            return try JSONDecoder().decode(StatusStorage.self, from: Data(json.stdout.utf8)).storage?.writable
        }
        var filled = false
        for index in 0..<200 where !filled {
            let key = "fill-\(index)"
            let ring = try await cluster.ring(of: full, key: key)
            guard ring.key?.replicas.contains(full.name) == true else { continue }
            _ = try await full.kvPut(key, String(repeating: "f", count: 8192), w: "all")
            filled = try await storageWritable(full) == false
        }
        try #require(filled, "node4's store never turned read-only")

        // A key node4 is the first fallback for; stop one of its home replicas.
        var chosen: (key: String, replicas: [String])?
        for index in 0..<500 where chosen == nil {
            let key = "hinted-\(index)"
            let placement = try #require(try await cluster.ring(of: others[0], key: key).key)
            if !placement.replicas.contains(full.name), placement.fallbacks.first == full.name {
                chosen = (key, placement.replicas)
            }
        }
        let (key, replicas) = try #require(chosen, "no key among hinted-0..499 has node4 as its first fallback")
        let victim = try #require(others.first { $0.name == replicas[0] })
        let live = others.filter { $0.name != victim.name }
        try await cluster.stopGracefully([victim], seenBy: live + [full])

        let hintsDroppedBefore = try await full.metric(#"chorus_hints_dropped_total{reason="error"}"#)
        let write = try await live[0].kvPut(key, "needs a hint", w: "3")
        #expect(write.status == 503, "w=3 with the fallback's disk full: \(write)")
        let body = try? write.decode(QuorumFailureBody.self)
        print("full-disk fallback: \(write)")
        #expect(body?.acknowledged == 2, "only the two live home replicas count: \(write)")
        #expect(
            body?.failures.contains { $0.contains(full.name) && $0.contains("disk full") } == true,
            "the failure names node4 and the full disk: \(write)")
        #expect(try await cluster.hints(of: full).isEmpty, "node4 must not hold a hint it could not store")
        let hintsDroppedAfter = try await full.metric(#"chorus_hints_dropped_total{reason="error"}"#)
        #expect(hintsDroppedAfter > hintsDroppedBefore)
        // W counts durable copies only: the two live home replicas meet w=2.
        let two = try await live[1].kvPut(key, "two copies", w: "2")
        #expect(two.status == 204, "w=2: \(two)")
    }

    private func checkFullDisk(cluster: AgentCluster, agent: Agent, ballast: URL) async throws {
        // Fill the disk: 8 kB values until writes fail (2 MB cannot hold 400 of them).
        var acknowledged: [String: String] = [:]
        var refused: [(key: String, response: KVHTTPResponse)] = []
        for index in 0..<400 where refused.count < 5 {
            let key = "fill-\(index)"
            let value = String(repeating: Character(UnicodeScalar(UInt8(97 + index % 26))), count: 8192)
            let put = try await agent.kvPut(key, value, w: "1")
            if put.status == 204 {
                acknowledged[key] = value
            } else {
                refused.append((key, put))
            }
        }
        try #require(!refused.isEmpty, "400 writes of 8 kB fitted on a 2 MB tmpfs")
        print("full disk: \(acknowledged.count) writes of 8 kB acknowledged, then refused: \(refused[0].response)")
        #expect(!acknowledged.isEmpty)
        #expect(agent.isRunning, "the agent must not crash on a full disk")
        for (key, response) in refused {
            #expect((500...599).contains(response.status), "\(key): \(response)")
            #expect(response.text.contains("disk full"), "\(key): the reason is given: \(response.text)")
        }

        // Said in the log and in `chorus status`.
        #expect(agent.log.contains("storage: read-only (disk full)"))
        let status = try await cluster.command(["status", "--http-addr", agent.httpAddress])
        #expect(status.stdout.contains("read-only (disk full)"), "chorus status: \(status.stdout)")
        let json = try await cluster.command(["status", "--format", "json", "--http-addr", agent.httpAddress])
        let storage = try JSONDecoder().decode(StatusStorage.self, from: Data(json.stdout.utf8)).storage
        #expect(storage?.state == "read-only (disk full)" && storage?.writable == false, "\(json.stdout)")
        let metrics = try await KVHTTP.request("GET", agent.httpAddress, "/metrics")
        #expect(metrics.text.contains("\nchorus_store_read_only 1"), "metrics: \(metrics.status)")

        // Reads go on: every acknowledged write is there, no refused one is.
        for (key, value) in acknowledged {
            let get = try await agent.kvGet(key, r: "1")
            #expect(get.status == 200 && get.text == value, "\(key): \(get.status)")
        }
        for (key, _) in refused {
            let get = try await agent.kvGet(key, r: "1")
            #expect(get.status == 404, "refused write \(key) must not be stored: \(get.status)")
        }

        // Freeing space: the next write commits and the store is writable again.
        try FileManager.default.removeItem(at: ballast)
        var recovered: KVHTTPResponse?
        for attempt in 0..<10 {
            let put = try await agent.kvPut("after-\(attempt)", "space again", w: "1")
            if put.status == 204 {
                recovered = put
                break
            }
        }
        #expect(recovered != nil, "no write succeeded after space was freed")
        try await cluster.waitUntil("storage writable", deadline: .seconds(10)) { () async throws -> Bool in
            let json = try await cluster.command(["status", "--format", "json", "--http-addr", agent.httpAddress])
            return try JSONDecoder().decode(StatusStorage.self, from: Data(json.stdout.utf8)).storage?.writable == true
        }
        #expect(agent.log.contains("storage: writable again"))
        let after = try await KVHTTP.request("GET", agent.httpAddress, "/metrics")
        #expect(after.text.contains("\nchorus_store_read_only 0"), "metrics: \(after.status)")
    }

    /// The storage part of `chorus status --format json`.
    struct StatusStorage: Decodable {
        struct Storage: Decodable {
            var state: String
            var writable: Bool
            var detail: String?
        }
        var storage: Storage?
    }

    /// Runs a short system command (mount, umount) to completion.
    private func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await onOwnThread { try runToCompletion(executable, arguments) }
    }
}

extension Optional {
    fileprivate func unwrapped(_ what: String) throws -> Wrapped {
        guard let self else { throw HarnessError("cannot \(what)") }
        return self
    }
}
