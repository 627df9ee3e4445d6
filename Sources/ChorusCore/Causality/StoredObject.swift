/// Everything a replica stores for one key: the siblings, tombstones included, with
/// their causal history (DESIGN §4).
public typealias StoredObject = DVVSet<StoredValue>

extension DVVSet where Value == StoredValue {
    /// Coordinator write of `data` by a client that read `context` (empty for a blind
    /// write): supersedes what the context covers and takes the next dot of `replica`.
    public mutating func put(_ data: [UInt8], context: VersionVector, replica: NodeID, stamp: LWWStamp) {
        update(.new(StoredValue(data: data, stamp: stamp), context: context), replica: replica)
    }

    /// Coordinator delete by a client that read `context`: a tombstone that supersedes
    /// what the context covers, takes the next dot of `replica`, and keeps the causal
    /// history so replicas that missed the delete cannot resurrect the data. Writes the
    /// reader had not seen survive as siblings of the tombstone.
    public mutating func delete(context: VersionVector, replica: NodeID, stamp: LWWStamp) {
        update(.new(.tombstone(stamp: stamp), context: context), replica: replica)
    }

    /// `sync` in place: the merge of two replicas' copies in a `siblings` bucket
    /// (`lww` buckets merge with `lwwMerged`, see `DVVSet.lww`).
    public mutating func merge(_ other: StoredObject) {
        formSync(other)
    }

    /// `sync` as a new object.
    public func merged(_ other: StoredObject) -> StoredObject {
        sync(other)
    }

    /// The live values that are not tombstones: what a read returns.
    public var visibleValues: [StoredValue] {
        values.filter { !$0.isTombstone }
    }

    /// There are siblings and every one is a tombstone (a read answers 404). An object
    /// with no values at all is absent, not deleted.
    public var isDeleted: Bool {
        let values = values
        return !values.isEmpty && values.allSatisfy(\.isTombstone)
    }

    /// Live values, tombstones included: what the shell's sibling caps count.
    public var siblingCount: Int { size }

    /// Last-writer-wins resolution for `conflicts = "lww"` buckets: keeps the single
    /// value with the greatest `LWWStamp`, tombstone or not, with the full history.
    public func lwwResolved() -> StoredObject {
        lww(StoredValue.lwwWins(_:over:))
    }

    /// The merge of two replicas' copies in an `lww` bucket: the value with the greatest
    /// stamp among both, both histories. Commutative, associative and idempotent (an
    /// LWW register), so read repair and handoff may apply it in any order.
    public func lwwMerged(_ other: StoredObject) -> StoredObject {
        lwwMerged(other, StoredValue.lwwWins(_:over:))
    }

    /// Coordinator write in an `lww` bucket: `data` gets the next dot of `replica` and
    /// the context joins the history, then the greatest stamp among the new value and
    /// the stored ones wins. Nothing is superseded for causal reasons alone: the shell
    /// should witness the stored stamps in its clock before minting `stamp`, so that a
    /// write made after a read wins over what was read.
    public mutating func lwwPut(_ data: [UInt8], context: VersionVector, replica: NodeID, stamp: LWWStamp) {
        self = updated(.new(StoredValue(data: data, stamp: stamp), context: context), replica: replica)
            .lwwMerged(self)
    }

    /// Coordinator delete in an `lww` bucket: a tombstone that wins if its stamp is the
    /// greatest (see `lwwPut`).
    public mutating func lwwDelete(context: VersionVector, replica: NodeID, stamp: LWWStamp) {
        self = updated(.new(.tombstone(stamp: stamp), context: context), replica: replica).lwwMerged(self)
    }
}
