import ChorusCore
import Foundation

/// Pending hints for one target, as `GET /v1/hints` and `chorus hints` show them.
public struct HintTargetView: Codable, Sendable, Equatable {
    /// The target's name (its id when this node no longer knows it).
    public var target: String
    public var id: String
    /// The target's state in this node's view.
    public var status: String
    public var count: Int
    public var bytes: Int
    /// When the oldest pending hint was written (RFC 3339, UTC).
    public var oldest: String
    public var oldestAgeSeconds: Double
    /// Why the last delivery attempt failed, if it did.
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case target, id, status, count, bytes, oldest
        case oldestAgeSeconds = "oldest_age_seconds"
        case lastError = "last_error"
    }
}

extension HintedHandoff {
    /// Pending hints per target, oldest first within the store's order by target.
    func summary() throws -> [HintTargetView] {
        let view = membership.view
        let now = WallClock.nanoseconds()
        let formatter = ISO8601DateFormatter()
        return try store.hintSummary().map { entry in
            let member = NodeID(hex: entry.target).flatMap { view.members[$0] }
            return HintTargetView(
                target: member?.name ?? entry.target, id: entry.target,
                status: member?.status.description ?? "unknown", count: entry.count, bytes: entry.bytes,
                oldest: formatter.string(from: Date(timeIntervalSince1970: Double(entry.oldest) / 1e9)),
                oldestAgeSeconds: now > entry.oldest ? Double(now - entry.oldest) / 1e9 : 0,
                lastError: lastError(for: entry.target))
        }
    }
}
