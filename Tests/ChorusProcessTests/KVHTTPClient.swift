import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One HTTP/1.1 response as the key-value tests see it: status, headers (names
/// lower-cased) and the raw body.
struct KVHTTPResponse: Sendable, CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var context: String? { headers["x-chorus-context"] }

    func header(_ name: String) -> String? { headers[name.lowercased()] }

    var description: String {
        let shown = body.count > 600 ? "\(text.prefix(600))... (\(body.count) bytes)" : text
        return "HTTP \(status) context=\(context ?? "-") body=\(shown.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// The JSON of a 4xx/5xx body: `{"error": ...}` and, for 503, the quorum counts.
    struct ErrorBody: Decodable, Sendable {
        var error: String
        var acknowledged: Int?
        var required: Int?
        var replicas: Int?
        var failures: [String]?
    }

    /// The JSON of a 300 body.
    struct SiblingsBody: Decodable, Sendable {
        struct Sibling: Decodable, Sendable {
            var value: String
            var timestamp: String
            var node: String
        }
        var siblings: [Sibling]
        var context: String

        /// Every sibling's value, base64-decoded as UTF-8 text.
        var values: [String] {
            siblings.map {
                Data(base64Encoded: $0.value).map { String(decoding: $0, as: UTF8.self) } ?? "<bad base64 \($0.value)>"
            }
        }
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw HarnessError("cannot decode \(T.self) from \(self): \(error)")
        }
    }
}

/// A tiny blocking HTTP/1.1 client over a TCP socket (`Connection: close`, read to
/// EOF), so the tests see exact status codes, headers and bodies without depending
/// on FoundationNetworking. Each request runs on a Dispatch thread, never on a
/// Swift concurrency worker, and is bounded by a deadline.
enum KVHTTP {
    static let defaultTimeout: Duration = .seconds(20)

    static func request(
        _ method: String, _ address: String, _ target: String, headers: [String: String] = [:],
        body: [UInt8] = [], timeout: Duration = defaultTimeout
    ) async throws -> KVHTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(
                        returning: try blockingRequest(
                            method, address, target, headers: headers, body: body, timeout: timeout))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private static func blockingRequest(
        _ method: String, _ address: String, _ target: String, headers: [String: String], body: [UInt8],
        timeout: Duration
    ) throws -> KVHTTPResponse {
        let what = "\(method) http://\(address)\(target)"
        let deadline = ContinuousClock.now + timeout
        let fd = try LoopbackTCP.connected(to: address, what: what)
        defer { close(fd) }

        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body

        var sent = 0
        while sent < request.count {
            let count = request.withUnsafeBytes {
                send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                sent += count
                continue
            }
            if count < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                if ContinuousClock.now >= deadline {
                    throw HarnessError(
                        "\(what): sending timed out after \(timeout) (\(sent) of \(request.count) bytes)")
                }
                continue
            }
            // The server may answer (413) and close before reading everything.
            break
        }

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received += buffer[0..<count]
                continue
            }
            if count == 0 { break }
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK {
                if ContinuousClock.now >= deadline {
                    throw HarnessError("\(what): no complete answer within \(timeout) (\(received.count) bytes so far)")
                }
                continue
            }
            if errno == ECONNRESET && !received.isEmpty { break }
            throw HarnessError("\(what): recv: \(errorText())")
        }
        return try parse(received, what: what)
    }

    private static func parse(_ bytes: [UInt8], what: String) throws -> KVHTTPResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        var split: Int?
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<index + 4]) == separator {
                split = index
                break
            }
        }
        guard let split else {
            throw HarnessError(
                "\(what): no HTTP header in \(bytes.count) bytes: \(String(decoding: bytes.prefix(200), as: UTF8.self))"
            )
        }
        let headText = String(decoding: bytes[0..<split], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HarnessError("\(what): bad status line '\(statusLine)'")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(split + 4)...])
        if let length = headers["content-length"].flatMap(Int.init) {
            guard body.count >= length else {
                throw HarnessError("\(what): body truncated: \(body.count) of \(length) bytes")
            }
            body = Array(body.prefix(length))
        }
        return KVHTTPResponse(status: status, headers: headers, body: body)
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// Blocking IPv4 TCP connections for the raw HTTP client and the HTTP fuzz test.
enum LoopbackTCP {
    /// A socket connected to `address` ("host:port"), with 200 ms send and receive
    /// timeouts so the caller checks its own deadline often. The caller closes it.
    /// Errors start with `what`.
    static func connected(to address: String, what: String) throws -> Int32 {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...])
        else { throw HarnessError("\(what): bad address \(address)") }
        let host = String(address[..<colon])
        let fd = socket(AF_INET, streamType, 0)
        guard fd >= 0 else { throw HarnessError("\(what): socket(): \(errorText())") }
        var slice = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &slice, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(port.bigEndian)
        guard inet_pton(AF_INET, host, &socketAddress.sin_addr) == 1 else {
            close(fd)
            throw HarnessError("\(what): not an IPv4 address: \(host)")
        }
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let error = errorText()
            close(fd)
            throw HarnessError("\(what): connect: \(error)")
        }
        return fd
    }

    private static var streamType: Int32 {
        #if canImport(Glibc)
            Int32(SOCK_STREAM.rawValue)
        #else
            SOCK_STREAM
        #endif
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// `/v1/kv` requests against one agent.
extension Agent {
    /// One sample of `GET /metrics` (the series with its labels, as printed), 0 when absent.
    func metric(_ series: String) async throws -> Double {
        let response = try await KVHTTP.request("GET", httpAddress, "/metrics")
        for line in response.text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)) ?? 0
        }
        return 0
    }

    /// `/v1/kv/{bucket}/{key}` with the query items in order, percent-encoding the
    /// key (the bucket is sent as given, so tests can send bad ones).
    static func kvTarget(bucket: String, key: String, query: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encodedKey = key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
        var target = "/v1/kv/\(bucket)/\(encodedKey)"
        if !query.isEmpty { target += "?" + query.map { "\($0.0)=\($0.1)" }.joined(separator: "&") }
        return target
    }

    func kvGet(
        _ key: String, bucket: String = "default", r: String? = nil, local: Bool = false,
        query extra: [(String, String)] = []
    ) async throws -> KVHTTPResponse {
        var query: [(String, String)] = []
        if let r { query.append(("r", r)) }
        if local { query.append(("replica", "local")) }
        query += extra
        return try await KVHTTP.request("GET", httpAddress, Self.kvTarget(bucket: bucket, key: key, query: query))
    }

    func kvPut(
        _ key: String, _ value: String, bucket: String = "default", w: String? = nil, context: String? = nil
    ) async throws -> KVHTTPResponse {
        try await kvPut(key, bytes: Array(value.utf8), bucket: bucket, w: w, context: context)
    }

    func kvPut(
        _ key: String, bytes: [UInt8], bucket: String = "default", w: String? = nil, context: String? = nil,
        query extra: [(String, String)] = []
    ) async throws -> KVHTTPResponse {
        var query: [(String, String)] = []
        if let w { query.append(("w", w)) }
        query += extra
        var headers: [String: String] = [:]
        if let context { headers["X-Chorus-Context"] = context }
        return try await KVHTTP.request(
            "PUT", httpAddress, Self.kvTarget(bucket: bucket, key: key, query: query), headers: headers, body: bytes)
    }

    func kvDelete(_ key: String, bucket: String = "default", w: String? = nil, context: String? = nil)
        async throws -> KVHTTPResponse
    {
        var query: [(String, String)] = []
        if let w { query.append(("w", w)) }
        var headers: [String: String] = [:]
        if let context { headers["X-Chorus-Context"] = context }
        return try await KVHTTP.request(
            "DELETE", httpAddress, Self.kvTarget(bucket: bucket, key: key, query: query), headers: headers)
    }
}

/// `chorus ring --format json`.
struct RingView: Decodable, Sendable, Equatable {
    struct Node: Decodable, Sendable, Equatable {
        var name: String
        var id: String
        var status: String
        var primary: Int
        var replica: Int
    }
    struct Key: Decodable, Sendable, Equatable {
        var bucket: String
        var key: String
        var partition: Int
        var replicas: [String]
        var fallbacks: [String]
    }
    var partitions: Int
    var n: Int
    var bucket: String
    var nodes: [Node]
    var key: Key?
}

extension AgentCluster {
    /// Starts `node1...nodeN` on hosts `firstHost...firstHost+N-1`, the others
    /// joining the first; lets several clusters share one suite's subnet.
    @discardableResult
    func startNodes(_ count: Int, firstHost: Int, extraArguments: [String] = []) throws -> [Agent] {
        try (0..<count).map { offset in
            try start(
                name: "node\(offset + 1)", hostIndex: firstHost + offset,
                join: offset == 0 ? [] : [gossipAddress(firstHost)], extraArguments: extraArguments)
        }
    }

    /// `chorus ring --format json [--key K] [--bucket B]` through `agent`.
    func ring(of agent: Agent, key: String? = nil, bucket: String? = nil) async throws -> RingView {
        var arguments = ["ring", "--format", "json", "--http-addr", agent.httpAddress]
        if let key { arguments += ["--key", key] }
        if let bucket { arguments += ["--bucket", bucket] }
        let result = try await command(arguments)
        try result.requireSuccess("ring of \(agent.name)")
        return try result.decode(RingView.self)
    }

    /// Waits until every agent answers a key-value request (its store is open and
    /// it serves `/v1/kv`; a local read of an absent key answers 404) and is a ring
    /// member: a node that joins a ring of N or more first fetches its partitions.
    func waitUntilServing(_ agents: [Agent]) async throws {
        for agent in agents {
            try await waitUntil("\(agent.name) serves /v1/kv") {
                let response = try await agent.kvGet("kv-harness-probe", local: true)
                return response.status == 404 || response.status == 200
            }
        }
        try await waitUntilRingSettled(agents)
    }
}
