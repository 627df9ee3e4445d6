import Foundation

/// Runs blocking work (waiting for a subprocess, a polling sleep) on a thread of its own
/// and resumes the caller when it is done.
///
/// Swift concurrency's cooperative pool has one thread per core, two on the CI machines.
/// A test that blocks one of them for minutes (a `tools/faults` scenario, a rolling
/// restart) halves what every other test gets, and two such tests at once stop every
/// async test, whose waits then time out with nothing wrong in the agents. Every wait on
/// a process goes through here.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.name = "process-test-wait"
        thread.start()
    }
}
