import ArgumentParser
import ChorusNode
import Foundation

struct HintsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hints",
        abstract: "List the hints this node holds for replicas that were down, per target.",
        discussion: """
            A hint is a write this node took in place of a down home replica (sloppy quorum). It is \\
            handed off when SWIM sees the target alive again, and deleted once the target stored it.
            """)

    @OptionGroup var api: APIOptions
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    func run() throws {
        let hints = try api.call(.GET, "/v1/hints", as: [HintTargetView].self)
        if format == .json {
            printJSON(hints)
            return
        }
        guard !hints.isEmpty else {
            print("no pending hints")
            return
        }
        var rows = [["Target", "Status", "Hints", "Bytes", "Oldest", "Last error"]]
        for hint in hints {
            rows.append([
                hint.target, hint.status, "\(hint.count)", "\(hint.bytes)",
                String(format: "%.0fs ago", hint.oldestAgeSeconds), hint.lastError ?? "-",
            ])
        }
        printTable(rows)
    }
}
