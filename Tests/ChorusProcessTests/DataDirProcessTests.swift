import Foundation
import Testing

/// A damaged or foreign data dir stops the agent with a message (DESIGN §8: a
/// corrupt data file stops the agent rather than serving wrong data).
@Suite("Data dir checks, real agents", .serialized)
struct DataDirProcessTests {
    @Test func corruptDatabaseStopsTheAgentWithAMessage() async throws {
        try await AgentCluster.run(subnet: 40, label: "corrupt-db") { cluster in
            let agent = try cluster.start(name: "node1", hostIndex: 1, join: [])
            try await cluster.waitUntil("node1 serves", deadline: .seconds(30)) { () async throws -> Bool in
                (try? await cluster.members(of: agent))?.isEmpty == false
            }
            cluster.terminate(agent)
            _ = try await cluster.waitForExit(agent)
            // Overwrite pages in the middle of the database, as a failing disk would (after
            // copying the WAL a stop leaves into the file, as the background checkpoints of a
            // long-running agent would).
            let database = agent.dataDir.appendingPathComponent("chorus.db")
            try checkpointIntoDatabaseFile(path: database.path)
            let handle = try FileHandle(forWritingTo: database)
            try handle.seek(toOffset: 4096)
            try handle.write(contentsOf: Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
            try handle.close()
            try cluster.restart(agent)
            let exit = try await cluster.waitForExit(agent)
            #expect(exit.reason == .exit && exit.status == 1, "agent should exit with status 1, got \(exit)")
            #expect(agent.logTail(lines: 20).contains("corrupt"))
            #expect(agent.logTail(lines: 20).contains(database.path))
        }
    }

    @Test func foreignDatabaseStopsTheAgentWithAMessage() async throws {
        try await AgentCluster.run(subnet: 40, label: "foreign-db") { cluster in
            let dataDir = cluster.root.appendingPathComponent("foreign")
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
            // An SQLite database some other program created: valid file, wrong application_id.
            let database = dataDir.appendingPathComponent("chorus.db").path
            let python = try await onOwnThread {
                try runToCompletion(
                    "/usr/bin/env",
                    [
                        "python3", "-c",
                        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table t(x)'); c.commit()",
                        database,
                    ])
            }
            try #require(python.status == 0, "\(python.output)")
            let agent = try cluster.start(name: "node1", hostIndex: 2, join: [], dataDir: dataDir)
            let exit = try await cluster.waitForExit(agent)
            #expect(exit.reason == .exit && exit.status == 1, "agent should exit with status 1, got \(exit)")
            #expect(agent.logTail(lines: 20).contains("did not create"))
        }
    }
}
