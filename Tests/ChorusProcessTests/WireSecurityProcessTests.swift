import Foundation
import Testing

/// What reaches an agent's gossip port without the cluster key: other clusters'
/// agents, garbage, truncated and replayed datagrams (DESIGN §7: dropped and counted,
/// never a crash, never a state change).
@Suite("Wire security, real agents")
struct WireSecurityProcessTests {
    @Test func agentWithWrongKeyStaysOut() async throws {
        try await AgentCluster.run(subnet: 20, label: "wrong-key") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            let baseline = Self.keyDrops(try await cluster.status(of: agents[0]))

            let otherKey = try await cluster.keygen()
            #expect(otherKey != cluster.key)
            let intruder = try cluster.start(
                name: "intruder", hostIndex: 4, join: [cluster.gossipAddress(1)], key: otherKey)

            // Wait for evidence that the intruder tried and was refused: node1 dropped
            // its join (TCP) or datagrams, and the intruder's log says why it is alone.
            try await cluster.waitUntil("node1 drops the intruder's traffic") {
                Self.keyDrops(try await cluster.status(of: agents[0])) > baseline
            }
            try await cluster.waitUntil("the intruder's log says why it cannot join") {
                Self.mentionsKeyProblem(intruder.log)
            }

            for agent in agents {
                let members = try await cluster.members(of: agent)
                #expect(
                    Set(members.map(\.name)) == ["node1", "node2", "node3"],
                    "\(agent.name) sees \(MemberView.summary(members))")
                #expect(!members.contains { $0.address == intruder.gossipAddress })
                #expect(
                    members.allSatisfy { $0.status == "alive" }, "\(agent.name) sees \(MemberView.summary(members))")
            }
            if intruder.isRunning {
                let alone = try await cluster.members(of: intruder)
                #expect(alone.map(\.name) == ["intruder"], "intruder sees \(MemberView.summary(alone))")
            }
        }
    }

    @Test func garbageTruncatedAndReplayedDatagramsAreDroppedAndCounted() async throws {
        try await AgentCluster.run(subnet: 21, label: "garbage") { cluster in
            // A long suspicion, so node4 stays suspect (and probed) well after the capture
            // socket takes its address, however slowly a loaded machine gets there.
            let agents = try cluster.startNodes(4, firstHost: 1, extraArguments: ["--suspicion-mult", "60"])
            let views = try await cluster.waitAllAlive(agents)
            let target = agents[3]
            let before = try #require(views["node1"]?.named(target.name))

            // Genuine sealed datagrams addressed to node4: crash it, take over its
            // address, and keep what the others send while they probe it.
            try await cluster.kill9(target)
            var captured: [[UInt8]] = []
            do {
                let capture = try await Self.bindRetrying(host: target.host, port: AgentCluster.gossipPort)
                try await cluster.waitUntil("the others' probes of node4 are captured", deadline: .seconds(30)) {
                    while let datagram = capture.receiveNow() {
                        // Sealed Chorus datagrams only: "CH" and at least header + tag.
                        if datagram.count >= 47 && datagram.starts(with: [0x43, 0x48]) { captured.append(datagram) }
                    }
                    return captured.count >= 6
                }
            }
            try cluster.restart(target)
            try await cluster.waitForViews("node4 is back and alive in every view", of: agents) { _, members in
                members.count == 4 && members.allSatisfy { $0.status == "alive" }
                    && (members.named("node4")?.incarnation ?? 0) > before.incarnation
            }

            var baseline: [String: AgentStatus.Datagrams] = [:]
            for agent in agents { baseline[agent.name] = try await cluster.status(of: agent).datagrams }

            let sender = try UDPSocket()
            let genuineKeyID = Array(captured[0][3..<7])
            for agent in agents {
                try await Self.flood(sender, agent: agent, keyID: genuineKeyID)
            }
            // Replays of what node4 was sent (each accepted at most once), truncated
            // and bit-flipped copies.
            for _ in 0..<10 {
                for datagram in captured {
                    try sender.send(datagram, to: target.host, port: AgentCluster.gossipPort)
                    try sender.send(
                        Array(datagram.prefix(Int.random(in: 0..<datagram.count))), to: target.host,
                        port: AgentCluster.gossipPort)
                    var flipped = datagram
                    flipped[Int.random(in: 7..<flipped.count)] ^= UInt8.random(in: 1...255)
                    try sender.send(flipped, to: target.host, port: AgentCluster.gossipPort)
                }
                try await Task.sleep(for: .milliseconds(5))
            }

            // Every agent counts what it dropped, by reason.
            try await cluster.waitUntil("every agent counts the garbage as dropped") {
                for agent in agents {
                    let now = try await cluster.status(of: agent).datagrams
                    guard let then = baseline[agent.name] else { return false }
                    guard (now.dropped["bad_magic"] ?? 0) > (then.dropped["bad_magic"] ?? 0) else { return false }
                }
                return true
            }
            try await cluster.waitUntil("node4 counts the replays") {
                let now = try await cluster.status(of: target).datagrams
                return (now.dropped["replay"] ?? 0) > (baseline[target.name]?.dropped["replay"] ?? 0)
            }
            // On a loaded machine the receive buffer may have discarded every datagram of a
            // kind (they follow 2,000 of garbage): send one of each again until each is counted.
            let then = try #require(baseline[target.name])
            try await cluster.waitUntil("node4 counts every kind of garbage") {
                let now = try await cluster.status(of: target).datagrams
                let rose = ["bad_version", "unknown_key", "too_short", "auth_failed"].allSatisfy {
                    (now.dropped[$0] ?? 0) > (then.dropped[$0] ?? 0)
                }
                if !rose {
                    for datagram in Self.oneOfEachKind(keyID: genuineKeyID) {
                        try sender.send(datagram, to: target.host, port: AgentCluster.gossipPort)
                    }
                }
                return rose
            }
            let after = try await cluster.status(of: target).datagrams
            for reason in ["bad_magic", "too_short", "bad_version", "unknown_key", "auth_failed", "replay"] {
                #expect(
                    (after.dropped[reason] ?? 0) > (then.dropped[reason] ?? 0),
                    "node4 dropped \(after.dropped), before the flood \(then.dropped): no rise for \(reason)")
            }

            // Nobody crashed, nobody was suspected for long.
            for agent in agents { #expect(agent.isRunning, "\(agent.name) is not running after the flood") }
            try await cluster.waitAllAlive(agents)
        }
    }

    // MARK: Helpers

    /// Datagrams and TCP frames sealed with a key the receiver lacks.
    static func keyDrops(_ status: AgentStatus) -> UInt64 {
        let reasons = ["unknown_key", "auth_failed"]
        let datagrams = reasons.map { status.datagrams.dropped[$0] ?? 0 }.reduce(0, +)
        let frames = reasons.map { status.tcp?.dropped[$0] ?? 0 }.reduce(0, +)
        return datagrams + frames
    }

    static func mentionsKeyProblem(_ log: String) -> Bool {
        let lowered = log.lowercased()
        return [
            "unknown_key", "unknown key", "auth_failed", "authentication", "decrypt", "wrong key", "handshake",
            "one of our keys",
        ]
        .contains { lowered.contains($0) }
    }

    /// Binds `host:port` as soon as the killed agent's socket is gone.
    static func bindRetrying(host: String, port: Int) async throws -> UDPSocket {
        var lastError: Error?
        for _ in 0..<100 {
            do {
                return try UDPSocket(bindingTo: host, port: port)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw lastError ?? HarnessError("cannot bind \(host):\(port)")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(count + 8)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return Array(bytes.prefix(count))
    }

    /// 2,000 random-length random datagrams, then headers that pass each check in turn
    /// and fail the next: bad version, unknown key id, too short for header and tag,
    /// and a known key id with a forged tag.
    /// A sealed-looking datagram of each kind an agent drops: a bad version, an unknown key
    /// id, too short for a tag under the genuine key id, and one that fails authentication.
    static func oneOfEachKind(keyID: [UInt8]) -> [[UInt8]] {
        let magic: [UInt8] = [0x43, 0x48]  // "CH"
        var unknownID = randomBytes(4)
        if unknownID == keyID { unknownID[0] ^= 0xFF }
        return [
            magic + [UInt8.random(in: 2...255)] + randomBytes(Int.random(in: 60...400)),
            magic + [1] + unknownID + randomBytes(Int.random(in: 40...400)),
            magic + [1] + keyID + randomBytes(Int.random(in: 0..<40)),
            magic + [1] + keyID + randomBytes(Int.random(in: 40...400)),
        ]
    }

    static func flood(_ sender: UDPSocket, agent: Agent, keyID: [UInt8]) async throws {
        let magic: [UInt8] = [0x43, 0x48]  // "CH"
        var batch: [[UInt8]] = []
        for _ in 0..<2_000 {
            var datagram = randomBytes(Int.random(in: 0...1_400))
            if datagram.count >= 2 && datagram[0] == magic[0] && datagram[1] == magic[1] { datagram[0] = 0 }
            batch.append(datagram)
        }
        for _ in 0..<100 { batch += oneOfEachKind(keyID: keyID) }
        for (index, datagram) in batch.enumerated() {
            try sender.send(datagram, to: agent.host, port: AgentCluster.gossipPort)
            // Pace the burst a little so the kernel's receive buffer does not
            // discard most of it before the agent reads it.
            if index % 200 == 199 { try await Task.sleep(for: .milliseconds(2)) }
        }
    }
}
