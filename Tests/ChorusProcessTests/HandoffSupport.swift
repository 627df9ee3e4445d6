import Foundation

/// Helpers for the sloppy-quorum, hinted-handoff and read-repair process tests: `chorus
/// hints`, key placement through `/v1/ring`, `/metrics` samples, graceful stops and
/// bounded-width parallel requests.

/// One element of `chorus hints --format json`: the hints one node holds for one target.
struct HintView: Decodable, Sendable, Equatable {
    var target: String
    var id: String
    var status: String
    var count: Int
    var bytes: Int
    var oldest: String
    var oldestAgeSeconds: Double
    var lastError: String?

    enum CodingKeys: String, CodingKey {
        case target, id, status, count, bytes, oldest
        case oldestAgeSeconds = "oldest_age_seconds"
        case lastError = "last_error"
    }

    static func summary(_ hints: [HintView]) -> String {
        hints.isEmpty
            ? "none"
            : hints.map { "\($0.target)(\($0.status))=\($0.count)" + ($0.lastError.map { " last_error=\($0)" } ?? "") }
                .joined(separator: " ")
    }
}

/// The 503 body of a write whose quorum was not met, with the sloppy-quorum fields.
struct QuorumFailureBody: Decodable, Sendable {
    var error: String
    var acknowledged: Int
    var required: Int
    var replicas: Int
    var hinted: Int?
    var failures: [String]
}

extension AgentCluster {
    /// `chorus hints --format json` against `agent`'s HTTP API.
    func hints(of agent: Agent) async throws -> [HintView] {
        let result = try await command(["hints", "--format", "json", "--http-addr", agent.httpAddress])
        try result.requireSuccess("hints of \(agent.name)")
        return try result.decode([HintView].self)
    }

    /// Hint counts by target name, summed over `holders`, and each holder's listing.
    func hintCounts(on holders: [Agent]) async throws -> (byTarget: [String: Int], listings: [String: [HintView]]) {
        var byTarget: [String: Int] = [:]
        var listings: [String: [HintView]] = [:]
        for holder in holders {
            let listing = try await hints(of: holder)
            listings[holder.name] = listing
            for hint in listing { byTarget[hint.target, default: 0] += hint.count }
        }
        return (byTarget, listings)
    }

    /// Waits until `chorus hints` is an empty array on every one of `holders`.
    func waitUntilNoHints(on holders: [Agent], deadline: Duration = .seconds(120)) async throws {
        var last = ""
        do {
            try await waitUntil("no node holds hints any more", deadline: deadline) {
                let (_, listings) = try await hintCounts(on: holders)
                last = holders.map { "\($0.name): \(HintView.summary(listings[$0.name] ?? []))" }.joined(
                    separator: "; ")
                return listings.values.allSatisfy(\.isEmpty)
            }
        } catch {
            throw HarnessError("\(error); last listings: \(last)")
        }
    }

    /// SIGTERM to each of `victims`, waits for their clean exits and until every one
    /// of `observers` shows them `stopped`.
    func stopGracefully(_ victims: [Agent], seenBy observers: [Agent]) async throws {
        for victim in victims { terminate(victim) }
        for victim in victims {
            let exit = try await waitForExit(victim)
            guard exit.isCleanExit else { throw HarnessError("\(victim.name) exited with \(exit) on SIGTERM") }
        }
        let names = victims.map(\.name)
        try await waitForViews("\(names) are stopped in every view", of: observers) { _, members in
            names.allSatisfy { members.named($0)?.status == "stopped" }
        }
    }

    /// `GET /metrics` of `agent` (Prometheus text).
    func metricsText(of agent: Agent) async throws -> String {
        let response = try await KVHTTP.request("GET", agent.httpAddress, "/metrics")
        guard response.status == 200 else { throw HarnessError("GET /metrics of \(agent.name): \(response)") }
        return response.text
    }

    /// The sum of one metric over `agents` (see ``Metrics/value(_:_:labels:)``).
    func metricSum(_ name: String, labels: [String: String] = [:], over agents: [Agent]) async throws -> Double {
        var total = 0.0
        for agent in agents { total += Metrics.value(try await metricsText(of: agent), name, labels: labels) }
        return total
    }
}

enum Metrics {
    /// The sum of every sample of `name` whose labels include `labels`, in a Prometheus
    /// text exposition; 0 when there is none.
    static func value(_ text: String, _ name: String, labels wanted: [String: String] = [:]) -> Double {
        var total = 0.0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let sample = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space].trimmingCharacters(in: .whitespaces)
            var seriesName = series
            var labels: [String: String] = [:]
            if let brace = series.firstIndex(of: "{"), series.hasSuffix("}") {
                seriesName = String(series[..<brace])
                let body = series[series.index(after: brace)..<series.index(before: series.endIndex)]
                for pair in body.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[parts[0].trimmingCharacters(in: .whitespaces)] =
                        parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
                }
            }
            guard seriesName == name, wanted.allSatisfy({ labels[$0.key] == $0.value }) else { continue }
            total += sample
        }
        return total
    }
}

/// Requests that do not capture an ``Agent`` (addresses are plain strings), so they can
/// run in parallel.
enum HandoffRequests {
    /// Where `key` lives, from `GET /v1/ring?bucket=B&key=K` (what `chorus ring --key K
    /// --format json` prints), through the agent at `address`.
    static func placement(of key: String, bucket: String = "default", via address: String) async throws
        -> RingView.Key
    {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
        let response = try await KVHTTP.request("GET", address, "/v1/ring?bucket=\(bucket)&key=\(encoded)")
        guard response.status == 200 else { throw HarnessError("GET /v1/ring for \(key) via \(address): \(response)") }
        let ring = try response.decode(RingView.self)
        guard let placement = ring.key else {
            throw HarnessError("ring for \(key) via \(address) shows no key: \(response)")
        }
        return placement
    }

    static func put(_ key: String, _ value: String, w: String, via address: String) async throws -> KVHTTPResponse {
        try await KVHTTP.request(
            "PUT", address, Agent.kvTarget(bucket: "default", key: key, query: [("w", w)]), body: Array(value.utf8))
    }

    static func localGet(_ key: String, via address: String) async throws -> KVHTTPResponse {
        try await KVHTTP.request(
            "GET", address, Agent.kvTarget(bucket: "default", key: key, query: [("replica", "local")]))
    }

    /// `transform` over `items`, at most `width` at a time; results in the order of `items`.
    static func parallelMap<T: Sendable, R: Sendable>(
        _ items: [T], width: Int = 6, _ transform: @escaping @Sendable (T) async throws -> R
    ) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: items.count)
            var next = 0
            while next < min(width, items.count) {
                let (index, item) = (next, items[next])
                group.addTask { (index, try await transform(item)) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < items.count {
                    let (index, item) = (next, items[next])
                    group.addTask { (index, try await transform(item)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}
