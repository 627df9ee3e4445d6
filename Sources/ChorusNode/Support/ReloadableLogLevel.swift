import Logging
import NIOConcurrencyHelpers

/// A log handler whose level can change while the agent runs (SIGHUP reloads it
/// from the config): every copy of the agent's `Logger` shares one level.
///
/// It also keeps the promise of the agent's log: one event a line (journald and
/// `grep` split on newlines). Messages, metadata values and errors often embed an
/// error's description, which may span lines (a TOML or SQLite message, a nested
/// error): their line breaks are written as `\n` and `\r`, so one event is always one line
/// starting with its timestamp and carrying the handler's `node=` metadata.
struct ReloadableLogHandler: LogHandler {
    final class Level: Sendable {
        private let box: NIOLockedValueBox<Logger.Level>
        init(_ level: Logger.Level) { box = NIOLockedValueBox(level) }
        var value: Logger.Level {
            get { box.withLockedValue { $0 } }
            set { box.withLockedValue { $0 = newValue } }
        }
    }

    private var inner: StreamLogHandler
    let level: Level

    init(label: String, level: Level) {
        self.init(inner: StreamLogHandler.standardError(label: label), level: level)
    }

    /// Writes to `stream` instead of stderr (tests).
    init(label: String, level: Level, stream: any TextOutputStream & Sendable) {
        self.init(inner: StreamLogHandler(label: label, stream: stream, metadataProvider: nil), level: level)
    }

    private init(inner: StreamLogHandler, level: Level) {
        self.inner = inner
        self.level = level
        self.inner.logLevel = .trace
    }

    var logLevel: Logger.Level {
        get { level.value }
        set { level.value = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= level.value else { return }
        var event = event
        event.message = "\(Self.oneLine(event.message.description))"
        if let error = event.error {
            // What StreamLogHandler would add, escaped like the rest.
            event.metadata = (event.metadata ?? [:]).merging(
                ["error.message": "\(error)", "error.type": "\(String(reflecting: type(of: error)))"]
            ) { _, new in new }
            event.error = nil
        }
        event.metadata = event.metadata?.mapValues { .string(Self.oneLine($0.description)) }
        inner.log(event: event)
    }

    /// `text` with its line breaks (LF, CR) written as `\n` and `\r`.
    static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r": out.append(contentsOf: #"\r"#.unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
