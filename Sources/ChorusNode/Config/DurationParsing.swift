import ChorusCore
import Foundation

/// Go-style durations, as in serf's and consul's configs: `500ms`, `1s`, `1m30s`, `3h`.
public enum DurationParsing {
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [
            ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
            ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        var total: Int64 = 0
        while !rest.isEmpty {
            let number = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            // Longest unit first, so "ms" is not read as "m" followed by "s".
            guard
                let (unit, scale) = units.sorted(by: { $0.0.count > $1.0.count }).first(where: {
                    rest.hasPrefix($0.0)
                })
            else { return nil }
            rest = rest.dropFirst(unit.count)
            let nanos = value * Double(scale)
            guard nanos.isFinite, nanos < 9e18 else { return nil }
            // Each part fits, their sum may not (`?timeout=2000000h2000000h2000000h` trapped
            // the agent): too long is not a duration.
            let (sum, overflow) = total.addingReportingOverflow(Int64(nanos))
            guard !overflow else { return nil }
            total = sum
        }
        return .nanoseconds(total)
    }

    /// The shortest exact text for a duration: `1s`, `500ms`, `24h`.
    public static func format(_ duration: Duration) -> String {
        let nanos = duration.nanosecondsClamped
        for (unit, scale) in [
            ("h", Int64(3_600_000_000_000)), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000),
            ("us", 1_000),
        ]
        where nanos != 0 && nanos % scale == 0 {
            return "\(nanos / scale)\(unit)"
        }
        return "\(nanos)ns"
    }
}
