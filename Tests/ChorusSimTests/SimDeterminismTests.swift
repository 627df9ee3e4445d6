import ChorusCore
import ChorusSim
import Foundation
import Testing

/// Same seed, same run: the trace digest is the proof.
@Suite struct SimDeterminismTests {
    func busyScenario(seed: UInt64) -> Scenario {
        var scenario = Scenario.standard(
            nodes: 30, duration: .seconds(40), loss: 0.02, crashes: 1, pauses: 2, seed: seed)
        scenario.network.duplication = 0.01
        scenario.network.reordering = 0.02
        scenario.faults.append(
            ScheduledFault(at: .seconds(15), .partition(.isolating([5, 6], nodes: 30), duration: .seconds(8))))
        return scenario
    }

    @Test func sameSeedGivesTheSameDigest() {
        let first = Simulator(busyScenario(seed: 42)).run()
        let second = Simulator(busyScenario(seed: 42)).run()
        #expect(first.events > 10_000)
        #expect(first.digest == second.digest)
        #expect(first.events == second.events)
        #expect(first.traffic.bytesPerNodePerSecond == second.traffic.bytesPerNodePerSecond)
    }

    @Test func differentSeedsGiveDifferentDigests() {
        let digests = Set((1...3).map { Simulator(busyScenario(seed: $0)).run().digest })
        #expect(digests.count == 3)
    }

    @Test func sizingWithoutTheCodecTakesTheSameSteps() {
        var sized = busyScenario(seed: 7)
        sized.throughCodec = false
        let coded = Simulator(busyScenario(seed: 7)).run()
        let uncoded = Simulator(sized).run()
        #expect(coded.digest == uncoded.digest)
        #expect(coded.traffic.bytesPerNodePerSecond == uncoded.traffic.bytesPerNodePerSecond)
    }

    @Test func reportRoundTripsThroughJSON() throws {
        let report = Simulator(
            Scenario.standard(nodes: 5, duration: .seconds(5), loss: 0, crashes: 0, pauses: 0, seed: 1)
        )
        .run()
        let json = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(SimReport.self, from: json)
        #expect(decoded.digest == report.digest)
    }
}
