// Durable hints for hinted handoff (DESIGN §5): a write meant for a replica that was down, kept
// by the node that took it in the replica's place until it can be delivered.

/// Hints keyed by `(target, bucket, key)`: the value a node holds on behalf of the replica
/// `target` (a node ID). At most one hint per target and key: a newer write for the same target
/// merges into the stored hint through `updateHint`'s transform.
///
/// Writes share the object store's write path: a completion fires only once the write is durable
/// per the store's `SyncPolicy`, and hint writes batch with object writes in one commit.
/// The total size of all hints is bounded by `StoreLimits.maxHintBytes`.
public protocol HintStore: Sendable {
    /// Atomically read-modify-write the hint for `target`. `transform` runs on the writer thread,
    /// inside the transaction, with the stored hint value (nil when absent); it returns the value
    /// to store, or nil for "no change". A new hint gets `created = updated = now`; an existing one
    /// keeps its `created` and gets `updated = now`.
    ///
    /// `completion` gets the hint value stored after the operation (the unchanged value when the
    /// transform returned nil) once the commit is durable. When storing the hint would take the
    /// total past `StoreLimits.maxHintBytes` it gets `StoreError.hintsFull` instead, and nothing of
    /// that hint changes; the rest of its commit group is not affected.
    func updateHint(
        target: String, bucket: String, key: String, now: UInt64,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?,
        completion: @escaping @Sendable (Result<[UInt8]?, StoreError>) -> Void)

    /// Up to `limit` hints for `target`, ordered by `(bucket, key)`, strictly after `after` (nil:
    /// from the start). Pass the last hint's `objectKey` for the next page; an empty page means
    /// there are no more.
    func hints(target: String, after: ObjectKey?, limit: Int) throws(StoreError) -> [Hint]

    /// Every target's hint for one key, ordered by target (a node answering reads for keys it
    /// holds hints for).
    func hints(bucket: String, key: String) throws(StoreError) -> [Hint]

    /// Deletes the hint only if its stored value still equals `expected` (the value that was
    /// delivered): a hint that merged a newer write meanwhile stays for the next delivery.
    /// `completion` gets whether it deleted, once the removal is durable.
    func deleteHint(
        target: String, bucket: String, key: String, ifValue expected: [UInt8],
        completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void)

    /// Pending hints per target, ordered by target.
    func hintSummary() throws(StoreError) -> [HintSummary]

    /// Deletes every hint first written before `olderThan` (wall-clock nanoseconds, the scale of
    /// `now`); `completion` gets how many, once the removal is durable.
    func expireHints(olderThan: UInt64, completion: @escaping @Sendable (Result<Int, StoreError>) -> Void)

    /// The total `bytes` of all committed hints (for metrics).
    var hintBytes: Int { get }
}

/// One stored hint.
public struct Hint: Hashable, Sendable {
    /// The node the hint is for.
    public var target: String
    public var bucket: String
    public var key: String
    public var value: [UInt8]
    /// The `now` of the write that created the hint (wall-clock nanoseconds).
    public var created: UInt64
    /// The `now` of the latest write that changed it.
    public var updated: UInt64
    /// The size counted against `StoreLimits.maxHintBytes`: the value plus the UTF-8 bytes of
    /// target, bucket and key.
    public var bytes: Int

    public init(
        target: String, bucket: String, key: String, value: [UInt8], created: UInt64, updated: UInt64, bytes: Int
    ) {
        self.target = target
        self.bucket = bucket
        self.key = key
        self.value = value
        self.created = created
        self.updated = updated
        self.bytes = bytes
    }

    /// The hint's key: the cursor of `hints(target:after:limit:)`.
    public var objectKey: ObjectKey { ObjectKey(bucket: bucket, key: key) }

    /// What `bytes` is for a hint of `value` for `target`, `bucket`, `key`.
    public static func size(target: String, bucket: String, key: String, value: [UInt8]) -> Int {
        value.count + target.utf8.count + bucket.utf8.count + key.utf8.count
    }
}

/// The pending hints for one target.
public struct HintSummary: Hashable, Sendable {
    public var target: String
    /// Number of hints.
    public var count: Int
    /// Sum of their `bytes`.
    public var bytes: Int
    /// The earliest `created` among them.
    public var oldest: UInt64

    public init(target: String, count: Int, bytes: Int, oldest: UInt64) {
        self.target = target
        self.count = count
        self.bytes = bytes
        self.oldest = oldest
    }
}

extension HintStore {
    /// `updateHint` for async callers: returns the stored hint value once durable.
    @discardableResult
    public func updateHint(
        target: String, bucket: String, key: String, now: UInt64,
        _ transform: @escaping @Sendable ([UInt8]?) -> [UInt8]?
    ) async throws(StoreError) -> [UInt8]? {
        let result: Result<[UInt8]?, StoreError> = await withCheckedContinuation { continuation in
            updateHint(target: target, bucket: bucket, key: key, now: now, transform) {
                continuation.resume(returning: $0)
            }
        }
        return try result.get()
    }

    /// Store `value` as the hint unconditionally; returns once durable.
    public func putHint(target: String, bucket: String, key: String, now: UInt64, value: [UInt8])
        async throws(StoreError)
    {
        try await updateHint(target: target, bucket: bucket, key: key, now: now) { _ in value }
    }

    /// `deleteHint` for async callers: whether it deleted, once durable.
    @discardableResult
    public func deleteHint(target: String, bucket: String, key: String, ifValue expected: [UInt8])
        async throws(StoreError) -> Bool
    {
        let result: Result<Bool, StoreError> = await withCheckedContinuation { continuation in
            deleteHint(target: target, bucket: bucket, key: key, ifValue: expected) {
                continuation.resume(returning: $0)
            }
        }
        return try result.get()
    }

    /// `expireHints` for async callers: how many were deleted, once durable.
    @discardableResult
    public func expireHints(olderThan: UInt64) async throws(StoreError) -> Int {
        let result: Result<Int, StoreError> = await withCheckedContinuation { continuation in
            expireHints(olderThan: olderThan) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Every hint for `target`, read in pages of `pageSize`.
    public func hints(target: String, pageSize: Int = 1000) throws(StoreError) -> [Hint] {
        var all: [Hint] = []
        var cursor: ObjectKey? = nil
        while true {
            let page = try hints(target: target, after: cursor, limit: pageSize)
            all.append(contentsOf: page)
            guard let last = page.last, page.count == max(1, pageSize) else { return all }
            cursor = last.objectKey
        }
    }
}
