/// When a tombstone may be physically removed (DESIGN §4, §6): the pure decision the
/// reaper of a key's primary replica takes before it asks every home replica to drop
/// the key.
///
/// A delete writes a tombstone with the causal context of what it deleted; while any
/// replica still holds an older live value, the tombstone is what makes a merge (read
/// repair, handoff, anti-entropy) drop that value. Removing the tombstone too early
/// lets the stale value come back ("resurrection"). So a tombstone is reaped only when
///
/// 1. it is older than the grace period (every value of the object is a tombstone and
///    the newest stamp is at least `grace` old): time for a down replica to return and
///    for hints and anti-entropy to deliver the delete; and
/// 2. every other home replica answered and holds the same tombstone: its copy is
///    deleted and causally equal to ours (each history descends the other, and the
///    same version digest), so none of them holds anything the tombstone does not
///    cover, and the conditional delete (`reapTombstone(digest)`) matches everywhere.
///
/// A replica with a newer or concurrent version, no copy, or no answer stops the reap;
/// the next pass, after anti-entropy has converged the copies, tries again.
public enum TombstoneReaping {
    public enum Decision: Hashable, Sendable, CustomStringConvertible {
        case reap
        /// Not every value is a tombstone (a write survived beside the delete).
        case notDeleted
        /// The newest tombstone is younger than the grace period.
        case withinGrace
        /// A home replica gave no copy, or an unreadable one.
        case replicaMissing
        /// A home replica holds a live value, or a version other than ours.
        case replicaDiffers

        public var description: String {
            switch self {
            case .reap: "reap"
            case .notDeleted: "not deleted"
            case .withinGrace: "within grace"
            case .replicaMissing: "a replica has no copy"
            case .replicaDiffers: "a replica holds another version"
            }
        }
    }

    /// Wall-clock nanoseconds of the newest stamp of `object` (nil when it has no values).
    public static func newestStamp(of object: StoredObject) -> UInt64? {
        object.values.map(\.stamp.timestamp.wallNanos).max()
    }

    /// Whether `object` is a tombstone past `grace` at `now` (wall-clock nanoseconds):
    /// the check a reaper makes locally before asking any replica.
    public static func isExpiredTombstone(_ object: StoredObject, now: UInt64, grace: UInt64) -> Bool {
        localDecision(object, now: now, grace: grace) == .reap
    }

    static func localDecision(_ object: StoredObject, now: UInt64, grace: UInt64) -> Decision {
        guard object.isDeleted, let newest = newestStamp(of: object) else { return .notDeleted }
        return now >= newest && now - newest >= grace ? .reap : .withinGrace
    }

    /// The full decision: `ours` is the primary's object, `copies` what every other home
    /// replica answered (nil: it holds nothing, or did not answer).
    public static func decide(ours: StoredObject, copies: [StoredObject?], now: UInt64, grace: UInt64) -> Decision {
        let local = localDecision(ours, now: now, grace: grace)
        guard local == .reap else { return local }
        let digest = VersionDigest.of(ours)
        for copy in copies {
            guard let copy, !copy.values.isEmpty else { return .replicaMissing }
            guard copy.isDeleted, ours.descends(copy), copy.descends(ours), VersionDigest.of(copy) == digest else {
                return .replicaDiffers
            }
        }
        return .reap
    }
}
