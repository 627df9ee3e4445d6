import ArgumentParser
import CJemalloc
import ChorusNode
import Foundation

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the Chorus agent on this host.",
        discussion: """
            Settings come from the config file, then CHORUS_* environment variables, then flags \
            (later wins). Every setting of the file has a flag and a variable:

            """
                + ConfigLoader.settings.filter { $0.kind != .buckets }.map { setting in
                    let flag = "--\(setting.flag) VALUE".padding(toLength: 38, withPad: " ", startingAt: 0)
                    return "  \(flag) \(setting.environmentVariable)\n      \(setting.key): \(setting.help)"
                }.joined(separator: "\n")
                + "\n\n--join and --tag (k=v) may repeat; their variables take comma-separated lists."
                + " Buckets ([buckets.NAME] tables) are set in the file only.")

    @Option(name: .long, help: "Path of a chorus.toml config file.")
    var config: String?

    @Flag(name: .long, help: "Check the configuration, print it, and exit.")
    var checkConfig = false

    @Argument(parsing: .allUnrecognized, help: .hidden)
    var settingFlags: [String] = []

    func run() throws {
        let flags = try Self.parseSettingFlags(settingFlags)
        let environment = ProcessInfo.processInfo.environment
        let loaded: AgentConfig
        do {
            loaded = try ConfigLoader.load(
                file: config ?? environment["CHORUS_CONFIG"], environment: environment, flags: flags,
                hostName: ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "chorus")
        } catch {
            // One line, like every line the agent writes (the log has no node name yet).
            let text = "\(error)".replacingOccurrences(of: "\n", with: "\\n")
            FileHandle.standardError.write(Data("chorus agent: config error: \(text)\n".utf8))
            throw ExitCode(2)
        }
        if checkConfig {
            print(
                "configuration OK: name=\(loaded.name) bind=\(loaded.bind) advertise=\(loaded.advertise) http=\(loaded.httpAddr) data_dir=\(loaded.dataDir)"
            )
            return
        }
        let file = config ?? environment["CHORUS_CONFIG"]
        let hostName = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "chorus"
        let allocator = chorus_jemalloc_version().map { "jemalloc " + String(cString: $0) } ?? "system malloc"
        let status = Agent.run(
            config: loaded, allocator: allocator,
            reload: { try ConfigLoader.load(file: file, environment: environment, flags: flags, hostName: hostName) })
        if status != 0 { throw ExitCode(status) }
    }

    /// `--probe-interval 1s`, `--probe-interval=1s`, repeated `--join`/`--tag`.
    static func parseSettingFlags(_ arguments: [String]) throws -> [String: [String]] {
        let byFlag = Dictionary(
            uniqueKeysWithValues: ConfigLoader.settings.filter { $0.kind != .buckets }.map { ($0.flag, $0) })
        var values: [String: [String]] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            guard argument.hasPrefix("--") else {
                throw ValidationError("unexpected argument '\(argument)'")
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let setting = byFlag[name] else {
                throw ValidationError("unknown option '--\(name)' (see `chorus agent --help`)")
            }
            if value == nil {
                index += 1
                guard index < arguments.count else { throw ValidationError("--\(name) needs a value") }
                value = arguments[index]
            }
            values[setting.key, default: []].append(value!)
            index += 1
        }
        return values
    }
}
