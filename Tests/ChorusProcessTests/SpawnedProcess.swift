import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A child process started the way a service manager starts one: empty signal mask,
/// default signal dispositions, stdin from /dev/null, stdout and stderr appended to
/// a log file.
///
/// Foundation's `Process` is not used for agents because its children inherit the
/// signal mask of the spawning thread, and Swift concurrency's worker threads block
/// SIGTERM: an agent started that way would hold an early SIGTERM pending and lose it
/// when it installs its handler — a harness artefact, not something systemd does.
/// Like a service manager, it passes the child no descriptors beyond stdio.
final class SpawnedProcess {
    let pid: pid_t
    private var termination: Termination?

    init(executable: String, arguments: [String], environment: [String: String], logFile: String) throws {
        #if os(Linux)
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            // Nothing else: an inherited descriptor (another child's log, or the
            // socket Foundation's Process watches for EOF to learn that a command
            // exited) would outlive its owner for as long as the agent runs.
            Self.closeDescriptorsFromThree(&actions)

            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var emptyMask = sigset_t()
            sigemptyset(&emptyMask)
            posix_spawnattr_setsigmask(&attributes, &emptyMask)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] {
                sigaddset(&defaults, signal)
            }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

            let argv = ([executable] + arguments).map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for pointer in argv { free(pointer) }
                for pointer in envp { free(pointer) }
            }
            var child: pid_t = 0
            let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
            guard result == 0 else {
                throw HarnessError("posix_spawn(\(executable)): \(String(cString: strerror(result)))")
            }
            pid = child
        #else
            // Elsewhere, Foundation's Process (signal mask caveat above).
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = environment
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
            try log.seekToEnd()
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = log
            process.standardError = log
            try process.run()
            try? log.close()
            pid = process.processIdentifier
        #endif
    }

    #if os(Linux)
        /// `posix_spawn_file_actions_addclosefrom_np(actions, 3)` (glibc 2.34+, not in
        /// the Glibc module map), else one close action per descriptor open now.
        private static func closeDescriptorsFromThree(_ actions: inout posix_spawn_file_actions_t) {
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
                let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
                if closeFrom(&actions, 3) == 0 { return }
            }
            let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            for descriptor in open.compactMap({ Int32($0) }) where descriptor >= 3 {
                posix_spawn_file_actions_addclose(&actions, descriptor)
            }
        }
    #endif

    /// Whether the child still runs; reaps it (without blocking) once it has exited.
    var isRunning: Bool {
        reap(blocking: false)
        return termination == nil
    }

    /// How the child ended, once it has.
    var exit: Termination? {
        reap(blocking: false)
        return termination
    }

    /// Sends `signal` unless the child has been reaped (its PID may be reused then).
    func send(_ signal: Int32) {
        guard isRunning else { return }
        kill(pid, signal)
    }

    /// Blocks until the child has exited. Only call after SIGKILL.
    func waitBlocking() {
        reap(blocking: true)
    }

    private func reap(blocking: Bool) {
        guard termination == nil else { return }
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid {
                // The <sys/wait.h> macros, spelled out: low 7 bits = terminating signal.
                let signal = status & 0x7f
                termination =
                    signal == 0
                    ? Termination(reason: .exit, status: (status >> 8) & 0xff)
                    : Termination(reason: .uncaughtSignal, status: signal)
                return
            }
            if result == -1 && errno == EINTR { continue }
            if result == -1 {
                // Not our child any more (reaped elsewhere): treat as gone.
                termination = Termination(reason: .exit, status: -1)
            }
            return
        }
    }
}
