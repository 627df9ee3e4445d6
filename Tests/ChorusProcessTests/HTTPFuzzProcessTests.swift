import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Hostile input on a real agent's sockets (issue 8): malformed HTTP requests (bad
/// paths and percent-encoding, bad quorum and timeout parameters, bad contexts, bad
/// JSON on POST routes, huge headers, broken framing) and seeded random bytes on the
/// HTTP port, and random frames on the gossip TCP port. The agent must answer each
/// malformed request with a 4xx (or close the connection), never crash, and keep
/// serving. Bounded: a fixed list plus 300 seeded random inputs, 2 s each at most.
///
/// Subnet 127.0.62.x.
@Suite("Hostile HTTP and TCP input, real agent", .serialized)
struct HTTPFuzzProcessTests {
    /// Requests the agent must refuse with a 4xx naming the problem. The request line
    /// is sent verbatim (no client-side encoding).
    static let malformed: [(String, [UInt8])] = {
        func request(_ line: String, headers: [String] = [], body: [UInt8] = []) -> [UInt8] {
            var head = line + "\r\nHost: x\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
            for header in headers { head += header + "\r\n" }
            return Array((head + "\r\n").utf8) + body
        }
        var cases: [(String, [UInt8])] = [
            ("no bucket", request("GET /v1/kv/ HTTP/1.1")),
            ("no key", request("GET /v1/kv/default HTTP/1.1")),
            ("empty bucket", request("GET /v1/kv//k HTTP/1.1")),
            ("empty key", request("GET /v1/kv/default/ HTTP/1.1")),
            ("bad bucket name", request("PUT /v1/kv/b%2Fad/k HTTP/1.1", body: [1])),
            ("lone percent", request("GET /v1/kv/default/% HTTP/1.1")),
            ("bad percent escape", request("GET /v1/kv/default/%zz HTTP/1.1")),
            ("percent-encoded NUL and invalid UTF-8", request("GET /v1/kv/default/%00%ff%fe HTTP/1.1")),
            ("key over 1024 bytes", request("GET /v1/kv/default/\(String(repeating: "k", count: 5000)) HTTP/1.1")),
            ("w=0", request("PUT /v1/kv/default/k?w=0 HTTP/1.1", body: [1])),
            ("w=-1", request("PUT /v1/kv/default/k?w=-1 HTTP/1.1", body: [1])),
            ("w beyond Int", request("PUT /v1/kv/default/k?w=99999999999999999999999 HTTP/1.1", body: [1])),
            ("w beyond n", request("PUT /v1/kv/default/k?w=4 HTTP/1.1", body: [1])),
            ("r word", request("GET /v1/kv/default/k?r=most HTTP/1.1")),
            ("timeout words", request("GET /v1/kv/default/k?timeout=soon HTTP/1.1")),
            ("timeout negative", request("GET /v1/kv/default/k?timeout=-5 HTTP/1.1")),
            ("timeout beyond Int", request("GET /v1/kv/default/k?timeout=99999999999999999999999 HTTP/1.1")),
            ("timeout Int.max ms", request("GET /v1/kv/default/k?timeout=9223372036854775807 HTTP/1.1")),
            // Each part fits in Int64 nanoseconds, their sum does not (an overflow trap before the fix).
            ("timeout parts overflow", request("GET /v1/kv/default/k?timeout=2000000h2000000h2000000h HTTP/1.1")),
            ("timeout too long", request("GET /v1/kv/default/k?timeout=1h HTTP/1.1")),
            ("timeout dots", request("GET /v1/kv/default/k?timeout=1.2.3s HTTP/1.1")),
            ("sloppy maybe", request("PUT /v1/kv/default/k?sloppy=maybe HTTP/1.1", body: [1])),
            ("replica on PUT", request("PUT /v1/kv/default/k?replica=local HTTP/1.1", body: [1])),
            ("unknown parameter", request("GET /v1/kv/default/k?consistency=strong HTTP/1.1")),
            (
                "context not base64",
                request("PUT /v1/kv/default/k HTTP/1.1", headers: ["X-Chorus-Context: ***"], body: [1])
            ),
            (
                "context random base64",
                request(
                    "PUT /v1/kv/default/k HTTP/1.1", headers: ["X-Chorus-Context: AAECAwQFBgcICQoLDA0ODw=="], body: [1])
            ),
            (
                "context 100 kB",
                request(
                    "PUT /v1/kv/default/k HTTP/1.1",
                    headers: ["X-Chorus-Context: " + String(repeating: "QUJD", count: 25_000)], body: [1])
            ),
            ("keys body not JSON", request("POST /v1/keys/install HTTP/1.1", body: Array("{".utf8))),
            ("keys body array", request("POST /v1/keys/use HTTP/1.1", body: Array("[]".utf8))),
            ("keys body wrong type", request("POST /v1/keys/remove HTTP/1.1", body: Array("{\"key\": 5}".utf8))),
            ("keys body not a key", request("POST /v1/keys/install HTTP/1.1", body: Array("{\"key\": \"%%%\"}".utf8))),
            ("keys unknown operation", request("POST /v1/keys/rotate HTTP/1.1", body: Array("{}".utf8))),
            ("repair partition", request("POST /v1/repair?partition=-1 HTTP/1.1")),
            ("repair partition beyond Int", request("POST /v1/repair?partition=99999999999999999999 HTTP/1.1")),
            ("repair unknown node", request("POST /v1/repair?node=%00 HTTP/1.1")),
            ("unknown endpoint", request("GET /v2/everything HTTP/1.1")),
            ("method not allowed", request("PATCH /v1/kv/default/k HTTP/1.1")),
        ]
        // Framing the HTTP parser must refuse.
        cases += [
            (
                "header of 200 kB",
                request("GET /v1/status HTTP/1.1", headers: ["X-Big: " + String(repeating: "a", count: 200_000)])
            ),
            ("10,000 headers", request("GET /v1/status HTTP/1.1", headers: (0..<10_000).map { "X-\($0): v" })),
            ("unknown method", request("FROB /v1/status HTTP/1.1")),
            ("no version", Array("GET /v1/status\r\n\r\n".utf8)),
            ("HTTP/9.9", request("GET /v1/status HTTP/9.9")),
            ("negative length", Array("PUT /v1/kv/default/k HTTP/1.1\r\nContent-Length: -1\r\n\r\n".utf8)),
            (
                "two lengths",
                Array("PUT /v1/kv/default/k HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".utf8)
            ),
            (
                "bad chunk size",
                Array("PUT /v1/kv/default/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n".utf8)
            ),
            (
                "chunk size overflow",
                Array(
                    "PUT /v1/kv/default/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nab\r\n"
                        .utf8)
            ),
            ("NUL in request line", Array("GET /v1/st\0atus HTTP/1.1\r\n\r\n".utf8)),
            (
                "body over the value limit",
                request("PUT /v1/kv/default/k HTTP/1.1", body: [UInt8](repeating: 1, count: (1 << 20) + 10))
            ),
        ]
        return cases
    }()

    @Test func malformedAndRandomRequestsAreRefusedAndTheAgentKeepsServing() async throws {
        try await AgentCluster.run(subnet: 62, label: "http-fuzz") { cluster in
            let agent = try cluster.start(name: "node1", hostIndex: 1, join: [])
            try await cluster.waitUntil("node1 serves", deadline: .seconds(30)) { () async throws -> Bool in
                (try? await cluster.members(of: agent))?.isEmpty == false
            }
            let good = try await agent.kvPut("before", "fine", w: "1")
            try #require(good.status == 204, "\(good)")

            var statuses: [Int: Int] = [:]
            for (name, bytes) in Self.malformed {
                let answer = try await RawTCP.exchange(bytes, with: agent.httpAddress)
                let status = RawTCP.status(of: answer)
                statuses[status ?? 0, default: 0] += 1
                if let status {
                    #expect(
                        (400..<500).contains(status), "\(name): \(String(decoding: answer.prefix(300), as: UTF8.self))")
                }
                #expect(agent.isRunning, "agent died on \(name)")
                if !agent.isRunning { return }
            }

            // Seeded random inputs: pure random bytes, and valid requests with bytes flipped.
            var random = SplitMix(seed: 0x4854_5450)
            let templates =
                Self.malformed.map(\.1).filter { $0.count < 4096 } + [
                    Array("GET /v1/kv/default/before HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8),
                    Array(
                        "PUT /v1/kv/default/r?w=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
                            .utf8),
                ]
            for iteration in 0..<300 {
                var bytes: [UInt8]
                if iteration % 3 == 0 {
                    bytes = (0..<Int(random.next() % 512)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                } else {
                    bytes = templates[Int(random.next() % UInt64(templates.count))]
                    for _ in 0..<(1 + Int(random.next() % 4)) where !bytes.isEmpty {
                        bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                    }
                }
                let answer = try await RawTCP.exchange(bytes, with: agent.httpAddress)
                let status = RawTCP.status(of: answer)
                statuses[status ?? 0, default: 0] += 1
                // A flipped byte may still make a valid request; it must never make the agent fail.
                if let status { #expect(status != 500, "random input \(iteration) got a 500") }
                #expect(agent.isRunning, "agent died on random input \(iteration)")
                if !agent.isRunning { return }
            }

            // Random frames on the gossip TCP port: oversized length prefixes, short frames, junk.
            let gossip = "\(agent.host):\(AgentCluster.gossipPort)"
            var frames: [[UInt8]] = [
                [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], [0x00, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 64),
            ]
            frames += (0..<40).map { _ in
                (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            frames += (0..<20).map { _ in
                let body = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                return [0, 0, UInt8(body.count >> 8), UInt8(truncatingIfNeeded: body.count)] + body
            }
            for frame in frames {
                _ = try await RawTCP.exchange(frame, with: gossip)
            }
            print("http-fuzz: statuses \(statuses.sorted { $0.key < $1.key }) (0: connection closed without an answer)")

            #expect(agent.isRunning)
            let read = try await agent.kvGet("before", r: "1")
            #expect(read.status == 200 && read.text == "fine", "after the fuzzing: \(read)")
            let write = try await agent.kvPut("after", "still", w: "1")
            #expect(write.status == 204, "after the fuzzing: \(write)")
            let status = try await cluster.command(["status", "--http-addr", agent.httpAddress])
            let storageLine = status.stdout.split(separator: "\n").first { $0.hasPrefix("Storage") }
            #expect(status.status == 0 && storageLine?.hasSuffix(" ok") == true, "\(status)")
        }
    }
}

/// SplitMix64: seeded, so the random inputs are the same on every run.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Sends raw bytes on a fresh TCP connection, half-closes, and reads until the peer
/// closes or 2 s pass (on a thread of its own, never a concurrency worker).
private enum RawTCP {
    static func exchange(_ bytes: [UInt8], with address: String) async throws -> [UInt8] {
        try await onOwnThread { try blockingExchange(bytes, with: address) }
    }

    /// The status code of an HTTP answer, nil when there was none.
    static func status(of answer: [UInt8]) -> Int? {
        let text = String(decoding: answer.prefix(16), as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), text.count >= 12 else { return nil }
        return Int(text.dropFirst(9).prefix(3))
    }

    private static func blockingExchange(_ bytes: [UInt8], with address: String) throws -> [UInt8] {
        let fd = try LoopbackTCP.connected(to: address, what: "raw TCP to \(address)")
        defer { close(fd) }
        let deadline = ContinuousClock.now + .seconds(2)
        var sent = 0
        while sent < bytes.count, ContinuousClock.now < deadline {
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                sent += count
            } else if count < 0, errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK {
                continue
            } else {
                break  // the peer answered and closed early
            }
        }
        shutdown(fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while ContinuousClock.now < deadline, received.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
            } else if count == 0 {
                break
            } else if errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK {
                break  // reset: the agent dropped the connection
            }
        }
        return received
    }
}
