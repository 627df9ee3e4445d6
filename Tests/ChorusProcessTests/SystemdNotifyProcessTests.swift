import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The agent's sd_notify readiness, seen from the service manager's side: the test
/// binds the AF_UNIX datagram socket systemd would, and points `NOTIFY_SOCKET` at it.
/// Loopback subnet 127.0.73.x (tools/bench-kv uses 127.0.70-71).
@Suite("systemd readiness, real agents", .serialized)
struct SystemdNotifyProcessTests {
    @Test func readyOnlyOnceJoinedAndServingStoppingOnSigtermReloadingOnSighup() async throws {
        try await AgentCluster.run(subnet: 73, label: "sd-notify") { cluster in
            let pathSocket = try NotifySocket(path: cluster.root.appendingPathComponent("notify.sock").path)
            let abstractSocket = try NotifySocket(
                abstractName: "chorus-test-\(getpid())-\(UUID().uuidString.prefix(8))")

            // node2 first, its seed (node1) not running: it answers HTTP but has not joined.
            let node2 = try cluster.start(
                name: "node2", hostIndex: 2, join: [cluster.gossipAddress(1)],
                environment: ["NOTIFY_SOCKET": pathSocket.address])
            try await cluster.waitUntil("node2 answers HTTP") { () async throws -> Bool in
                _ = try await cluster.status(of: node2)
                return true
            }
            let whileJoining = try await pathSocket.drain()
            #expect(!whileJoining.contains { $0.contains("READY=1") }, "READY before joining: \(whileJoining)")

            // node1 (no seeds: joined at once) on the abstract socket name.
            let node1 = try cluster.start(
                name: "node1", hostIndex: 1, join: [], environment: ["NOTIFY_SOCKET": abstractSocket.address])
            let node1Ready = try await abstractSocket.wait(for: "READY=1")
            // READY=1 means the HTTP API answers now: no retry.
            let status1 = try await cluster.command(["status", "--format", "json", "--http-addr", node1.httpAddress])
            #expect(status1.status == 0, "\(status1)")
            #expect(node1Ready.last?.contains("STATUS=serving") == true, "\(node1Ready)")

            let node2Ready = try await pathSocket.wait(for: "READY=1")
            #expect(
                (whileJoining + node2Ready).contains { $0.contains("STATUS=joining") },
                "no joining status: \(whileJoining + node2Ready)")
            // Ready means joined: node2 knows node1 and takes writes (not 503 "still joining").
            let members = try await cluster.members(of: node2)
            #expect(members.named("node1") != nil, "\(MemberView.summary(members))")
            let put = try await cluster.command(["put", "--http-addr", node2.httpAddress, "ready-key", "v"])
            #expect(put.status == 0, "\(put)")

            // SIGHUP: RELOADING=1 then READY=1 again.
            node1.signal(SIGHUP)
            let reload = try await abstractSocket.wait(for: "READY=1")
            let reloading = reload.firstIndex { $0.contains("RELOADING=1") }
            #expect(reloading != nil && reloading! < reload.count - 1, "reload messages: \(reload)")
            #expect(reload.last?.contains("STATUS=serving; reloaded") == true, "\(reload)")

            // SIGTERM: STOPPING=1 as the drain starts, then a clean exit.
            cluster.terminate(node2)
            let stopping = try await pathSocket.wait(for: "STOPPING=1")
            #expect(!stopping.contains { $0.contains("READY=1") }, "\(stopping)")
            let exit = try await cluster.waitForExit(node2)
            #expect(exit.isCleanExit, "node2 ended with \(exit)")

            // Every line the agent wrote is one event naming its node.
            let lines = node2.log.split(separator: "\n").filter { !$0.hasPrefix("====") }
            #expect(lines.count > 5)
            for line in lines {
                #expect(line.contains("node=node2"), "log line without the node name: \(line)")
            }
        }
    }
}

/// A bound AF_UNIX datagram socket, as systemd's notify socket; a path or an
/// abstract name ('@' in `NOTIFY_SOCKET`).
final class NotifySocket {
    private let fd: Int32
    private let path: String?
    /// Received after the datagram a `wait` returned at.
    private var pending: [String] = []
    /// The value for `NOTIFY_SOCKET`.
    let address: String

    convenience init(path: String) throws {
        try self.init(sunPath: Array(path.utf8), address: path, path: path)
    }

    convenience init(abstractName: String) throws {
        try self.init(sunPath: [0] + Array(abstractName.utf8), address: "@" + abstractName, path: nil)
    }

    private init(sunPath: [UInt8], address: String, path: String?) throws {
        #if canImport(Glibc)
            let type = Int32(SOCK_DGRAM.rawValue)
        #else
            let type = SOCK_DGRAM
        #endif
        fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw HarnessError("socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        self.address = address
        self.path = path
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        guard sunPath.count <= MemoryLayout.size(ofValue: storage.sun_path) else {
            close(fd)
            throw HarnessError("socket name too long: \(address)")
        }
        withUnsafeMutableBytes(of: &storage.sun_path) { bytes in
            for (index, byte) in sunPath.enumerated() { bytes[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + sunPath.count)
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard result == 0 else {
            let text = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("bind(\(address)): \(text)")
        }
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// Every datagram queued now (and any left over from a `wait`).
    func drain() async throws -> [String] {
        var messages = pending
        pending = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { return messages }
            messages.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
    }

    /// Datagrams up to and including the first with the line `assignment`.
    func wait(for assignment: String, deadline: Duration = AgentCluster.defaultDeadline) async throws -> [String] {
        let end = ContinuousClock.now + deadline
        var seen: [String] = []
        while true {
            var batch = try await drain()
            while !batch.isEmpty {
                let message = batch.removeFirst()
                seen.append(message)
                if message.split(separator: "\n").contains(where: { $0 == assignment }) {
                    pending = batch
                    return seen
                }
            }
            if ContinuousClock.now >= end {
                throw HarnessError("no \(assignment) on \(address) within \(deadline); got \(seen)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
