import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import ChorusNode

/// What the agent's log handler writes, captured.
private final class CapturedStream: TextOutputStream, Sendable {
    private let box = NIOLockedValueBox("")
    func write(_ string: String) { box.withLockedValue { $0 += string } }
    var text: String { box.withLockedValue { $0 } }
}

private struct TwoLineError: Error, CustomStringConvertible {
    var description: String { "first line\nsecond line" }
}

/// The agent's log promise: one event a line, each with the node's name.
struct LogLineTests {
    private func logger(_ stream: CapturedStream, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "chorus") { label in
            ReloadableLogHandler(label: label, level: .init(level), stream: stream)
        }
        logger[metadataKey: "node"] = "db1"
        return logger
    }

    @Test func everyEventIsOneLineWithTheNodeName() {
        let stream = CapturedStream()
        let log = logger(stream)
        log.info("plain")
        log.warning("cannot open\nthe store\r\nretrying")
        log.error("failed", metadata: ["error": "line one\nline two", "peer": "127.0.0.2:7400"])
        log.error("with an error value", error: TwoLineError())
        log.notice("nested", metadata: ["list": ["a\nb", "c"], "map": ["k": "v\nw"]])

        let lines = stream.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "", "the output ends with a newline")
        let events = lines.dropLast()
        #expect(events.count == 5, "\(stream.text)")
        for line in events {
            #expect(line.contains(" chorus: "), "not a log line: \(line)")
            #expect(line.contains("node=db1"), "no node name: \(line)")
        }
        #expect(events[1].hasSuffix(#"cannot open\nthe store\r\nretrying"#))
        #expect(events[2].contains(#"error=line one\nline two"#))
        #expect(events[3].contains(#"error.message=first line\nsecond line"#))
    }

    @Test func levelStillFiltersAndIsShared() {
        let stream = CapturedStream()
        let level = ReloadableLogHandler.Level(.info)
        var log = Logger(label: "chorus") { label in ReloadableLogHandler(label: label, level: level, stream: stream) }
        log[metadataKey: "node"] = "db1"
        log.debug("hidden")
        level.value = .debug
        log.debug("shown")
        #expect(!stream.text.contains("hidden"))
        #expect(stream.text.contains("shown"))
    }

    @Test func textWithoutLineBreaksIsUnchanged() {
        #expect(ReloadableLogHandler.oneLine("a b\tc \\n") == "a b\tc \\n")
        #expect(ReloadableLogHandler.oneLine("a\nb\rc") == #"a\nb\rc"#)
    }
}
