import Logging
import NIOConcurrencyHelpers

/// A log handler whose level can change while the agent runs (SIGHUP reloads it
/// from the config): every copy of the agent's `Logger` shares one level.
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
        self.inner = StreamLogHandler.standardError(label: label)
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
        inner.log(event: event)
    }
}
