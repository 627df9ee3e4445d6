import ArgumentParser
import ChorusCrypto
import ChorusNode
import Foundation

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Print a new random cluster key (base64).")

    func run() throws {
        print(try ClusterKey.generate().base64)
    }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Rotate the cluster keyring on every alive member, like `serf keys`.",
        discussion: """
            Rotation: `keys install NEW`, then `keys use NEW`, then `keys remove OLD`. \
            Each reports per node; a node that was down catches up when it rejoins.
            """,
        subcommands: [List.self, Install.self, Use.self, Remove.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys each member holds.")
        @OptionGroup var api: APIOptions
        @Option(help: "Output format: table or json.") var format: OutputFormat = .table

        func run() throws {
            let results = try api.call(.GET, "/v1/keys", as: [KeyOperationResult].self)
            report(results, format: format, verb: "listed")
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Install a key on every member.")
        @OptionGroup var change: KeyChange
        func run() throws { try change.apply("install") }
    }

    struct Use: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an installed key primary everywhere.")
        @OptionGroup var change: KeyChange
        func run() throws { try change.apply("use") }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a (non-primary) key everywhere.")
        @OptionGroup var change: KeyChange
        func run() throws { try change.apply("remove") }
    }

    /// What `install`, `use` and `remove` take: the agent, the output format, the key.
    struct KeyChange: ParsableArguments {
        @OptionGroup var api: APIOptions
        @Option(help: "Output format: table or json.") var format: OutputFormat = .table
        @Argument(help: "Base64 key from `chorus keygen`.") var key: String

        func apply(_ operation: String) throws { try operate(operation, key: key, api: api, format: format) }
    }
}

private func operate(_ operation: String, key: String, api: APIOptions, format: OutputFormat) throws {
    do {
        _ = try ClusterKey(base64: key)
    } catch {
        throw ValidationError("not a valid key: \(error)")
    }
    let body = try JSONEncoder().encode(["key": key])
    let results = try api.call(
        .POST, "/v1/keys/\(operation)", body: Array(body), as: [KeyOperationResult].self, accept: [200, 207])
    report(results, format: format, verb: operation)
    if results.contains(where: { !$0.ok }) { throw ExitCode(1) }
}

private func report(_ results: [KeyOperationResult], format: OutputFormat, verb: String) {
    if format == .json {
        printJSON(results)
        return
    }
    var rows = [["Node", "Result", "Primary", "Keys"]]
    for result in results.sorted(by: { $0.node < $1.node }) {
        let keyIDs = result.keys.map { (try? ClusterKey(base64: $0))?.keyIDHex ?? "?" }
        let primary = result.primary.flatMap { try? ClusterKey(base64: $0) }?.keyIDHex ?? "-"
        rows.append([
            result.node, result.ok ? "ok" : "error: \(result.error ?? "?")", primary, keyIDs.joined(separator: ","),
        ])
    }
    printTable(rows)
    let failed = results.filter { !$0.ok }.count
    print("\(verb): \(results.count - failed)/\(results.count) nodes ok (keys shown by key id)")
}
