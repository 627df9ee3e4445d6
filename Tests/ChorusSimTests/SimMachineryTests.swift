import ChorusSim
import Testing

@Suite struct SimMachineryTests {
    @Test func percentilesUseNearestRank() {
        let summary = Percentiles((1...100).map(Double.init))
        #expect(summary.p50 == 50)
        #expect(summary.p99 == 99)
        #expect(summary.max == 100)
        #expect(Percentiles([]).count == 0)
    }

    @Test func digestDependsOnOrder() {
        var a = TraceDigest()
        var b = TraceDigest()
        a.mix(UInt64(1))
        a.mix(UInt64(2))
        b.mix(UInt64(2))
        b.mix(UInt64(1))
        #expect(a.hex != b.hex)
        #expect(a.hex.count == 16)
    }
}
