import ArgumentParser
import ChorusCore
import ChorusNode
import Foundation
import NIOHTTP1

/// Options every operator command shares: where the local agent's API is.
struct APIOptions: ParsableArguments {
    @Option(name: .customLong("http-addr"), help: "Agent HTTP API address (env CHORUS_HTTP_ADDR).")
    var httpAddr: String?

    @Option(name: .customLong("http-token"), help: "Bearer token for the API (env CHORUS_HTTP_TOKEN).")
    var httpToken: String?

    func client() throws -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        let text = httpAddr ?? environment["CHORUS_HTTP_ADDR"] ?? "127.0.0.1:7480"
        guard let address = Endpoint(parsing: text) else {
            throw ValidationError("--http-addr must be HOST:PORT, got '\(text)'")
        }
        return APIClient(address: address, token: httpToken ?? environment["CHORUS_HTTP_TOKEN"])
    }

    /// Performs a request and decodes its JSON answer; exits 1 with the agent's
    /// error (or the connection failure) on stderr otherwise.
    func call<T: Decodable>(
        _ method: HTTPMethod, _ path: String, body: [UInt8] = [], as type: T.Type, accept: Set<Int> = [200]
    ) throws -> T {
        let response: APIClient.Response
        do {
            response = try client().request(method, path, body: body)
        } catch let failure as APIClient.Failure {
            fail(failure.description)
        }
        guard accept.contains(response.status) else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error
            fail("agent answered \(response.status): \(message ?? String(decoding: response.body, as: UTF8.self))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            fail("unreadable answer from the agent: \(error)")
        }
    }
}

/// The API's error body: `{"error": "..."}`.
private struct ErrorBody: Decodable { var error: String }

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("chorus: \(message)\n".utf8))
    Foundation.exit(1)
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self))
}

/// Left-aligned columns separated by two spaces, like `serf members`.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = Array(repeating: 0, count: first.count)
    for row in rows {
        for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    for row in rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}

struct MembersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members", abstract: "List the cluster's members as this agent sees them.")

    @OptionGroup var api: APIOptions
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table
    @Option(help: "Only members with this status: alive, suspect, dead, stopped or left.") var status: String?
    @Flag(help: "Add each peer's last probe round trip and whether UDP reaches it.") var detailed = false

    func validate() throws {
        if let status, MemberStatus(name: status) == nil {
            throw ValidationError("--status must be one of alive, suspect, dead, stopped, left")
        }
    }

    func run() throws {
        var members = try api.call(.GET, "/v1/members", as: [MemberView].self)
        if let status { members = members.filter { $0.status == status } }
        if !detailed {
            for index in members.indices {
                members[index].rttMilliseconds = nil
                members[index].udp = nil
            }
        }
        if format == .json {
            printJSON(members)
            return
        }
        var rows = [["Name", "Address", "Status", "Incarnation"] + (detailed ? ["RTT", "Path"] : []) + ["Tags"]]
        for member in members {
            let tags = member.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            var row = [member.name, member.address, member.status, String(member.incarnation)]
            if detailed {
                row.append(member.rttMilliseconds.map { String(format: "%.2fms", $0) } ?? "-")
                row.append(member.udp.map { $0 ? "udp" : "tcp-only" } ?? "-")
            }
            rows.append(row + [tags])
        }
        printTable(rows)
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show this agent's state and traffic counters.")

    @OptionGroup var api: APIOptions
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table
    @Flag(help: "Wait until the agent is serving (answers, alive, sees a member alive), then print its status.")
    var waitHealthy = false
    @Option(help: "With --wait-healthy: give up after this long (e.g. 60s); exit 1.") var timeout: String = "60s"

    func run() throws {
        if waitHealthy { try waitUntilHealthy() }
        let status = try api.call(.GET, "/v1/status", as: StatusView.self)
        if format == .json {
            printJSON(status)
            return
        }
        let members = ["alive", "suspect", "dead", "stopped", "left"].map { "\($0)=\(status.members[$0] ?? 0)" }
        let dropped = status.datagrams.dropped.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let tcpDropped = status.tcp.dropped.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var entropyRows: [[String]] = []
        if let entropy = status.antiEntropy {
            let age = { (seconds: Double?) in seconds.map { String(format: "%.0fs ago", $0) } ?? "never" }
            entropyRows = [
                [
                    "Anti-entropy",
                    "trees=\(entropy.trees) (rebuilt \(entropy.treesRebuilt) with \(entropy.keysIndexed) keys in "
                        + "\(String(format: "%.2f", entropy.rebuildSeconds))s)",
                ],
                [
                    "Exchanges",
                    "done=\(entropy.exchanges) equal=\(entropy.exchangesEqual) failed=\(entropy.exchangesFailed) "
                        + "answered=\(entropy.answered) keys_repaired=\(entropy.keysRepaired) "
                        + "udp_bytes=\(entropy.udpBytes) tcp_bytes=\(entropy.tcpBytes) "
                        + "tombstones_reaped=\(entropy.tombstonesReaped) catch_up_pending=\(entropy.catchUpPending)",
                ],
                [
                    "Last exchange",
                    "\(entropy.partitionsExchanged)/\(entropy.partitionsReplicated) partitions; "
                        + "newest \(age(entropy.newestExchangeAgeSeconds)), oldest \(age(entropy.oldestExchangeAgeSeconds))",
                ],
            ]
        }
        printTable(
            [
                ["Name", status.name],
                ["ID", status.id],
                ["Address", status.address],
                ["Cluster", status.clusterName],
                ["Status", "\(status.status) (incarnation \(status.incarnation))"],
                ["Members", members.joined(separator: " ")],
                ["Uptime", String(format: "%.0fs", status.uptimeSeconds)],
                ["Local health", "\(status.localHealth) (0 is healthy)"],
                [
                    "Datagrams",
                    "in=\(status.datagrams.in) out=\(status.datagrams.out) bytes_in=\(status.datagrams.bytesIn) bytes_out=\(status.datagrams.bytesOut)",
                ],
                ["Dropped", dropped.isEmpty ? "none" : dropped.joined(separator: " ")],
                [
                    "TCP",
                    "requests in=\(status.tcp.requestsIn) out=\(status.tcp.requestsOut) failures=\(status.tcp.requestFailures)",
                ],
                ["TCP refused", tcpDropped.isEmpty ? "none" : tcpDropped.joined(separator: " ")],
                ["Keyring", "version \(status.keyringVersion)"],
            ] + ringRows(status.ring) + storageRows(status.storage) + entropyRows)
    }
}

extension StatusCommand {
    func ringRows(_ ring: RingChangeView?) -> [[String]] {
        guard let ring else { return [] }
        var text = ring.phase
        if !ring.transfer.isEmpty {
            text += "; last transfer: \(ring.transfer) \(LeaveCommand.describe(ring))"
            text += String(format: " in %.1fs", ring.seconds)
            if let error = ring.error { text += " (\(error))" }
        }
        return [["Ring", text]]
    }

    /// `Storage  read-only (disk full): <SQLite's message>`, or nothing from an older agent.
    func storageRows(_ storage: StorageView?) -> [[String]] {
        guard let storage else { return [] }
        return [["Storage", storage.detail.map { "\(storage.state): \($0)" } ?? storage.state]]
    }

    /// Polls `GET /v1/status` until this node answers, is `alive`, and has joined
    /// (at least one alive member: itself counts in a cluster of one).
    func waitUntilHealthy() throws {
        guard let limit = DurationParsing.parse(timeout) else {
            throw ValidationError("--timeout must be a duration like 60s")
        }
        let deadline = ContinuousClock.now + limit
        var last = "no answer yet"
        while ContinuousClock.now < deadline {
            if let response = try? api.client().request(.GET, "/v1/status"), response.status == 200,
                let status = try? JSONDecoder().decode(StatusView.self, from: Data(response.body))
            {
                // A joining node serves no reads until it holds its partitions.
                if status.status == "alive", (status.members["alive"] ?? 0) >= 1, status.ring?.phase != "joining" {
                    return
                }
                last = status.ring?.phase == "joining" ? "joining the ring" : "status \(status.status)"
            } else {
                last = "not answering"
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        fail("not healthy after \(timeout): \(last)")
    }
}

struct LeaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave",
        abstract: "Make this agent leave the cluster for good and exit.",
        discussion: """
            The agent first streams each of its partitions to the partition's next owner \
            and hands off its hints (progress is shown), then announces `left` and exits. \
            The cluster keeps serving throughout. A leave that cannot finish (a next owner \
            unreachable) is aborted and the node stays a member.
            """)

    @OptionGroup var api: APIOptions
    @Option(help: "Give up waiting after this long (e.g. 30m); the leave goes on.") var timeout: String = "60m"
    @Flag(help: "Leave even if fewer members than the replication factor would remain.") var force = false

    func run() throws {
        guard let limit = DurationParsing.parse(timeout) else {
            throw ValidationError("--timeout must be a duration like 30m")
        }
        _ = try api.call(.POST, force ? "/v1/leave?force=true" : "/v1/leave", as: RingChangeView.self, accept: [202])
        let deadline = ContinuousClock.now + limit
        var shown = ""
        while ContinuousClock.now < deadline {
            guard let response = try? api.client().request(.GET, "/v1/leave"), response.status == 200,
                let progress = try? JSONDecoder().decode(RingChangeView.self, from: Data(response.body))
            else {
                // The agent exits once it has announced `left`.
                print("left the cluster")
                return
            }
            let line = Self.describe(progress)
            if line != shown {
                print(line)
                shown = line
            }
            if progress.state == "failed" { fail("leave aborted: \(progress.error ?? "unknown error")") }
            if progress.phase == "left" {
                print("left the cluster")
                return
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        fail("still leaving after \(timeout); follow it with `chorus status`")
    }

    static func describe(_ progress: RingChangeView) -> String {
        "\(progress.state): \(progress.partitionsDone)/\(progress.partitionsTotal) partitions, "
            + "\(progress.objects) objects, \(progress.bytes) bytes"
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Forget a member that is dead for good; its partitions are re-replicated.",
        discussion: """
            For a host that will not come back. The member must be dead or stopped; a \
            running node leaves with `chorus leave` instead. Every node drops it from the \
            ring, and the nodes that inherit its partitions fetch them from the surviving \
            replicas (see `chorus status` on them).
            """)

    @OptionGroup var api: APIOptions
    @Argument(help: "The member's name.") var name: String

    func run() throws {
        struct Reply: Decodable {
            var removed: String
            var id: String
        }
        let query = name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name
        let reply = try api.call(.POST, "/v1/remove?name=\(query)", as: Reply.self)
        print("removed \(reply.removed) (\(reply.id)); its partitions are being re-replicated")
    }
}
