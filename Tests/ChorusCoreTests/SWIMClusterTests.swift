import Testing

@testable import ChorusCore

@Suite struct SWIMClusterTests {
    @Test func fiveNodesConvergeToAllAlive() {
        var cluster = SWIMTestCluster(count: 5, seed: 11)
        cluster.run(until: at(20))
        for viewer in 0..<5 {
            #expect(cluster.nodes[viewer].members.count == 5)
            #expect(cluster.nodes[viewer].members.allSatisfy { $0.status == .alive })
            #expect(cluster.nodes[viewer].localHealth == 0)
        }
        #expect(cluster.oversized.isEmpty)
    }

    @Test func silencedNodeBecomesDeadEverywhere() {
        var cluster = SWIMTestCluster(count: 5, seed: 12)
        cluster.run(until: at(10))
        cluster.silenced = [3]
        cluster.run(until: at(60))
        for viewer in [0, 1, 2, 4] {
            #expect(cluster.status(of: 3, seenBy: viewer) == .dead)
            for other in [0, 1, 2, 4] {
                #expect(cluster.status(of: other, seenBy: viewer) == .alive)
            }
        }
        // Back: a push-pull tells it it was declared dead, and it refutes.
        cluster.silenced = []
        let view = cluster.nodes[0].fullState()
        cluster.handle(3, cluster.nodes[3].mergeFullState(view, now: at(60)))
        #expect(cluster.nodes[3].myself.incarnation == 1)
        cluster.run(until: at(90))
        for viewer in 0..<5 {
            #expect(cluster.nodes[viewer].members.allSatisfy { $0.status == .alive })
        }
        #expect(cluster.oversized.isEmpty)
    }

    @Test func stoppedNodeIsStoppedEverywhereAtOnce() {
        var cluster = SWIMTestCluster(count: 5, seed: 13)
        cluster.run(until: at(10))
        cluster.handle(2, cluster.nodes[2].depart(.stopped, now: cluster.now))
        cluster.run(until: cluster.now + .milliseconds(5))
        for viewer in [0, 1, 3, 4] {
            #expect(cluster.status(of: 2, seenBy: viewer) == .stopped)
        }
        cluster.run(until: at(60))
        for viewer in [0, 1, 3, 4] {
            #expect(cluster.status(of: 2, seenBy: viewer) == .stopped)
            #expect(cluster.nodes[viewer].members.filter { $0.status == .alive }.count == 4)
        }
    }

    @Test func sameSeedGivesSameEffects() {
        func run(seed: UInt64) -> [SWIMEffect] {
            var cluster = SWIMTestCluster(count: 5, seed: seed)
            cluster.run(until: at(8))
            cluster.silenced = [1]
            cluster.run(until: at(40))
            return cluster.log.map(\.effect)
        }
        let first = run(seed: 99)
        #expect(first.count > 100)
        #expect(run(seed: 99) == first)
        #expect(run(seed: 100) != first)
    }
}
