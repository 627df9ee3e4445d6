import Testing

@testable import ChorusCore

/// The reaper's decision (`TombstoneReaping`) and its session frames
/// (`reapTombstone`, `reapTombstoneReply`, types 16 and 17).
@Suite struct TombstoneReapingTests {
    static let second: UInt64 = 1_000_000_000
    static let grace = 60 * second

    /// A value written on replica 1 at wall time 1 s, then deleted with its context
    /// at `deletedAt`.
    static func deleted(at deletedAt: UInt64 = 10 * second) -> (written: StoredObject, deleted: StoredObject) {
        var object = StoredObject()
        object.put(Array("v".utf8), context: VersionVector(), replica: causalNode(1), stamp: causalStamp(second))
        let written = object
        object.delete(context: object.join, replica: causalNode(1), stamp: causalStamp(deletedAt))
        return (written, object)
    }

    @Test func graceNotReachedKeepsTheTombstone() {
        let (_, tombstone) = Self.deleted()
        let now = 10 * Self.second + Self.grace - 1
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [tombstone, tombstone], now: now, grace: Self.grace)
                == .withinGrace)
        #expect(!TombstoneReaping.isExpiredTombstone(tombstone, now: now, grace: Self.grace))
        // A clock behind the stamp never reaps.
        #expect(!TombstoneReaping.isExpiredTombstone(tombstone, now: 0, grace: 0))
    }

    @Test func everyReplicaHoldingTheTombstoneReaps() {
        let (_, tombstone) = Self.deleted()
        let now = 10 * Self.second + Self.grace
        #expect(TombstoneReaping.isExpiredTombstone(tombstone, now: now, grace: Self.grace))
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [tombstone, tombstone], now: now, grace: Self.grace)
                == .reap)
        // A replica's copy that went through a merge is the same tombstone.
        #expect(
            TombstoneReaping.decide(
                ours: tombstone, copies: [tombstone.merged(Self.deleted().written)], now: now, grace: Self.grace)
                == .reap)
    }

    @Test func aReplicaMissingTheTombstoneStopsTheReap() {
        let (written, tombstone) = Self.deleted()
        let now = 100 * Self.second + Self.grace
        // No copy at all (or no answer).
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [tombstone, nil], now: now, grace: Self.grace)
                == .replicaMissing)
        // Still the value the delete superseded.
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [written, tombstone], now: now, grace: Self.grace)
                == .replicaDiffers)
    }

    @Test func aReplicaHoldingANewerValueStopsTheReap() {
        let (_, tombstone) = Self.deleted()
        let now = 100 * Self.second + Self.grace
        var rewritten = tombstone
        rewritten.put(
            Array("back".utf8), context: tombstone.join, replica: causalNode(2), stamp: causalStamp(20 * Self.second))
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [rewritten], now: now, grace: Self.grace)
                == .replicaDiffers)
        // A newer delete elsewhere: another version, not reaped until the copies converge.
        var redeleted = tombstone
        redeleted.delete(context: tombstone.join, replica: causalNode(2), stamp: causalStamp(20 * Self.second))
        #expect(
            TombstoneReaping.decide(ours: tombstone, copies: [redeleted], now: now, grace: Self.grace)
                == .replicaDiffers)
        // A concurrent write kept beside our tombstone: ours is not a pure tombstone.
        var concurrent = tombstone
        concurrent.put(
            Array("c".utf8), context: VersionVector(), replica: causalNode(3), stamp: causalStamp(Self.second))
        #expect(
            TombstoneReaping.decide(ours: concurrent, copies: [concurrent], now: now, grace: Self.grace)
                == .notDeleted)
    }

    @Test func reapFramesRoundTrip() throws {
        let messages: [ClusterMessage] = [
            .reapTombstone(bucket: "default", key: "k", digest: 0),
            .reapTombstone(bucket: "b", key: "nœud-😀", digest: .max),
            .reapTombstoneReply(reaped: true, error: nil),
            .reapTombstoneReply(reaped: false, error: nil),
            .reapTombstoneReply(reaped: false, error: "store closed"),
        ]
        for message in messages {
            #expect(try ClusterCodec.decodeMessage(ClusterCodec.encode(message)) == message)
        }
        #expect(ClusterCodec.FrameType.reapTombstone.rawValue == 16)
        #expect(ClusterCodec.FrameType.reapTombstoneReply.rawValue == 17)
        // Truncated: the digest is missing.
        var bytes = ClusterCodec.encode(.reapTombstone(bucket: "b", key: "k", digest: 7))
        bytes.removeLast()
        #expect(throws: WireError.truncated) { try ClusterCodec.decodeMessage(bytes) }
    }
}
