import Foundation
import Testing

/// SWIM membership as operators see it: real `chorus agent` processes on loopback,
/// observed through `chorus members --format json`.
///
/// Every test owns a loopback subnet (`127.0.<subnet>.x`, see ``AgentCluster``), so
/// the tests can run in parallel.
@Suite("Membership, real agents")
struct MembershipProcessTests {
    @Test func fiveAgentsConvergeToAllAlive() async throws {
        try await AgentCluster.run(subnet: 10, label: "converge") { cluster in
            let agents = try cluster.startNodes(5)
            let views = try await cluster.waitAllAlive(agents)

            // Every view agrees on each member's id and address.
            let reference = try #require(views["node1"])
            for agent in agents {
                let view = try #require(views[agent.name])
                for member in reference {
                    let seen = try #require(view.named(member.name))
                    #expect(seen.id == member.id, "\(agent.name) disagrees on \(member.name)'s id")
                    #expect(seen.address == member.address, "\(agent.name) disagrees on \(member.name)'s address")
                }
                #expect(view.named(agent.name)?.address == agent.gossipAddress)
            }
        }
    }

    @Test func killedAgentIsDeadEverywhereAndComesBackNewer() async throws {
        try await AgentCluster.run(subnet: 11, label: "kill9") { cluster in
            let agents = try cluster.startNodes(5)
            let views = try await cluster.waitAllAlive(agents)
            let victim = agents[4]
            let before = try #require(views["node1"]?.named(victim.name))

            try await cluster.kill9(victim)
            let survivors = Array(agents.prefix(4))
            try await cluster.waitForViews("node5 is dead in every other view", of: survivors) { _, members in
                members.named("node5")?.status == "dead"
                    && members.filter { $0.name != "node5" }.allSatisfy { $0.status == "alive" }
            }

            try cluster.restart(victim)
            try await cluster.waitForViews("node5 is alive again, newer than before, in every view", of: agents) {
                _, members in
                guard let node5 = members.named("node5") else { return false }
                return members.count == 5 && members.allSatisfy { $0.status == "alive" }
                    && node5.id == before.id && node5.incarnation > before.incarnation
            }
        }
    }

    @Test func gracefullyStoppedAgentIsStoppedEverywhereAndComesBackNewer() async throws {
        try await AgentCluster.run(subnet: 12, label: "sigterm") { cluster in
            let agents = try cluster.startNodes(5)
            try await cluster.waitAllAlive(agents)
            let victim = agents[4]

            cluster.terminate(victim)
            let termination = try await cluster.waitForExit(victim)
            #expect(
                termination.isCleanExit,
                "SIGTERM should end the agent with exit 0, got \(termination):\n\(victim.logTail(lines: 40))")

            let survivors = Array(agents.prefix(4))
            let stoppedViews = try await cluster.waitForViews(
                "node5 is stopped in every other view", of: survivors
            ) { _, members in
                members.named("node5")?.status == "stopped"
                    && members.filter { $0.name != "node5" }.allSatisfy { $0.status == "alive" }
            }
            let stopped = try #require(stoppedViews["node1"]?.named("node5"))

            try cluster.restart(victim)
            try await cluster.waitForViews("node5 is alive again, newer than its stop, in every view", of: agents) {
                _, members in
                guard let node5 = members.named("node5") else { return false }
                return members.count == 5 && members.allSatisfy { $0.status == "alive" }
                    && node5.id == stopped.id && node5.incarnation > stopped.incarnation
            }
        }
    }

    @Test func agentRestartedThreeTimesInQuickSuccessionEndsAlive() async throws {
        try await AgentCluster.run(subnet: 13, label: "rapid-restart") { cluster in
            let agents = try cluster.startNodes(4)
            let views = try await cluster.waitAllAlive(agents)
            let victim = agents[3]
            let first = try #require(views["node1"]?.named(victim.name))

            for round in 1...3 {
                cluster.terminate(victim)
                let termination = try await cluster.waitForExit(victim)
                #expect(termination.isCleanExit, "stop \(round): SIGTERM should exit 0, got \(termination)")
                try cluster.restart(victim)
                // Up again (it answers and has joined) before the next stop; the
                // others need not have caught up.
                try await cluster.waitForViews("node4 has rejoined after restart \(round)", of: [victim]) {
                    _, members in members.count == 4
                }
            }

            // Whatever order the stop announcements and the new boots' alive messages
            // arrive in, the last boot wins everywhere: never stuck stopped or left.
            try await cluster.waitForViews("node4 is alive in every view after three restarts", of: agents) {
                _, members in
                guard let node4 = members.named("node4") else { return false }
                return members.count == 4 && members.allSatisfy { $0.status == "alive" }
                    && node4.id == first.id && node4.incarnation > first.incarnation
            }
        }
    }

    @Test func leavingAgentIsLeftEverywhere() async throws {
        try await AgentCluster.run(subnet: 14, label: "leave") { cluster in
            let agents = try cluster.startNodes(4)
            try await cluster.waitAllAlive(agents)
            let leaver = agents[3]

            let result = try await cluster.command(["leave", "--http-addr", leaver.httpAddress])
            try result.requireSuccess("chorus leave on node4")

            try await cluster.waitForViews("node4 is left in every other view", of: Array(agents.prefix(3))) {
                _, members in
                members.named("node4")?.status == "left"
                    && members.filter { $0.name != "node4" }.allSatisfy { $0.status == "alive" }
            }
        }
    }

    @Test func agentRestartedOnNewAddressIsAcceptedByItsHigherIncarnation() async throws {
        try await AgentCluster.run(subnet: 15, label: "new-address") { cluster in
            let agents = try cluster.startNodes(4)
            let views = try await cluster.waitAllAlive(agents)
            let mover = agents[3]
            let before = try #require(views["node1"]?.named(mover.name))
            let oldAddress = mover.gossipAddress

            cluster.terminate(mover)
            _ = try await cluster.waitForExit(mover)
            try cluster.restart(mover, onHostIndex: 9)
            let newAddress = mover.gossipAddress
            #expect(newAddress != oldAddress)

            try await cluster.waitForViews(
                "node4 is alive at \(newAddress) with its old id and a higher incarnation in every view",
                of: agents
            ) { _, members in
                guard let node4 = members.named("node4") else { return false }
                return members.count == 4 && members.filter { $0.name == "node4" }.count == 1
                    && members.allSatisfy { $0.status == "alive" }
                    && node4.id == before.id && node4.address == newAddress
                    && node4.incarnation > before.incarnation
                    && !members.contains { $0.address == oldAddress }
            }
        }
    }

    @Test func agentWithTakenNameIsRefused() async throws {
        try await AgentCluster.run(subnet: 16, label: "duplicate-name") { cluster in
            let agents = try cluster.startNodes(3)
            let views = try await cluster.waitAllAlive(agents)
            let original = try #require(views["node1"]?.named("node2"))

            // Same name, its own (fresh) data dir, so a different node id.
            let impostor = try cluster.start(name: "node2", hostIndex: 4, join: [cluster.gossipAddress(1)])

            try await cluster.waitUntil("the second node2 says its name is taken (log or exit)") {
                !impostor.isRunning || Self.mentionsNameTaken(impostor.log)
            }
            #expect(
                Self.mentionsNameTaken(impostor.log),
                "the refused agent should say why; log tail:\n\(impostor.logTail(lines: 30))")

            // The refusal has happened; the cluster still has one node2, the original.
            for agent in agents {
                let members = try await cluster.members(of: agent)
                let named = members.filter { $0.name == "node2" }
                #expect(named.count == 1, "\(agent.name) sees \(MemberView.summary(members))")
                #expect(named.first?.id == original.id, "\(agent.name) sees \(MemberView.summary(members))")
                #expect(named.first?.address == original.address)
                #expect(!members.contains { $0.address == impostor.gossipAddress })
                #expect(
                    members.allSatisfy { $0.status == "alive" }, "\(agent.name) sees \(MemberView.summary(members))")
            }
        }
    }

    static func mentionsNameTaken(_ log: String) -> Bool {
        let lowered = log.lowercased()
        return ["is taken", "name taken", "name in use", "duplicate name", "name already"].contains {
            lowered.contains($0)
        }
    }
}
