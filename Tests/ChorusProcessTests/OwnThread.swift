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

/// Runs `executable` to completion, blocking the calling thread; returns its exit status and
/// its output (stdout and stderr together). Only for short commands (mount, ip, a test
/// script): call it through `onOwnThread` from async code.
func runToCompletion(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}
