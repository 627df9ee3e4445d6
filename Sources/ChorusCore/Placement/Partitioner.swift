/// Maps keys to one of Q fixed partitions (DESIGN §3): partition = stable 64-bit
/// hash of (bucket, key) mod Q. Q is chosen at cluster creation and never changes,
/// so a key's partition never changes; only a partition's owners do.
public struct Partitioner: Hashable, Sendable {
    /// Default partition count: enough for even shares on clusters of up to a few
    /// hundred nodes (Riak's ring_creation_size guidance: ~10 or more per node).
    public static let defaultPartitionCount = 1024

    public let partitionCount: Int

    public init(partitionCount: Int = Partitioner.defaultPartitionCount) {
        precondition(partitionCount > 0, "partition count must be positive")
        self.partitionCount = partitionCount
    }

    /// The partition of `key` in `bucket`. The bucket's length is hashed in, so
    /// ("ab", "c") and ("a", "bc") differ.
    public func partition(bucket: String, key: String) -> Int {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(bucket.utf8.count + key.utf8.count + 4)
        let length = UInt32(truncatingIfNeeded: bucket.utf8.count)
        bytes.append(contentsOf: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> $0) })
        bytes.append(contentsOf: bucket.utf8)
        bytes.append(contentsOf: key.utf8)
        return Int(StableHash.hash(bytes) % UInt64(partitionCount))
    }
}
