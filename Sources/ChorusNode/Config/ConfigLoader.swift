import ChorusCore
import ChorusStorage
import Foundation
import TOMLKit

/// A configuration problem, worded for the operator: where the value came from
/// (file and line, environment variable or flag) and what was expected.
public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Merges `chorus.toml`, `CHORUS_*` environment variables and command-line flags,
/// in that order of precedence (later wins), into an `AgentConfig`.
///
/// Every setting is declared once in `ConfigLoader.settings`; its flag
/// (`--probe-interval`) and environment variable (`CHORUS_PROBE_INTERVAL`) are
/// derived from its key (`gossip.probe_interval`).
public enum ConfigLoader {
    public enum Kind: Sendable {
        case string, endpoint, duration, integer, boolean, list, tags
        /// `[buckets.NAME]` tables (file only).
        case buckets
    }

    public struct Setting: Sendable {
        public var key: String
        public var kind: Kind
        public var help: String

        /// The last component of the key: `probe_interval`.
        public var leaf: String { String(key.split(separator: ".").last ?? Substring(key)) }
        public var flag: String { leaf == "tags" ? "tag" : leaf.replacingOccurrences(of: "_", with: "-") }
        public var environmentVariable: String { "CHORUS_" + leaf.uppercased() }
    }

    public static let settings: [Setting] = [
        Setting(key: "name", kind: .string, help: "node name, unique in the cluster (default: host name)"),
        Setting(key: "data_dir", kind: .string, help: "folder for node state and keyring"),
        Setting(key: "cluster_name", kind: .string, help: "cluster name, authenticated in every datagram"),
        Setting(key: "bind", kind: .endpoint, help: "gossip address to bind, UDP and TCP"),
        Setting(key: "advertise", kind: .endpoint, help: "gossip address other members use"),
        Setting(key: "http_addr", kind: .endpoint, help: "HTTP API address"),
        Setting(key: "http_token", kind: .string, help: "bearer token the HTTP API requires"),
        Setting(key: "join", kind: .list, help: "seed gossip addresses to join through"),
        Setting(key: "encrypt_key", kind: .string, help: "base64 key that seeds a new keyring"),
        Setting(key: "log_level", kind: .string, help: "trace, debug, info, notice, warning, error"),
        Setting(key: "tags", kind: .tags, help: "key=value tags gossiped with this member"),
        Setting(
            key: "event_loop_threads", kind: .integer,
            help: "threads serving HTTP and agent sessions (default: one per core)"),
        Setting(key: "gossip.probe_interval", kind: .duration, help: "time between probe rounds"),
        Setting(key: "gossip.probe_timeout", kind: .duration, help: "wait for a direct ack"),
        Setting(key: "gossip.indirect_checks", kind: .integer, help: "relays asked after a missed ack"),
        Setting(key: "gossip.suspicion_mult", kind: .integer, help: "suspicion timeout multiplier"),
        Setting(key: "gossip.suspicion_max_timeout_mult", kind: .integer, help: "suspicion timeout ceiling"),
        Setting(key: "gossip.retransmit_mult", kind: .integer, help: "gossip retransmits per update"),
        Setting(key: "gossip.gossip_interval", kind: .duration, help: "time between gossip rounds"),
        Setting(key: "gossip.gossip_nodes", kind: .integer, help: "members gossiped to per round"),
        Setting(key: "gossip.gossip_to_the_dead_time", kind: .duration, help: "keep gossiping to the dead"),
        Setting(key: "gossip.push_pull_interval", kind: .duration, help: "full-state TCP sync period"),
        Setting(key: "gossip.reconnect_interval", kind: .duration, help: "retry dead members this often"),
        Setting(key: "gossip.join_retry_max", kind: .duration, help: "longest wait between join attempts"),
        Setting(key: "gossip.dead_reap_time", kind: .duration, help: "forget dead/stopped members after"),
        Setting(key: "gossip.left_reap_time", kind: .duration, help: "forget left members after"),
        Setting(key: "store.partitions", kind: .integer, help: "partition count Q, fixed at cluster creation"),
        Setting(key: "store.sync", kind: .string, help: "batch (fsync every commit group) or periodic"),
        Setting(key: "store.sync_interval", kind: .duration, help: "fsync period when sync = periodic"),
        Setting(
            key: "store.commit_delay", kind: .duration,
            help: "while busy, wait this long for more writes to share a commit's fsync (0s: off)"),
        Setting(
            key: "store.backend", kind: .string,
            help: "where objects are kept: sqlite (a B-tree) or log (append-only segments, keys in memory)"),
        Setting(key: "store.max_value_bytes", kind: .integer, help: "largest value a client may write"),
        Setting(key: "store.request_timeout", kind: .duration, help: "default client request timeout"),
        Setting(
            key: "store.replica_timeout", kind: .duration, help: "wait this long for a replica, then use a fallback"),
        Setting(
            key: "store.read_targets", kind: .string,
            help: "quorum (ask as many replicas as r needs, own copy first) or all (every home replica)"),
        Setting(
            key: "store.read_speculation_delay", kind: .duration,
            help: "a read still short of its quorum after this asks one more replica"),
        Setting(key: "hinted_handoff", kind: .boolean, help: "keep hints for down replicas and hand them off"),
        Setting(key: "store.max_hint_window", kind: .duration, help: "hints older than this are dropped"),
        Setting(key: "store.max_hint_bytes", kind: .integer, help: "bound on the hints one node holds"),
        Setting(key: "store.handoff_rate", kind: .integer, help: "hints handed off per second, at most"),
        Setting(
            key: "store.anti_entropy_interval", kind: .duration, help: "time between anti-entropy exchange rounds"),
        Setting(key: "store.anti_entropy_concurrency", kind: .integer, help: "anti-entropy exchanges per round"),
        Setting(
            key: "store.repair_rate", kind: .integer, help: "objects anti-entropy repair moves per second, at most"),
        Setting(
            key: "store.tombstone_grace", kind: .duration,
            help: "reap a tombstone no sooner than this after the delete, once every replica holds it"),
        Setting(key: "buckets", kind: .buckets, help: "per-bucket n, r, w, conflicts ([buckets.NAME] tables)"),
    ]

    enum Source: CustomStringConvertible {
        case file(path: String, line: Int?)
        case environment(String)
        case flag(String)

        var description: String {
            switch self {
            case .file(let path, let line?): "\(path):\(line)"
            case .file(let path, nil): path
            case .environment(let name): "environment variable \(name)"
            case .flag(let name): "flag --\(name)"
            }
        }
    }

    enum RawValue {
        case text(String)
        case integer(Int)
        case list([String])
        case tags([String: String])
        case buckets([String: BucketProperties])
    }

    struct Entry {
        var value: RawValue
        var source: Source
    }

    /// Loads the configuration.
    /// - Parameters:
    ///   - file: path of a TOML file, or nil.
    ///   - environment: the process environment (only `CHORUS_*` names are read).
    ///   - flags: values given on the command line, by setting key; lists may repeat.
    public static func load(
        file: String?, environment: [String: String], flags: [String: [String]], hostName: String
    ) throws(ConfigError) -> AgentConfig {
        var entries: [String: Entry] = [:]
        if let file { try readFile(file, into: &entries) }
        for setting in settings where setting.kind != .buckets {
            if let text = environment[setting.environmentVariable] {
                entries[setting.key] = Entry(
                    value: fromText(text, kind: setting.kind, separator: ","),
                    source: .environment(setting.environmentVariable))
            }
        }
        for setting in settings {
            guard let values = flags[setting.key], !values.isEmpty else { continue }
            let value: RawValue
            switch setting.kind {
            case .list: value = .list(values)
            case .tags: value = fromText(values.joined(separator: ","), kind: .tags, separator: ",")
            default: value = .text(values.last!)
            }
            entries[setting.key] = Entry(value: value, source: .flag(setting.flag))
        }
        return try build(entries, hostName: hostName)
    }

    private static func fromText(_ text: String, kind: Kind, separator: Character) -> RawValue {
        switch kind {
        case .list:
            return .list(text.split(separator: separator).map { $0.trimmingCharacters(in: .whitespaces) })
        case .tags:
            var tags: [String: String] = [:]
            for pair in text.split(separator: separator) {
                let parts = pair.split(separator: "=", maxSplits: 1)
                tags[parts[0].trimmingCharacters(in: .whitespaces)] =
                    parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            }
            return .tags(tags)
        default:
            return .text(text)
        }
    }

    // MARK: - The file

    private static func readFile(_ path: String, into entries: inout [String: Entry]) throws(ConfigError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError("\(path):\(error.source.begin.line): \(error.description)")
        } catch {
            throw ConfigError("\(path): \(error)")
        }
        let lines = KeyLines(text: text)
        let known = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        let sections = Set(settings.compactMap { $0.key.contains(".") ? String($0.key.split(separator: ".")[0]) : nil })

        func visit(_ table: TOMLTable, prefix: String) throws(ConfigError) {
            for key in table.keys.sorted() {
                let full = prefix.isEmpty ? key : "\(prefix).\(key)"
                let source = Source.file(path: path, line: lines.line(of: full))
                guard let value = table[key] else { continue }
                if prefix.isEmpty, sections.contains(key) {
                    guard let inner = value.table else {
                        throw ConfigError("\(source): [\(key)] must be a table")
                    }
                    try visit(inner, prefix: key)
                    continue
                }
                guard let setting = known[full] else {
                    throw ConfigError("\(source): unknown setting '\(full)'")
                }
                let raw: RawValue
                switch setting.kind {
                case .integer:
                    guard let int = value.int else { throw ConfigError("\(source): \(full) must be an integer") }
                    raw = .integer(int)
                case .boolean:
                    guard let flag = value.bool else { throw ConfigError("\(source): \(full) must be true or false") }
                    raw = .text(flag ? "true" : "false")
                case .list:
                    guard let array = value.array else {
                        throw ConfigError("\(source): \(full) must be an array of strings")
                    }
                    var items: [String] = []
                    for item in array {
                        guard let string = item.string else {
                            throw ConfigError("\(source): \(full) must be an array of strings")
                        }
                        items.append(string)
                    }
                    raw = .list(items)
                case .tags:
                    guard let inner = value.table else {
                        throw ConfigError("\(source): \(full) must be a table of strings")
                    }
                    var tags: [String: String] = [:]
                    for tagKey in inner.keys {
                        guard let string = inner[tagKey]?.string else {
                            throw ConfigError("\(source): tag '\(tagKey)' must be a string")
                        }
                        tags[tagKey] = string
                    }
                    raw = .tags(tags)
                case .buckets:
                    guard let inner = value.table else {
                        throw ConfigError("\(source): buckets must be [buckets.NAME] tables")
                    }
                    raw = .buckets(try readBuckets(inner, path: path, lines: lines))
                case .string, .endpoint, .duration:
                    guard let string = value.string else {
                        throw ConfigError("\(source): \(full) must be a string")
                    }
                    raw = .text(string)
                }
                entries[full] = Entry(value: raw, source: source)
            }
        }
        try visit(table, prefix: "")
    }

    // MARK: - Checking and building

    private static func build(_ entries: [String: Entry], hostName: String) throws(ConfigError) -> AgentConfig {
        func text(_ key: String) -> (String, Source)? {
            guard let entry = entries[key] else { return nil }
            switch entry.value {
            case .text(let s): return (s, entry.source)
            case .integer(let i): return (String(i), entry.source)
            case .list(let l): return (l.joined(separator: ","), entry.source)
            case .tags, .buckets: return nil
            }
        }
        func string(_ key: String, default fallback: String) throws(ConfigError) -> String {
            guard let (value, source) = text(key) else { return fallback }
            guard !value.isEmpty else { throw ConfigError("\(source): \(key) must not be empty") }
            return value
        }
        func endpoint(_ key: String, default fallback: Endpoint) throws(ConfigError) -> Endpoint {
            guard let (value, source) = text(key) else { return fallback }
            guard let endpoint = Endpoint(parsing: value) else {
                throw ConfigError("\(source): \(key) must be HOST:PORT, got \"\(value)\"")
            }
            return endpoint
        }
        func duration(_ key: String, default fallback: Duration) throws(ConfigError) -> Duration {
            guard let (value, source) = text(key) else { return fallback }
            guard let duration = DurationParsing.parse(value), duration > .zero else {
                throw ConfigError(
                    "\(source): \(key) must be a positive duration like \"500ms\", \"1s\" or \"24h\", got \"\(value)\"")
            }
            return duration
        }
        /// 0s turns it off; more than 100ms would hold every busy commit that long.
        func commitDelay() throws(ConfigError) -> Duration {
            let key = "store.commit_delay"
            guard let (value, source) = text(key) else { return .microseconds(500) }
            guard let delay = DurationParsing.parse(value), delay >= .zero, delay <= .milliseconds(100) else {
                throw ConfigError(
                    "\(source): \(key) must be a duration from 0s to 100ms like \"500us\", got \"\(value)\"")
            }
            return delay
        }
        func integer(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let (value, source) = text(key) else { return fallback }
            guard let int = Int(value), range.contains(int) else {
                throw ConfigError(
                    "\(source): \(key) must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(value)\""
                )
            }
            return int
        }

        var swim = SWIMSettings()
        swim.probeInterval = try duration("gossip.probe_interval", default: swim.probeInterval)
        swim.probeTimeout = try duration("gossip.probe_timeout", default: swim.probeTimeout)
        if swim.probeTimeout > swim.probeInterval, let (_, source) = text("gossip.probe_timeout") {
            throw ConfigError("\(source): gossip.probe_timeout must not exceed gossip.probe_interval")
        }
        swim.indirectChecks = try integer("gossip.indirect_checks", default: swim.indirectChecks, range: 0...16)
        swim.suspicionMult = try integer("gossip.suspicion_mult", default: swim.suspicionMult, range: 1...64)
        swim.suspicionMaxTimeoutMult = try integer(
            "gossip.suspicion_max_timeout_mult", default: swim.suspicionMaxTimeoutMult, range: 1...64)
        swim.retransmitMult = try integer("gossip.retransmit_mult", default: swim.retransmitMult, range: 1...64)
        swim.gossipInterval = try duration("gossip.gossip_interval", default: swim.gossipInterval)
        swim.gossipNodes = try integer("gossip.gossip_nodes", default: swim.gossipNodes, range: 0...64)
        swim.gossipToTheDeadTime = try duration(
            "gossip.gossip_to_the_dead_time", default: swim.gossipToTheDeadTime)
        swim.deadReapTime = try duration("gossip.dead_reap_time", default: swim.deadReapTime)
        swim.leftReapTime = try duration("gossip.left_reap_time", default: swim.leftReapTime)

        let bind = try endpoint("bind", default: Endpoint(host: "0.0.0.0", port: 7400))
        var advertise = bind
        if text("advertise") != nil {
            advertise = try endpoint("advertise", default: bind)
        } else if bind.host == "0.0.0.0" || bind.host == "::" {
            guard let address = NetworkInterfaces.firstNonLoopbackAddress() else {
                throw ConfigError("bind is \(bind) and no non-loopback address was found: set advertise")
            }
            advertise = Endpoint(host: address, port: bind.port)
        }
        let httpAddr = try endpoint("http_addr", default: Endpoint(host: "127.0.0.1", port: 7480))
        let httpToken = text("http_token")?.0
        if !NetworkInterfaces.isLoopback(httpAddr.host), httpToken == nil {
            let source = text("http_addr")?.1.description ?? "http_addr"
            throw ConfigError(
                "\(source): http_addr \(httpAddr) is not a loopback address, so http_token must be set")
        }
        var join: [Endpoint] = []
        if let entry = entries["join"], case .list(let items) = entry.value {
            for item in items where !item.isEmpty {
                guard let endpoint = Endpoint(parsing: item) else {
                    throw ConfigError("\(entry.source): join entries must be HOST:PORT, got \"\(item)\"")
                }
                join.append(endpoint)
            }
        }
        var tags: [String: String] = [:]
        if let entry = entries["tags"], case .tags(let values) = entry.value {
            for (key, value) in values {
                guard !key.isEmpty, key.utf8.count <= 255, value.utf8.count <= 255 else {
                    throw ConfigError("\(entry.source): tag keys must be 1-255 bytes and values at most 255")
                }
            }
            tags = values
        }
        let logLevel = try string("log_level", default: "info")
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigError(
                "\(text("log_level")!.1): log_level must be trace, debug, info, notice, warning or error")
        }
        var buckets: [String: BucketProperties] = [:]
        if let entry = entries["buckets"], case .buckets(let values) = entry.value { buckets = values }
        let syncText = try string("store.sync", default: "batch")
        let sync: StoreSettings.Sync
        switch syncText {
        case "batch": sync = .batch
        case "periodic": sync = .periodic(try duration("store.sync_interval", default: .seconds(1)))
        default: throw ConfigError("\(text("store.sync")!.1): store.sync must be \"batch\" or \"periodic\"")
        }
        let backendText = try string("store.backend", default: ObjectBackend.log.rawValue)
        guard let backend = ObjectBackend(rawValue: backendText) else {
            throw ConfigError(
                "\(text("store.backend")!.1): store.backend must be \"sqlite\" or \"log\", got \"\(backendText)\"")
        }
        let readTargetsText = try string("store.read_targets", default: "quorum")
        guard let readTargets = StoreSettings.ReadTargets(rawValue: readTargetsText) else {
            throw ConfigError(
                "\(text("store.read_targets")!.1): store.read_targets must be \"quorum\" or \"all\", got \"\(readTargetsText)\""
            )
        }
        func boolean(_ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
            guard let (value, source) = text(key) else { return fallback }
            switch value.lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw ConfigError("\(source): \(key) must be true or false, got \"\(value)\"")
            }
        }
        let store = StoreSettings(
            partitions: try integer("store.partitions", default: Partitioner.defaultPartitionCount, range: 1...65_536),
            sync: sync,
            backend: backend,
            commitDelay: try commitDelay(),
            maxValueBytes: try integer("store.max_value_bytes", default: 1 << 20, range: 1...(64 << 20)),
            requestTimeout: try duration("store.request_timeout", default: .seconds(5)),
            replicaTimeout: try duration("store.replica_timeout", default: .seconds(1)),
            readTargets: readTargets,
            readSpeculationDelay: try duration("store.read_speculation_delay", default: .milliseconds(20)),
            hintedHandoff: try boolean("hinted_handoff", default: true),
            maxHintWindow: try duration("store.max_hint_window", default: .seconds(3 * 3600)),
            maxHintBytes: try integer("store.max_hint_bytes", default: 1 << 30, range: 0...(1 << 40)),
            handoffRate: try integer("store.handoff_rate", default: 1000, range: 1...1_000_000),
            antiEntropyInterval: try duration("store.anti_entropy_interval", default: .seconds(10)),
            antiEntropyConcurrency: try integer("store.anti_entropy_concurrency", default: 1, range: 0...64),
            repairRate: try integer("store.repair_rate", default: 1000, range: 1...1_000_000),
            tombstoneGrace: try duration("store.tombstone_grace", default: .seconds(3 * 3600)),
            buckets: BucketTable(buckets: buckets))
        // A hint written before a delete and handed off after its tombstone was
        // reaped would bring the deleted value back: hints must expire first.
        if store.hintedHandoff, store.tombstoneGrace < store.maxHintWindow {
            let source = text("store.tombstone_grace")?.1.description ?? "store.tombstone_grace"
            throw ConfigError(
                "\(source): store.tombstone_grace (\(DurationParsing.format(store.tombstoneGrace))) must be at least store.max_hint_window (\(DurationParsing.format(store.maxHintWindow))), or a hint older than the tombstone could resurrect a deleted value"
            )
        }

        let name = try string("name", default: hostName)
        guard name.utf8.count <= 255 else { throw ConfigError("name must be at most 255 bytes") }
        return AgentConfig(
            name: name,
            dataDir: try string("data_dir", default: "/var/lib/chorus"),
            clusterName: try string("cluster_name", default: "chorus"),
            bind: bind,
            advertise: advertise,
            httpAddr: httpAddr,
            httpToken: httpToken,
            join: join,
            encryptKey: text("encrypt_key")?.0,
            logLevel: logLevel,
            tags: tags,
            swim: swim,
            pushPullInterval: try duration("gossip.push_pull_interval", default: .seconds(30)),
            reconnectInterval: try duration("gossip.reconnect_interval", default: .seconds(30)),
            joinRetryMax: try duration("gossip.join_retry_max", default: .seconds(30)),
            eventLoopThreads: try integer(
                "event_loop_threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...256),
            store: store
        )
    }
}

extension ConfigLoader {
    /// `[buckets.NAME]` tables: `n`, `r`, `w`, `conflicts`, `sloppy`.
    static func readBuckets(_ table: TOMLTable, path: String, lines: KeyLines) throws(ConfigError)
        -> [String: BucketProperties]
    {
        var buckets: [String: BucketProperties] = [:]
        for name in table.keys.sorted() {
            let location = "\(path):\(lines.line(of: "buckets.\(name)") ?? 0)"
            guard BucketName.isValid(name) else {
                throw ConfigError("\(location): bucket name '\(name)' must be 1-64 of A-Z a-z 0-9 _ - .")
            }
            guard let properties = table[name]?.table else {
                throw ConfigError("\(location): [buckets.\(name)] must be a table")
            }
            var bucket = BucketProperties()
            for field in properties.keys.sorted() {
                let value = properties[field]!
                let at = "\(path):\(lines.line(of: "buckets.\(name).\(field)") ?? 0)"
                switch field {
                case "n":
                    guard let n = value.int, (1...16).contains(n) else {
                        throw ConfigError("\(at): buckets.\(name).n must be an integer from 1 to 16")
                    }
                    bucket.n = n
                case "r", "w":
                    let text = value.string ?? value.int.map(String.init) ?? ""
                    guard let quorum = Quorum(parsing: text) else {
                        throw ConfigError("\(at): buckets.\(name).\(field) must be one, quorum, all or a number")
                    }
                    if field == "r" { bucket.r = quorum } else { bucket.w = quorum }
                case "conflicts":
                    guard let text = value.string, let conflicts = BucketProperties.Conflicts(rawValue: text) else {
                        throw ConfigError("\(at): buckets.\(name).conflicts must be \"siblings\" or \"lww\"")
                    }
                    bucket.conflicts = conflicts
                case "sloppy":
                    guard let flag = value.bool else {
                        throw ConfigError("\(at): buckets.\(name).sloppy must be true or false")
                    }
                    bucket.sloppy = flag
                default:
                    throw ConfigError("\(at): unknown bucket setting 'buckets.\(name).\(field)'")
                }
            }
            do {
                _ = try bucket.r.required(outOf: bucket.n)
                _ = try bucket.w.required(outOf: bucket.n)
            } catch {
                throw ConfigError("\(location): buckets.\(name): \(error)")
            }
            buckets[name] = bucket
        }
        return buckets
    }
}

/// Finds the line a key was set on, so errors can name it (TOMLKit keeps no
/// positions for values). Tracks `[section]` headers; good for the flat files
/// Chorus reads.
struct KeyLines {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var section = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") && !line.hasPrefix("[[") {
                section = line.dropFirst().prefix(while: { $0 != "]" }).trimmingCharacters(in: .whitespaces)
                if lines[section] == nil { lines[section] = index + 1 }
                continue
            }
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(
                in: CharacterSet(charactersIn: "\"'"))
            let full = section.isEmpty ? key : "\(section).\(key)"
            if lines[full] == nil { lines[full] = index + 1 }
        }
    }

    func line(of key: String) -> Int? { lines[key] }
}
