import ArgumentParser
import ChorusCore
import ChorusSim
import Foundation

/// `chorus sim`: one deterministic simulated scenario (ChorusSim) over the real SWIM
/// core. Exit status 0 when every invariant held, 1 otherwise (the seed is printed
/// so the run can be replayed exactly).
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulate a cluster's membership under loss, crashes and pauses, from a seed.",
        discussion: """
            Runs N nodes' SWIM cores in one process over a simulated network and clock. \
            Crashed nodes must be seen dead by every live node within the detection bound; \
            live nodes must never be declared dead; incarnations never go backwards. \
            The same seed gives the same run (compare the digest).
            """)

    @Option(help: "Number of nodes.") var nodes: Int = 50
    @Option(help: "Simulated seconds.") var duration: Double = 120
    @Option(help: "Fraction of datagrams lost, 0 ..< 1.") var loss: Double = 0
    @Option(help: "Nodes that crash (at random times after the warm-up).") var crashes: Int = 0
    @Option(help: "Nodes that pause again and again (GC pauses, CPU starvation).") var pauses: Int = 0
    @Option(help: "Shortest pause, seconds.") var pauseMin: Double = 1
    @Option(help: "Longest pause, seconds.") var pauseMax: Double = 10
    @Option(help: "Nodes that are slow again and again: they read datagrams late (CPU starvation).")
    var slow: Int = 0
    @Option(help: "Smallest inbound lag of a slow episode, seconds.") var slowLagMin: Double = 1
    @Option(help: "Largest inbound lag of a slow episode, seconds.") var slowLagMax: Double = 16
    @Option(help: "A slow node's timers fire this fraction of its inbound lag late.") var slowTimerLag: Double = 0.1
    @Option(help: "Fraction of datagrams delivered twice.") var duplication: Double = 0
    @Option(help: "Fraction of datagrams delayed past later ones.") var reordering: Double = 0
    @Option(help: "False positives tolerated before the run fails.") var allowedFalsePositives: Int = 0
    @Option(help: "Seed of every random choice in the run.") var seed: UInt64 = 1
    @Option(help: "Lifeguard extensions: on or off.") var lifeguard: Toggle = .on
    @Option(
        help: """
            Leave out Lifeguard parts, comma-separated: probe (local health aware probe), \
            suspicion (dynamic suspicion timeout), buddy (buddy system), health-suspicion \
            (local health stretching suspicion timeouts).
            """)
    var lifeguardWithout: String = ""
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    enum Toggle: String, ExpressibleByArgument, CaseIterable { case on, off }

    /// The Lifeguard parts `--lifeguard-without` names.
    func omittedParts() throws -> LifeguardParts {
        var parts: LifeguardParts = []
        for name in lifeguardWithout.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            switch name {
            case "probe": parts.insert(.localHealthProbe)
            case "suspicion": parts.insert(.dynamicSuspicion)
            case "buddy": parts.insert(.buddySystem)
            case "health-suspicion": parts.insert(.healthAwareSuspicion)
            case "": continue
            default:
                throw ValidationError(
                    "--lifeguard-without: unknown part \(name) (probe, suspicion, buddy, health-suspicion)")
            }
        }
        return parts
    }

    func validate() throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard (0..<1).contains(loss), (0..<1).contains(duplication), (0..<1).contains(reordering) else {
            throw ValidationError("--loss, --duplication and --reordering are fractions in 0 ..< 1")
        }
        guard crashes >= 0, pauses >= 0, crashes + pauses < nodes else {
            throw ValidationError("--crashes plus --pauses must leave at least one healthy node")
        }
        guard pauseMin > 0, pauseMax >= pauseMin else { throw ValidationError("need 0 < --pause-min ≤ --pause-max") }
        guard slow >= 0, crashes + pauses + slow < nodes else {
            throw ValidationError("--crashes, --pauses and --slow must leave at least one healthy node")
        }
        guard slowLagMin > 0, slowLagMax >= slowLagMin, slowTimerLag >= 0 else {
            throw ValidationError("need 0 < --slow-lag-min ≤ --slow-lag-max and --slow-timer-lag ≥ 0")
        }
        _ = try omittedParts()
    }

    func run() throws {
        var pattern = Scenario.PausePattern()
        pattern.shortest = .seconds(pauseMin)
        pattern.longest = .seconds(pauseMax)
        var slowPattern = Scenario.SlowPattern()
        slowPattern.smallestLag = .seconds(slowLagMin)
        slowPattern.largestLag = .seconds(slowLagMax)
        slowPattern.timerLag = slowTimerLag
        var scenario = Scenario.standard(
            nodes: nodes, duration: .seconds(duration), loss: loss, crashes: crashes, pauses: pauses, slow: slow,
            seed: seed, lifeguard: lifeguard == .on, pausePattern: pattern, slowPattern: slowPattern)
        scenario.settings.lifeguardParts.subtract(try omittedParts())
        scenario.network.duplication = duplication
        scenario.network.reordering = reordering
        scenario.allowedFalsePositives = allowedFalsePositives
        let report = Simulator(scenario).run()
        switch format {
        case .json: printJSON(report)
        case .table: print(report.summaryLines.joined(separator: "\n"))
        }
        guard report.passed else {
            FileHandle.standardError.write(Data("chorus sim: invariant violated; replay with --seed \(seed)\n".utf8))
            throw ExitCode(1)
        }
    }
}
