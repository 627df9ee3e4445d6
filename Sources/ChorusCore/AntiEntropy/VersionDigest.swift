/// The version digest of a stored object (DESIGN §6): a stable 64-bit summary of its
/// causal state, the "version" half of a tictac tree element (Riak's kv_index_tictactree
/// hashes each key with its vector clock in the same way).
///
/// It covers every entry of the object's DVVSet (replica id, counter, live values in dot
/// order) and every value's stamp, tombstone flag and bytes. Anonymous values, which a
/// DVVSet compares as a set, are digested one by one and sorted, so objects that are
/// equal (`==`) get equal digests whatever order their anonymous values arrived in.
/// `ObjectCodec.encode` is not used: it keeps anonymous values in arrival order.
///
/// The digest does not order versions: two different digests say only "different",
/// so repair exchanges and merges both objects (`RepairPlan`).
///
/// Append only: the bytes hashed here are part of the protocol between replicas.
public enum VersionDigest {
    static let seed: UInt64 = 0x6368_6F72_7573_5644  // "chorusVD"
    static let format: UInt8 = 1

    /// The digest of `object`.
    public static func of(_ object: StoredObject) -> UInt64 {
        var writer = SWIMCodec.Writer()
        writer.u8(format)
        writer.u32(UInt32(clamping: object.entries.count))
        for entry in object.entries {
            writer.nodeID(entry.replica)
            writer.u64(entry.counter)
            writer.u32(UInt32(clamping: entry.values.count))
            for value in entry.values {
                writer.u64(of(value))
            }
        }
        let anonymous = object.anonymous.map(of).sorted()
        writer.u32(UInt32(clamping: anonymous.count))
        for digest in anonymous {
            writer.u64(digest)
        }
        return StableHash.hash(writer.bytes, seed: seed)
    }

    /// The digest of one value: flags, stamp, then the bytes.
    public static func of(_ value: StoredValue) -> UInt64 {
        var writer = SWIMCodec.Writer()
        writer.u8(value.isTombstone ? 1 : 0)
        writer.u64(value.stamp.timestamp.wallNanos)
        writer.u32(value.stamp.timestamp.logical)
        writer.nodeID(value.stamp.node)
        writer.u64(UInt64(value.data.count))
        writer.bytes.append(contentsOf: value.data)
        return StableHash.hash(writer.bytes, seed: seed)
    }
}

extension TictacTree {
    /// The version digest of `object` (`VersionDigest.of`), the digest its key is
    /// inserted into the tree with.
    public static func versionDigest(of object: StoredObject) -> UInt64 {
        VersionDigest.of(object)
    }
}
