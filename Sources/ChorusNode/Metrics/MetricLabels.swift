/// The closed sets of label values the agent's metrics accept. A value outside its set is
/// recorded as ``other``, so a bug or an unexpected input can never grow the number of time
/// series without bound. Adding a value here is the only way to add a series.
enum MetricLabels {
    /// What an out-of-set value is recorded as.
    static let other = "other"

    /// `operation` of `chorus_requests_total` and `chorus_request_duration_seconds`: client
    /// key-value requests.
    static let operations: [String] = ["get", "put", "delete"]

    /// `outcome` of `chorus_requests_total`: `ok` (answered 2xx), `not_found`, `conflict` (a
    /// precondition or context check failed), `quorum_failed` (too few replicas answered),
    /// `bad_request`, `too_large` (value over `store.max_value_bytes`), `error` (anything else).
    static let requestOutcomes: [String] = [
        "ok", "not_found", "conflict", "quorum_failed", "bad_request", "too_large", "error",
    ]

    /// `kind` of `chorus_replica_requests_total`: requests a coordinator sends to replicas.
    static let replicaKinds: [String] = ["write", "read"]

    /// `outcome` of `chorus_replica_requests_total`.
    static let replicaOutcomes: [String] = ["ok", "error", "timeout"]

    /// `reason` of `chorus_hints_dropped_total`: `full` (the hint store is past its size bound),
    /// `disabled` (hinted handoff is off), `error` (storing the hint failed).
    static let hintDropReasons: [String] = ["full", "disabled", "error"]

    /// `status` of `chorus_members`: SWIM member states (`MemberStatus.description`).
    static let memberStatuses: [String] = ["alive", "suspect", "dead", "stopped", "left"]

    /// `direction` of `chorus_datagrams_total`.
    static let directions: [String] = ["in", "out"]

    /// `reason` of `chorus_datagrams_dropped_total` and `chorus_tcp_refused_total`: the sealer's
    /// refusals (`Sealer.OpenError.reason`) and the transports' own checks.
    static let dropReasons: [String] = [
        "too_short", "bad_magic", "bad_version", "unknown_key", "auth_failed", "oversize", "malformed", "replay",
        "stale", "unexpected", "unsupported",
    ]

    /// `outcome` of `chorus_antientropy_exchanges_total`: `equal` (the trees matched), `repaired`
    /// (segments differed and their repair finished), `failed` (lost datagrams, a refusal or a
    /// failed repair).
    static let antiEntropyOutcomes: [String] = ["equal", "repaired", "failed"]

    /// `transport` of `chorus_antientropy_bytes_total`: summaries over UDP, repair over TCP.
    static let antiEntropyTransports: [String] = ["udp", "tcp"]

    /// At most this many `target` series of `chorus_hints_pending`; the targets with fewer hints
    /// beyond it are summed into `target="other"`.
    static let maxHintTargets = 64

    /// `value` when it is one of `allowed`, else ``other``.
    static func bounded(_ value: String, to allowed: [String]) -> String {
        allowed.contains(value) ? value : other
    }
}
