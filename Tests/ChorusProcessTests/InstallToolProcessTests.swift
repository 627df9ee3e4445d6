import Foundation
import Testing

/// `tools/install` into a temporary prefix, twice: files, modes and contents are in
/// place, the second run changes nothing, an operator's edited config is kept (the
/// shipped one goes beside it), and the installed binary accepts the installed config.
/// No user is created: with a prefix the installer never touches this host's users.
@Suite("tools/install", .serialized)
struct InstallToolProcessTests {
    static let tool = RollingRestartProcessTests.repoRoot.appendingPathComponent("tools/install").path

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    @Test func installsIntoAPrefixIdempotently() async throws {
        let dir = try RollingRestartProcessTests.tempDir("install")
        let prefix = dir.appendingPathComponent("root").path
        let binary = try AgentCluster.locateBinary().path
        let arguments = ["--prefix", prefix, "--no-build", "--bin", binary]

        let (first, firstOutput) = try await RollingRestartProcessTests.run(
            Self.tool, arguments, dir: dir, env: [:], timeout: 60)
        try #require(first == 0, "first install failed:\n\(firstOutput)")
        #expect(firstOutput.contains("done: changes made"), "\(firstOutput)")
        // The test's binary is a debug build linking the Swift runtime dynamically: the
        // installer says a host without the toolchain cannot run it.
        #expect(firstOutput.contains("links the Swift runtime dynamically"), "\(firstOutput)")

        let bin = "\(prefix)/usr/local/bin/chorus"
        let config = "\(prefix)/etc/chorus/chorus.toml"
        let unit = "\(prefix)/etc/systemd/system/chorus.service"
        let data = "\(prefix)/var/lib/chorus"
        #expect(Self.mode(bin) == 0o755)
        #expect(FileManager.default.contentsEqual(atPath: bin, andPath: binary))
        #expect(Self.mode("\(prefix)/etc/chorus") == 0o750)
        #expect(Self.mode(config) == 0o640)
        #expect(Self.mode(unit) == 0o644)
        #expect(Self.mode(data) == 0o750)

        let configText = Self.text(config)
        #expect(configText.contains("data_dir = \"\(data)\""), "data_dir not rewritten")
        let shipped = Self.text(RollingRestartProcessTests.repoRoot.appendingPathComponent("config/chorus.toml").path)
        #expect(configText == shipped.replacingOccurrences(of: "\"/var/lib/chorus\"", with: "\"\(data)\""))

        let unitLines = Set(Self.text(unit).split(separator: "\n").map(String.init))
        for line in [
            "Type=notify", "NotifyAccess=main", "Restart=on-failure", "LimitNOFILE=65536", "User=chorus",
            "ExecStart=\(bin) agent --config \(config)", "ReadWritePaths=\(data)",
        ] {
            #expect(unitLines.contains(line), "unit lacks \(line)")
        }
        #expect(!unitLines.contains("StateDirectory=chorus"), "StateDirectory names /var/lib, not the prefix")

        // Second run: nothing changes, and it says so.
        let (second, secondOutput) = try await RollingRestartProcessTests.run(
            Self.tool, arguments, dir: dir, env: [:], timeout: 60)
        #expect(second == 0, "\(secondOutput)")
        #expect(secondOutput.contains("done: nothing changed"), "\(secondOutput)")
        let acted = secondOutput.split(separator: "\n").filter {
            $0.hasPrefix("installed") || $0.hasPrefix("updated") || $0.hasPrefix("changed") || $0.hasPrefix("created")
        }
        #expect(acted.isEmpty, "second run acted: \(acted)")

        // The installed binary accepts the installed config.
        let (checked, checkOutput) = try await RollingRestartProcessTests.run(
            bin, ["agent", "--check-config", "--config", config], dir: dir, env: [:], timeout: 30)
        #expect(checked == 0, "\(checkOutput)")
        #expect(checkOutput.contains("configuration OK") && checkOutput.contains("data_dir=\(data)"), "\(checkOutput)")

        // An operator's edit is kept; the shipped config lands in chorus.toml.new.
        let edited = configText + "\nname = \"db1\"\n"
        try edited.write(toFile: config, atomically: true, encoding: .utf8)
        let (third, thirdOutput) = try await RollingRestartProcessTests.run(
            Self.tool, arguments, dir: dir, env: [:], timeout: 60)
        #expect(third == 0, "\(thirdOutput)")
        #expect(Self.text(config) == edited)
        #expect(Self.text(config + ".new") == configText)
        #expect(thirdOutput.contains("chorus.toml.new"), "\(thirdOutput)")
        let (fourth, fourthOutput) = try await RollingRestartProcessTests.run(
            Self.tool, arguments, dir: dir, env: [:], timeout: 60)
        #expect(fourth == 0 && fourthOutput.contains("done: nothing changed"), "\(fourthOutput)")

        if first == 0 && second == 0 { try? FileManager.default.removeItem(at: dir) }
    }
}
