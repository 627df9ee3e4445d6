import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram of
/// `KEY=VALUE` lines to the AF_UNIX socket named by `$NOTIFY_SOCKET`.
///
/// With `Type=notify` in the unit, `systemctl start` (and `restart`) returns only once
/// the agent sends `READY=1`, so a script or a rolling restart that waits on systemctl
/// waits for a node that has joined and serves. Without `$NOTIFY_SOCKET` (run by hand,
/// by tools/cluster, or `Type=simple`) every call does nothing. Failures are ignored,
/// as sd_notify's callers do: readiness is a courtesy to the service manager, never a
/// reason to stop serving.
public struct SystemdNotifier: Sendable {
    /// The socket address: a path, or an abstract name (leading '@' in the variable,
    /// a leading NUL byte on the wire). Nil when the variable is unset or unusable.
    let socketPath: [UInt8]?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = Self.address(environment["NOTIFY_SOCKET"])
    }

    /// Whether a service manager listens (`$NOTIFY_SOCKET` is set to a usable path).
    public var isEnabled: Bool { socketPath != nil }

    /// The node has joined and serves HTTP (also the end of a reload).
    public func ready(status: String) {
        send(["READY=1", "STATUS=\(status)"])
    }

    /// The SIGTERM drain has begun.
    public func stopping(status: String) {
        send(["STOPPING=1", "STATUS=\(status)"])
    }

    /// A SIGHUP reload has begun; `ready(status:)` ends it. MONOTONIC_USEC is what
    /// systemd 253+ expects with RELOADING=1; older versions ignore it.
    public func reloading(status: String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        send(["RELOADING=1", "MONOTONIC_USEC=\(microseconds)", "STATUS=\(status)"])
    }

    /// Free-form status shown by `systemctl status`.
    public func status(_ text: String) {
        send(["STATUS=\(text)"])
    }

    /// Sends one datagram of newline-separated assignments. A newline inside a value
    /// would start a new assignment, so values are kept to one line.
    public func send(_ assignments: [String]) {
        guard let socketPath else { return }
        let text = assignments.map { $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
        let payload = Array(text.utf8)

        let fd = socket(AF_UNIX, Self.datagramType | Self.closeOnExec, 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
            for (index, byte) in socketPath.enumerated() { sunPath[index] = byte }
        }
        // MSG_DONTWAIT: a service manager that does not read must not stall the agent.
        // The address length counts the path bytes only: an abstract name is exactly
        // its bytes (a trailing NUL would be part of the name).
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + socketPath.count)
        _ = payload.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, length)
                }
            }
        }
    }

    /// `$NOTIFY_SOCKET` as the bytes of `sun_path`: '@' becomes the NUL of the
    /// abstract namespace. Only absolute paths and abstract names are accepted (as
    /// libsystemd does), and the name must fit `sun_path`.
    static func address(_ variable: String?) -> [UInt8]? {
        guard let variable, let first = variable.first, first == "/" || first == "@" else { return nil }
        var bytes = Array(variable.utf8)
        if first == "@" { bytes[0] = 0 }
        guard bytes.count >= 2, bytes.count <= MemoryLayout.size(ofValue: sockaddr_un().sun_path) else { return nil }
        return bytes
    }

    private static var datagramType: Int32 {
        #if canImport(Glibc)
            Int32(SOCK_DGRAM.rawValue)
        #else
            SOCK_DGRAM
        #endif
    }

    private static var closeOnExec: Int32 {
        #if canImport(Glibc)
            Int32(SOCK_CLOEXEC.rawValue)
        #else
            0
        #endif
    }
}

/// The agent's readiness as systemd sees it: starting -> ready -> (reloading ->
/// ready)* -> stopping. Each notification is sent under the lock, so a READY=1 can
/// never follow STOPPING=1 however the join and a SIGTERM race.
public final class ServiceReadiness: Sendable {
    enum State { case starting, ready, stopping }

    public let notifier: SystemdNotifier
    private let state = NIOLockedValueBox(State.starting)

    public init(notifier: SystemdNotifier = SystemdNotifier()) {
        self.notifier = notifier
    }

    /// Still waiting for the first `ready`.
    public var isStarting: Bool { state.withLockedValue { $0 == .starting } }

    /// READY=1, once, unless the agent is already stopping.
    public func ready(status: String) {
        state.withLockedValue { state in
            guard state == .starting else { return }
            state = .ready
            notifier.ready(status: status)
        }
    }

    /// STOPPING=1 (once); from here on nothing else is sent.
    public func stopping(status: String) {
        state.withLockedValue { state in
            guard state != .stopping else { return }
            state = .stopping
            notifier.stopping(status: status)
        }
    }

    /// RELOADING=1 around a reload, then READY=1 again: only once ready (a reload
    /// while joining must not announce readiness early).
    public func reload(_ body: () -> String) {
        let wasReady = state.withLockedValue { state in
            guard state == .ready else { return false }
            notifier.reloading(status: "reloading log level and keyring")
            return true
        }
        let outcome = body()
        guard wasReady else { return }
        state.withLockedValue { state in
            guard state == .ready else { return }
            notifier.ready(status: outcome)
        }
    }
}
