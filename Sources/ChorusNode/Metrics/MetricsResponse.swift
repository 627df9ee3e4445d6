extension APIResponse {
    /// The Prometheus text exposition content type.
    static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// `GET /metrics`: every metric of `metrics`, in the Prometheus text format.
    static func metrics(_ metrics: AgentMetrics) -> APIResponse {
        APIResponse(status: .ok, body: Array(metrics.exposition().utf8), contentType: prometheusContentType)
    }
}
