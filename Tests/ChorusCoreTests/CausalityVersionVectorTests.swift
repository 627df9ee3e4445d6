import Testing

@testable import ChorusCore

@Suite struct CausalityVersionVectorTests {
    let a = causalNode(1)
    let b = causalNode(2)

    @Test func comparisonsFollowThePointwiseOrder() {
        let x = VersionVector([a: 2, b: 1])
        let y = VersionVector([a: 1, b: 1])
        let z = VersionVector([a: 1, b: 3])
        #expect(x.descends(y) && x.dominates(y) && !y.descends(x))
        #expect(x.descends(x) && !x.dominates(x))
        #expect(x.concurrent(with: z) && !x.concurrent(with: y))
        #expect(x.merged(z) == VersionVector([a: 2, b: 3]))
        #expect(VersionVector([a: 0]) == VersionVector())
        #expect(VersionVector().descends(VersionVector()))
        var w = x
        w[a] = 0
        #expect(w == VersionVector([b: 1]) && w[a] == 0)
        let pairs: [(NodeID, UInt64)] = [(a, 1), (a, 4), (b, 0)]
        #expect(VersionVector(pairs: pairs) == VersionVector([a: 4]))
        #expect(x.sortedEntries.map(\.id) == [a, b])
    }

    @Test func mergeIsALatticeJoin() {
        var rng = CausalRNG(seed: 0x77)
        func vector() -> VersionVector {
            VersionVector(pairs: (1...4).map { (causalNode(UInt64($0)), UInt64(rng.below(4))) })
        }
        for _ in 0..<300 {
            let x = vector()
            let y = vector()
            let z = vector()
            #expect(x.merged(y) == y.merged(x))
            #expect(x.merged(y).merged(z) == x.merged(y.merged(z)))
            #expect(x.merged(x) == x)
            #expect(x.merged(y).descends(x) && x.merged(y).descends(y))
            #expect(x.descends(y) == (x.merged(y) == x))
            #expect([x.dominates(y), y.dominates(x), x == y, x.concurrent(with: y)].filter { $0 }.count == 1)
        }
    }
}
