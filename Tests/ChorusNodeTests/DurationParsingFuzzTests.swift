import Testing

@testable import ChorusNode

/// `DurationParsing` reads `?timeout=` from any client and durations from the config:
/// whatever the text, it returns a duration or nil, never traps (issue 8).
@Suite struct DurationParsingFuzzTests {
    @Test func partsThatOverflowTogetherAreRefused() {
        // Each part is under 9e18 ns; the sum is not (this trapped the agent before).
        #expect(DurationParsing.parse("2000000h2000000h2000000h") == nil)
        #expect(DurationParsing.parse("2000000h") == .seconds(7_200_000_000))
        #expect(DurationParsing.parse("99999999999999999999h") == nil)
    }

    @Test func seededRandomTextNeverTraps() {
        let alphabet = Array("0123456789.hmsun µ-+e٣".unicodeScalars)
        var state: UInt64 = 0x5EED
        for _ in 0..<20_000 {
            var text = ""
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            for index in 0..<Int(state >> 60) {
                text.unicodeScalars.append(alphabet[Int((state >> UInt64(index * 3 % 55)) % UInt64(alphabet.count))])
            }
            if let duration = DurationParsing.parse(text) {
                #expect(duration >= .zero, "\(text) parsed as \(duration)")
            }
        }
    }
}
