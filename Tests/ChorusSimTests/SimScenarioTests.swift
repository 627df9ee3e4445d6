import ChorusCore
import ChorusSim
import Testing

/// The issue's small scenarios: each runs in seconds and checks the invariants.
@Suite struct SimScenarioTests {
    func failures(_ report: SimReport) -> [String] {
        report.invariants.filter { !$0.held }.map { "\($0.name): \($0.examples.first ?? "")" }
    }

    @Test func fiftyNodesWithFivePercentLossDetectACrashWithoutFalsePositives() throws {
        let scenario = Scenario.standard(
            nodes: 50, duration: .seconds(60), loss: 0.05, crashes: 1, pauses: 0, seed: 1)
        let report = Simulator(scenario).run()
        #expect(report.passed, "\(failures(report))")
        #expect(report.falsePositives == 0)
        let crash = try #require(report.detection.crashes.first)
        #expect(crash.observers == 49)
        #expect(crash.detectedBy == 49)
        let last = try #require(crash.lastObserverSeconds)
        #expect(last <= report.detection.boundSeconds)
        #expect(report.dissemination?.reachedAll == true)
        #expect(report.traffic.datagramsLost > 0)
    }

    @Test func viewsConvergeAfterAPartitionHeals() {
        var scenario = Scenario(nodes: 20, duration: .seconds(150), seed: 2, network: NetworkModel(loss: 0.01))
        // Longer than the suspicion timeout and than gossip-to-the-dead (30 s), so only
        // the reconnect push-pull can heal the views.
        scenario.faults = [
            ScheduledFault(
                at: .seconds(10), .partition(Partition(from: Array(0..<10), to: Array(10..<20)), duration: .seconds(50))
            )
        ]
        let simulator = Simulator(scenario)
        simulator.run(until: .seconds(55))
        #expect(simulator.status(of: 15, seenBy: 3) == .dead)
        #expect(simulator.status(of: 3, seenBy: 15) == .dead)
        #expect(simulator.status(of: 4, seenBy: 3) == .alive)
        let report = simulator.run()
        #expect(report.passed, "\(failures(report))")
        #expect(report.falsePositives == 0)
        for observer in 0..<20 {
            for subject in 0..<20 {
                #expect(simulator.status(of: subject, seenBy: observer) == .alive)
            }
        }
    }

    @Test func asymmetricPartitionIsBridgedByIndirectProbes() {
        var scenario = Scenario(nodes: 10, duration: .seconds(60), seed: 3)
        scenario.faults = [
            ScheduledFault(
                at: .seconds(5), .partition(Partition(from: [0], to: [1], symmetric: false), duration: .seconds(50)))
        ]
        let report = Simulator(scenario).run()
        #expect(report.passed, "\(failures(report))")
        #expect(report.falsePositives == 0)
    }

    /// A pause of 10 protocol periods under a suspicion timeout floor of 12 s.
    func pauseScenario(pause: Duration, suspicionMult: Int, lifeguard: Bool = true) -> Scenario {
        var settings = SWIMSettings()
        settings.suspicionMult = suspicionMult
        settings.lifeguard = lifeguard
        var scenario = Scenario(
            nodes: 10, duration: .seconds(80), seed: 4, settings: settings, network: NetworkModel(loss: 0.01))
        scenario.faults = [ScheduledFault(at: .seconds(10), .pause(node: 3, duration: pause))]
        return scenario
    }

    @Test(arguments: [true, false])
    func pausedNodeIsSuspectedThenRefutesWithoutBeingDeclaredDead(lifeguard: Bool) throws {
        let simulator = Simulator(pauseScenario(pause: .seconds(10), suspicionMult: 12, lifeguard: lifeguard))
        simulator.run(until: .seconds(19.9))
        #expect(simulator.isPaused(3))
        #expect((0..<10).contains { simulator.status(of: 3, seenBy: $0) == .suspect })
        let report = simulator.run()
        #expect(report.passed, "\(failures(report))")
        let pause = try #require(report.pauses.first)
        #expect(pause.suspectedBy > 0)
        #expect(pause.declaredDeadBy == 0)
        #expect(pause.aliveEverywhereAfterSeconds != nil)
        #expect(simulator.member(3).incarnation > 0)
        for observer in 0..<10 {
            #expect(simulator.status(of: 3, seenBy: observer) == .alive)
            #expect(simulator.incarnation(of: 3, seenBy: observer) == simulator.member(3).incarnation)
        }
    }

    @Test func pauseLongerThanTheSuspicionTimeoutIsDeclaredDeadThenRefuted() throws {
        // Floor 4 s, ceiling 24 s: a 30 s pause is a real (if temporary) failure.
        let report = Simulator(pauseScenario(pause: .seconds(30), suspicionMult: 4)).run()
        #expect(report.passed, "\(failures(report))")
        let pause = try #require(report.pauses.first)
        #expect(pause.declaredDeadBy == 9)
        #expect(report.falsePositives == 0)
        #expect(pause.aliveEverywhereAfterSeconds != nil)
    }

    /// One node of 20 is slow for 40 s: it reads datagrams 12 s late (past the 5.2 s
    /// suspicion floor) while its timers run 1.2 s late. Lifeguard §2's case.
    func slowScenario(lifeguard: Bool, without parts: LifeguardParts = []) -> Scenario {
        var settings = SWIMSettings()
        settings.lifeguard = lifeguard
        settings.lifeguardParts.subtract(parts)
        var scenario = Scenario(
            nodes: 20, duration: .seconds(120), seed: 5, settings: settings, network: NetworkModel(loss: 0.01))
        scenario.faults = [
            ScheduledFault(at: .seconds(10), .slow(node: 7, duration: .seconds(40), lag: .seconds(12), timerLag: 0.1))
        ]
        scenario.allowedFalsePositives = 1000
        return scenario
    }

    @Test func aSlowNodeWithoutLifeguardDeclaresHealthyMembersDead() throws {
        let simulator = Simulator(slowScenario(lifeguard: false))
        let report = simulator.run()
        let episode = try #require(report.slowEpisodes.first)
        // Its probes time out before it reads the acks; its suspicions expire before
        // it reads the refutations.
        #expect(episode.falseSuspicions > 0)
        #expect(episode.falsePositives > 0)
        #expect(report.falsePositives >= episode.falsePositives)
        #expect(episode.peakLocalHealth == 0)
        // Once it has read its backlog, views converge again.
        for observer in 0..<20 {
            for subject in 0..<20 {
                #expect(simulator.status(of: subject, seenBy: observer) == .alive)
            }
        }
    }

    @Test func withLifeguardTheSlowNodeStopsAccusingAndDeclaresNoOneDead() throws {
        let simulator = Simulator(slowScenario(lifeguard: true))
        let report = simulator.run()
        let episode = try #require(report.slowEpisodes.first)
        #expect(report.falsePositives == 0, "\(report.falsePositiveExamples)")
        // The local health multiplier reached its ceiling: probes stretched × 8.
        #expect(episode.peakLocalHealth == 7)
        let plain = try #require(Simulator(slowScenario(lifeguard: false)).run().slowEpisodes.first)
        #expect(episode.falseSuspicions * 5 <= plain.falseSuspicions)
        // The others, whom it cannot answer in time, see it dead: a founded verdict.
        #expect(episode.declaredDeadBy > 0)
        #expect(report.passed, "\(failures(report))")
        for observer in 0..<20 {
            for subject in 0..<20 {
                #expect(simulator.status(of: subject, seenBy: observer) == .alive)
            }
        }
    }

    @Test func slowNodeRunsReplayFromTheirSeed() {
        #expect(
            Simulator(slowScenario(lifeguard: true)).run().digest
                == Simulator(slowScenario(lifeguard: true)).run().digest)
    }
}
