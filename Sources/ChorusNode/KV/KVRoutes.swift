import ChorusCore
import Foundation
import NIOCore
import NIOHTTP1

/// `/v1/kv/{bucket}/{key}` (DESIGN §9): GET, PUT and DELETE, with `r`, `w` and
/// `timeout` parameters, the causal context in `X-Chorus-Context`, and
/// `?replica=local` for a read of only this node's copy.
enum KVRoutes {
    static let contextHeader = "X-Chorus-Context"

    static func route(_ request: APIRequest, kv: KVService, metrics: AgentMetrics, loop: EventLoop)
        -> EventLoopFuture<APIResponse>
    {
        let started = ContinuousClock.now
        let operation = request.method == .GET ? "get" : request.method == .DELETE ? "delete" : "put"
        return serve(request, kv: kv, loop: loop).map { response in
            metrics.request(operation, outcome: outcome(of: response.status), duration: ContinuousClock.now - started)
            return response
        }
    }

    /// The `outcome` label of a request's answer.
    static func outcome(of status: HTTPResponseStatus) -> String {
        switch status.code {
        case 200, 204, 300: "ok"
        case 404: "not_found"
        case 409: "conflict"
        case 503: "quorum_failed"
        case 413: "too_large"
        case 400..<500: "bad_request"
        default: "error"
        }
    }

    /// A path segment with its percent escapes decoded (nil when one is invalid). Most keys
    /// have none, and Foundation's decoding costs a few percent of a request's CPU.
    static func percentDecoded(_ segment: Substring) -> String? {
        segment.utf8.contains(UInt8(ascii: "%")) ? String(segment).removingPercentEncoding : String(segment)
    }

    private static func serve(_ request: APIRequest, kv: KVService, loop: EventLoop) -> EventLoopFuture<APIResponse> {
        let rest = request.path.dropFirst("/v1/kv/".count)
        guard let slash = rest.firstIndex(of: "/"),
            let bucket = Self.percentDecoded(rest[..<slash]),
            let key = Self.percentDecoded(rest[rest.index(after: slash)...]),
            !bucket.isEmpty, !key.isEmpty
        else {
            return loop.makeSucceededFuture(.error(.badRequest, "path must be /v1/kv/{bucket}/{key}"))
        }
        let operation: KVOperation
        switch request.method {
        case .GET: operation = .get
        case .PUT, .POST: operation = .put
        case .DELETE: operation = .delete
        default:
            return loop.makeSucceededFuture(.error(.methodNotAllowed, "\(request.method) not allowed on keys"))
        }
        for name in request.query.keys where !["r", "w", "timeout", "replica", "sloppy"].contains(name) {
            return loop.makeSucceededFuture(.error(.badRequest, "unknown parameter '\(name)'"))
        }
        if let replica = request.query["replica"] {
            guard replica == "local", operation == .get else {
                return loop.makeSucceededFuture(.error(.badRequest, "replica=local is for GET only"))
            }
            return kv.localRead(bucket: bucket, key: key, on: loop).map(response)
        }
        var timeout = kv.settings.requestTimeout
        if let text = request.query["timeout"] {
            guard let parsed = DurationParsing.parse(text) ?? Int(text).map({ Duration.milliseconds($0) }) else {
                return loop.makeSucceededFuture(
                    .error(.badRequest, "timeout must be a duration like 500ms or 2s, got '\(text)'"))
            }
            timeout = parsed
        }
        let milliseconds = timeout.nanosecondsClamped / 1_000_000
        let kvRequest = KVRequest(
            operation: operation, bucket: bucket, key: key, value: operation == .put ? request.body : [],
            context: request.headers.first(name: contextHeader) ?? "", r: request.query["r"] ?? "",
            w: request.query["w"] ?? "", sloppy: request.query["sloppy"] ?? "", timeoutMilliseconds: UInt32(clamping: max(0, milliseconds)))
        return kv.handle(kvRequest, on: loop).map(response)
    }

    static func response(_ kv: KVResponse) -> APIResponse {
        var response = APIResponse(
            status: HTTPResponseStatus(statusCode: Int(kv.status)), body: kv.body, contentType: kv.contentType)
        if !kv.context.isEmpty { response.headers.append((contextHeader, kv.context)) }
        return response
    }
}
