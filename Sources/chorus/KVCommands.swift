import ArgumentParser
import ChorusCore
import ChorusNode
import Foundation
import NIOHTTP1

/// Percent-encodes a path segment (keys may hold any UTF-8, slashes included).
private func segment(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

private func keyPath(_ bucket: String, _ key: String, _ query: [String: String?]) -> String {
    let parameters = query.compactMap { name, value in value.map { "\(name)=\(segment($0))" } }.sorted()
    return "/v1/kv/\(segment(bucket))/\(segment(key))"
        + (parameters.isEmpty ? "" : "?" + parameters.joined(separator: "&"))
}

/// The JSON body of a 300 answer.
private struct Siblings: Decodable {
    struct Sibling: Decodable {
        var value: String
        var timestamp: String
        var node: String
    }
    var siblings: [Sibling]
    var context: String
}

private struct ErrorBody: Decodable {
    var error: String
    var acknowledged: Int?
    var required: Int?
}

private func explain(_ response: APIClient.Response) -> String {
    if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)) {
        return "\(response.status): \(body.error)"
    }
    return "\(response.status): \(String(decoding: response.body, as: UTF8.self))"
}

private func contextOf(_ response: APIClient.Response) -> String? {
    response.headers.first { $0.0.lowercased() == "x-chorus-context" }?.1
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Read a key. Prints its value, or every sibling.",
        discussion:
            "Exit status: 0 found, 2 not found, 1 any other failure. --context prints the causal context to stderr.")

    @OptionGroup var api: APIOptions
    @Option(help: "Bucket.") var bucket = BucketProperties.defaultBucketName
    @Option(help: "Read quorum: one, quorum, all or a number.") var r: String?
    @Option(help: "Request timeout, e.g. 2s.") var timeout: String?
    @Flag(help: "Read only this node's copy, without coordination.") var local = false
    @Flag(help: "Print the causal context (for a following put) to stderr.") var context = false
    @Argument(help: "Key.") var key: String

    func run() throws {
        let query: [String: String?] = ["r": r, "timeout": timeout, "replica": local ? "local" : nil]
        let response: APIClient.Response
        do {
            response = try api.client().request(.GET, keyPath(bucket, key, query))
        } catch let failure as APIClient.Failure {
            fail(failure.description)
        }
        if context, let value = contextOf(response) {
            FileHandle.standardError.write(Data("context: \(value)\n".utf8))
        }
        switch response.status {
        case 200:
            FileHandle.standardOutput.write(Data(response.body))
            if response.body.last != 0x0A { print() }
        case 300:
            guard let siblings = try? JSONDecoder().decode(Siblings.self, from: Data(response.body)) else {
                fail("unreadable siblings answer")
            }
            print("\(siblings.siblings.count) siblings (write back with --context to resolve):")
            for (index, sibling) in siblings.siblings.enumerated() {
                let data = Data(base64Encoded: sibling.value) ?? Data()
                let text = String(data: data, encoding: .utf8) ?? "<\(data.count) bytes>"
                print("[\(index + 1)] \(text)    (written at \(sibling.timestamp) by \(sibling.node.prefix(8)))")
            }
        case 404:
            FileHandle.standardError.write(Data("chorus: not found\n".utf8))
            throw ExitCode(2)
        default:
            fail(explain(response))
        }
    }
}

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Write a key.",
        discussion: """
            Without --context, put reads the key first and writes with its context, so the new value \
            replaces what is there now (a read-modify-write). --blind skips that read: the write then \
            becomes a sibling of any value it did not see.
            """)

    @OptionGroup var api: APIOptions
    @Option(help: "Bucket.") var bucket = BucketProperties.defaultBucketName
    @Option(help: "Write quorum: one, quorum, all or a number.") var w: String?
    @Option(help: "Request timeout, e.g. 2s.") var timeout: String?
    @Option(help: "Causal context from a read.") var context: String?
    @Option(help: "Read the value from this file ('-' for stdin) instead of the argument.") var file: String?
    @Flag(help: "Write without reading the current context first.") var blind = false
    @Argument(help: "Key.") var key: String
    @Argument(help: "Value.") var value: String?

    func validate() throws {
        if (value == nil) == (file == nil) { throw ValidationError("give a value or --file, not both or neither") }
    }

    func run() throws {
        var body = Array((value ?? "").utf8)
        if let file {
            guard
                let data = file == "-"
                    ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            else {
                fail("cannot read \(file)")
            }
            body = Array(data)
        }
        let context = try self.context ?? (blind ? nil : currentContext(api: api, bucket: bucket, key: key))
        try send(
            .PUT, api: api, path: keyPath(bucket, key, ["w": w, "timeout": timeout]), body: body, context: context)
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a key (writes a tombstone carrying the context).")

    @OptionGroup var api: APIOptions
    @Option(help: "Bucket.") var bucket = BucketProperties.defaultBucketName
    @Option(help: "Write quorum: one, quorum, all or a number.") var w: String?
    @Option(help: "Request timeout, e.g. 2s.") var timeout: String?
    @Option(help: "Causal context from a read (default: the key's current context).") var context: String?
    @Flag(help: "Delete without reading the current context first (concurrent values survive).") var blind = false
    @Argument(help: "Key.") var key: String

    func run() throws {
        let context = try self.context ?? (blind ? nil : currentContext(api: api, bucket: bucket, key: key))
        try send(
            .DELETE, api: api, path: keyPath(bucket, key, ["w": w, "timeout": timeout]), body: [], context: context)
    }
}

/// The key's causal context as a quorum read sees it now (nil when it never existed).
private func currentContext(api: APIOptions, bucket: String, key: String) throws -> String? {
    let response: APIClient.Response
    do {
        response = try api.client().request(.GET, keyPath(bucket, key, [:]))
    } catch let failure as APIClient.Failure {
        fail(failure.description)
    }
    guard [200, 300, 404].contains(response.status) else { fail("reading the current context: \(explain(response))") }
    return contextOf(response)
}

private func send(_ method: HTTPMethod, api: APIOptions, path: String, body: [UInt8], context: String?) throws {
    let response: APIClient.Response
    do {
        response = try api.client().request(
            method, path, body: body, headers: context.map { [("X-Chorus-Context", $0)] } ?? [])
    } catch let failure as APIClient.Failure {
        fail(failure.description)
    }
    guard (200..<300).contains(response.status) else { fail(explain(response)) }
    print("ok" + (contextOf(response).map { " (context \($0))" } ?? ""))
}

struct RingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring", abstract: "Show each node's share of partitions, or where a key lives.")

    @OptionGroup var api: APIOptions
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table
    @Option(help: "Bucket (its n decides the replica count).") var bucket = BucketProperties.defaultBucketName
    @Option(help: "Show this key's partition and replicas.") var key: String?

    func run() throws {
        var path = "/v1/ring?bucket=\(segment(bucket))"
        if let key { path += "&key=\(segment(key))" }
        let ring = try api.call(.GET, path, as: RingView.self)
        if format == .json {
            printJSON(ring)
            return
        }
        if let key = ring.key {
            print("bucket \(key.bucket), key \(key.key): partition \(key.partition) of \(ring.partitions)")
            print("home replicas: \(key.replicas.joined(separator: ", "))")
            print("fallbacks:     \(key.fallbacks.joined(separator: ", "))")
            return
        }
        var rows = [["Node", "Status", "Primary", "Replica", "Share"]]
        for node in ring.nodes.sorted(by: { $0.name < $1.name }) {
            let share = Double(node.replica) / Double(max(1, ring.partitions * ring.n)) * 100
            rows.append([node.name, node.status, "\(node.primary)", "\(node.replica)", String(format: "%.1f%%", share)])
        }
        printTable(rows)
        print("\(ring.partitions) partitions, n=\(ring.n) (bucket \(ring.bucket))")
    }
}
