import ChorusCore
import Foundation
import Testing

@testable import ChorusNode

@Suite struct ConfigLoaderTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "chorus-config-\(UUID().uuidString).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func load(file: String? = nil, environment: [String: String] = [:], flags: [String: [String]] = [:]) throws
        -> AgentConfig
    {
        try ConfigLoader.load(file: file, environment: environment, flags: flags, hostName: "host")
    }

    @Test func defaultsApplyWhenNothingIsSet() throws {
        let config = try load(flags: ["bind": ["127.0.0.1:7400"]])
        #expect(config.name == "host")
        #expect(config.clusterName == "chorus")
        #expect(config.advertise == Endpoint(host: "127.0.0.1", port: 7400))
        #expect(config.httpAddr == Endpoint(host: "127.0.0.1", port: 7480))
        #expect(config.swim.probeInterval == .seconds(1))
    }

    @Test func fileThenEnvironmentThenFlagsTakePrecedence() throws {
        let path = try write(
            """
            name = "from-file"
            bind = "127.0.0.5:7400"
            join = ["127.0.0.1:7400", "127.0.0.2:7400"]

            [tags]
            rack = "r1"

            [gossip]
            probe_interval = "2s"
            probe_timeout = "300ms"
            """)
        let config = try load(
            file: path, environment: ["CHORUS_NAME": "from-env", "CHORUS_PROBE_INTERVAL": "3s"],
            flags: ["gossip.probe_interval": ["4s"]])
        #expect(config.name == "from-env")
        #expect(config.swim.probeInterval == .seconds(4))
        #expect(config.swim.probeTimeout == .milliseconds(300))
        #expect(config.join.count == 2)
        #expect(config.tags == ["rack": "r1"])
    }

    @Test func unknownKeyIsRefusedNamingItsLine() throws {
        let path = try write("name = \"a\"\n\n[gossip]\nprobe_intervall = \"1s\"\n")
        #expect {
            try load(file: path)
        } throws: { error in
            "\(error)".contains("\(path):4") && "\(error)".contains("gossip.probe_intervall")
        }
    }

    @Test func badValueIsRefusedNamingItsLine() throws {
        let path = try write("name = \"a\"\nbind = \"nowhere\"\n")
        #expect {
            try load(file: path)
        } throws: { error in
            "\(error)".contains("\(path):2") && "\(error)".contains("HOST:PORT")
        }
        let durationPath = try write("[gossip]\nprobe_interval = \"soon\"\n")
        #expect {
            try load(file: durationPath)
        } throws: { error in
            "\(error)".contains("\(durationPath):2")
        }
    }

    @Test func syntaxErrorNamesItsLine() throws {
        let path = try write("name = \"a\"\nbind = \n")
        #expect {
            try load(file: path)
        } throws: { error in
            "\(error)".contains("\(path):2")
        }
    }

    @Test func badEnvironmentValueNamesTheVariable() {
        #expect {
            try load(environment: ["CHORUS_PROBE_TIMEOUT": "x"], flags: ["bind": ["127.0.0.1:1"]])
        } throws: { error in
            "\(error)".contains("CHORUS_PROBE_TIMEOUT")
        }
    }

    @Test func readSettingsDefaultToQuorumTargetsAndTakeTheirValues() throws {
        let defaults = try load(flags: ["bind": ["127.0.0.1:1"]])
        #expect(defaults.store.readTargets == .quorum)
        #expect(defaults.store.readSpeculationDelay == .milliseconds(20))
        #expect(defaults.eventLoopThreads == ProcessInfo.processInfo.activeProcessorCount)
        let path = try write(
            "event_loop_threads = 1\n[store]\nread_targets = \"all\"\nread_speculation_delay = \"5ms\"\n")
        let set = try load(file: path, flags: ["bind": ["127.0.0.1:1"]])
        #expect(set.store.readTargets == .all)
        #expect(set.store.readSpeculationDelay == .milliseconds(5))
        #expect(set.eventLoopThreads == 1)
        let badPath = try write("[store]\nread_targets = \"most\"\n")
        #expect {
            try load(file: badPath, flags: ["bind": ["127.0.0.1:1"]])
        } throws: { error in
            "\(error)".contains("\(badPath):2") && "\(error)".contains("got \"most\"")
        }
    }

    @Test func storageSettingsDefaultToTheLogBackendAndAShortCommitDelay() throws {
        let defaults = try load(flags: ["bind": ["127.0.0.1:1"]])
        #expect(defaults.store.backend == .log)
        #expect(defaults.store.commitDelay == .microseconds(500))
        let set = try load(flags: ["bind": ["127.0.0.1:1"], "store.backend": ["sqlite"], "store.commit_delay": ["0s"]])
        #expect(set.store.backend == .sqlite)
        #expect(set.store.commitDelay == .zero)
        #expect {
            try load(flags: ["bind": ["127.0.0.1:1"], "store.backend": ["bitcask"]])
        } throws: { error in
            "\(error)".contains("store.backend must be \"sqlite\" or \"log\"") && "\(error)".contains("bitcask")
        }
        #expect {
            try load(flags: ["bind": ["127.0.0.1:1"], "store.commit_delay": ["1s"]])
        } throws: { error in
            "\(error)".contains("store.commit_delay must be a duration from 0s to 100ms")
        }
    }

    @Test func nonLoopbackHTTPNeedsAToken() {
        #expect {
            try load(flags: ["bind": ["127.0.0.1:1"], "http_addr": ["0.0.0.0:7480"]])
        } throws: { error in
            "\(error)".contains("http_token")
        }
    }

    @Test func durationsParseGoStyle() {
        #expect(DurationParsing.parse("500ms") == .milliseconds(500))
        #expect(DurationParsing.parse("1m30s") == .seconds(90))
        #expect(DurationParsing.parse("24h") == .seconds(86400))
        #expect(DurationParsing.parse("1") == nil)
        #expect(DurationParsing.parse("ms") == nil)
        #expect(DurationParsing.format(.milliseconds(1500)) == "1500ms")
        #expect(DurationParsing.format(.seconds(30)) == "30s")
    }
}

@Suite struct SampleConfigTests {
    @Test func shippedSampleConfigLoadsAndDocumentsEverySetting() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("config/chorus.toml").path
        let config = try ConfigLoader.load(
            file: path, environment: [:], flags: ["bind": ["127.0.0.1:7400"]], hostName: "host")
        #expect(config.swim == SWIMSettings())
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for setting in ConfigLoader.settings {
            #expect(text.contains(setting.leaf), "config/chorus.toml does not document \(setting.key)")
        }
    }
}

@Suite struct TombstoneGraceConfigTests {
    @Test func aGraceShorterThanTheHintWindowIsRefused() {
        #expect {
            try ConfigLoader.load(
                file: nil, environment: [:],
                flags: ["bind": ["127.0.0.1:1"], "store.tombstone_grace": ["1h"], "store.max_hint_window": ["3h"]],
                hostName: "h")
        } throws: { error in
            "\(error)".contains("max_hint_window")
        }
        #expect(
            (try? ConfigLoader.load(
                file: nil, environment: [:],
                flags: [
                    "bind": ["127.0.0.1:1"], "store.tombstone_grace": ["1h"], "hinted_handoff": ["false"],
                ], hostName: "h")) != nil)
    }
}

@Suite struct ReadmeConfigReferenceTests {
    @Test func readmeDocumentsEverySetting() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOfFile: root.appendingPathComponent("README.md").path, encoding: .utf8)
        for setting in ConfigLoader.settings where setting.kind != .buckets {
            #expect(readme.contains("`\(setting.key)`"), "README's configuration reference lacks \(setting.key)")
            #expect(readme.contains(setting.environmentVariable), "README lacks \(setting.environmentVariable)")
        }
    }
}
