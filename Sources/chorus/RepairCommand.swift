import ArgumentParser
import ChorusNode
import Foundation

struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Run a full anti-entropy round now on this agent and show what it repaired.",
        discussion: """
            Compares every partition this agent replicates (or --partition) with every live \\
            co-replica (or --node): Merkle summaries over UDP, then the differing keys over TCP, \\
            like `nodetool repair`. Exits 0 once the round has finished.
            """)

    @OptionGroup var api: APIOptions
    @Option(help: "Only this partition.") var partition: Int?
    @Option(help: "Only compare with this member (by name).") var node: String?
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    func run() throws {
        var query: [String] = []
        if let partition { query.append("partition=\(partition)") }
        if let node {
            let escaped = node.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? node
            query.append("node=\(escaped)")
        }
        let path = "/v1/repair" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        var view = try api.call(.POST, path, as: RepairView.self, accept: [200, 202])
        let round = view.round
        if format == .table {
            print(Self.row(["Exchanges", "Partitions", "Keys repaired", "UDP bytes", "TCP bytes", "Failed"]))
        }
        var lastShown = -1
        while view.running || view.round != round {
            if format == .table, view.exchangesDone != lastShown {
                lastShown = view.exchangesDone
                progress(view)
            }
            Thread.sleep(forTimeInterval: 0.2)
            view = try api.call(.GET, "/v1/repair", as: RepairView.self)
        }
        if format == .json {
            printJSON(view)
            return
        }
        progress(view)
        if !view.repairs.isEmpty {
            print("")
            var rows = [["Partition", "Peer", "Segments", "Keys repaired", "UDP bytes", "TCP bytes", "Error"]]
            for exchange in view.repairs.sorted(by: { ($0.partition, $0.peer) < ($1.partition, $1.peer) }) {
                rows.append([
                    "\(exchange.partition)", exchange.peer, "\(exchange.segments)", "\(exchange.keysRepaired)",
                    "\(exchange.udpBytes)", "\(exchange.tcpBytes)", exchange.error ?? "-",
                ])
            }
            printTable(rows)
        }
        print("")
        print(
            "repaired \(view.keysRepaired) keys in \(view.partitions) partitions (\(view.exchangesDone) exchanges, "
                + "\(view.failed) failed, \(view.skippedPartitions.count) partitions without a live co-replica) "
                + "in \(String(format: "%.1f", view.seconds))s; UDP \(view.udpBytes) bytes, TCP \(view.tcpBytes) bytes")
    }

    /// Progress columns: fixed widths, as the rows arrive one by one.
    static let widths = [11, 10, 13, 12, 12, 6]

    static func row(_ cells: [String]) -> String {
        zip(cells, widths).enumerated().map { index, pair in
            index == cells.count - 1
                ? pair.0 : pair.0.padding(toLength: max(pair.1, pair.0.count), withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }

    private func progress(_ view: RepairView) {
        print(
            Self.row([
                "\(view.exchangesDone)/\(view.exchangesTotal)", "\(view.partitions)", "\(view.keysRepaired)",
                "\(view.udpBytes)", "\(view.tcpBytes)", "\(view.failed)",
            ]))
    }
}
