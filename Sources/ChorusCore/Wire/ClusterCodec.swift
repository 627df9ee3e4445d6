/// Binary encoding of `ClusterMessage`s (carried in `SessionFrame`s), with the
/// same primitives and the same hostile-input rules as `SWIMCodec`: `type(u8) body`.
public enum ClusterCodec {
    /// Frame type numbers. Append only: the numbers are the protocol.
    public enum FrameType: UInt8, Sendable, CaseIterable {
        case pushPull = 1
        case pushPullReply = 2
        case refused = 3
        case ping = 4
        case pong = 5
        case keyOperation = 6
        case keyOperationReply = 7
        case replicaWrite = 8
        case replicaWriteReply = 9
        case replicaRead = 10
        case replicaReadReply = 11
        case forward = 12
        case forwardReply = 13
        case repairKeys = 14
        case repairKeysReply = 15
        case reapTombstone = 16
        case reapTombstoneReply = 17
        case partitionPage = 18
        case partitionPageReply = 19
    }

    /// Longest key or bucket name, in UTF-8 bytes (Riak and Cassandra allow more;
    /// keys this long are a modelling mistake, not data).
    public static let maxKeyBytes = 1024
    /// Largest object or value on the wire; the HTTP layer's value limit is lower.
    public static let maxObjectBytes = 64 << 20

    /// Most keys a keyring snapshot may carry.
    public static let maxKeys = 64

    /// Most entries one `repairKeysReply` carries (about 30 bytes each for short keys:
    /// well under the session's frame limit).
    public static let maxRepairEntries = 200_000

    /// Most objects one `partitionPageReply` carries; replies also stop near
    /// `partitionPageBytes` so a page stays well under the session's frame limit.
    public static let maxPageEntries = 10_000
    public static let partitionPageBytes = 4 << 20

    /// A message alone, as carried inside an established session.
    public static func encode(_ message: ClusterMessage) -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.clusterMessage(message)
        return writer.bytes
    }

    public static func decodeMessage(_ bytes: [UInt8]) throws(WireError) -> ClusterMessage {
        var reader = SWIMCodec.Reader(bytes)
        let message = try reader.clusterMessage()
        try reader.expectEnd()
        return message
    }
}

extension SWIMCodec.Writer {
    mutating func clusterMessage(_ message: ClusterMessage) {
        typealias FrameType = ClusterCodec.FrameType
        switch message {
        case .pushPull(let joining, let state, let snapshot, let parameters):
            u8(FrameType.pushPull.rawValue)
            u8(joining ? 1 : 0)
            members(state)
            self.keyring(snapshot)
            u32(parameters.partitions)
            u64(parameters.bucketsDigest)
        case .pushPullReply(let state, let snapshot, let parameters):
            u8(FrameType.pushPullReply.rawValue)
            members(state)
            self.keyring(snapshot)
            u32(parameters.partitions)
            u64(parameters.bucketsDigest)
        case .refused(let reason):
            u8(FrameType.refused.rawValue)
            string(reason)
        case .ping(let target):
            u8(FrameType.ping.rawValue)
            nodeID(target)
        case .pong:
            u8(FrameType.pong.rawValue)
        case .keyOperation(let operation):
            u8(FrameType.keyOperation.rawValue)
            u8(operation.kind.rawValue)
            string(operation.key)
            u64(operation.version)
        case .keyOperationReply(let reply):
            u8(FrameType.keyOperationReply.rawValue)
            u8(reply.error == nil ? 0 : 1)
            if let error = reply.error { string(error) }
            self.keyring(reply.keyring)
        case .replicaWrite(let write):
            u8(FrameType.replicaWrite.rawValue)
            blob(Array(write.bucket.utf8))
            blob(Array(write.key.utf8))
            blob(write.object)
            u8(write.hintFor == nil ? 0 : 1)
            if let hintFor = write.hintFor { nodeID(hintFor) }
        case .replicaWriteReply(let error):
            u8(FrameType.replicaWriteReply.rawValue)
            optionalText(error)
        case .replicaRead(let bucket, let key):
            u8(FrameType.replicaRead.rawValue)
            blob(Array(bucket.utf8))
            blob(Array(key.utf8))
        case .replicaReadReply(let object, let error):
            u8(FrameType.replicaReadReply.rawValue)
            u8(object == nil ? 0 : 1)
            if let object { blob(object) }
            optionalText(error)
        case .forward(let request):
            u8(FrameType.forward.rawValue)
            u8(request.operation.rawValue)
            blob(Array(request.bucket.utf8))
            blob(Array(request.key.utf8))
            blob(request.value)
            blob(Array(request.context.utf8))
            string(request.r)
            string(request.w)
            string(request.sloppy)
            u32(request.timeoutMilliseconds)
            u8(request.forwarded ? 1 : 0)
        case .forwardReply(let response):
            u8(FrameType.forwardReply.rawValue)
            u16(response.status)
            blob(Array(response.context.utf8))
            string(response.contentType)
            blob(response.body)
        case .repairKeys(let partition, let segmentCount, let segments):
            u8(FrameType.repairKeys.rawValue)
            u32(UInt32(clamping: partition))
            u32(UInt32(clamping: segmentCount))
            let kept = segments.prefix(TictacShape.maxSegmentCount)
            u32(UInt32(kept.count))
            for segment in kept { u32(UInt32(clamping: segment)) }
        case .repairKeysReply(let entries, let error):
            u8(FrameType.repairKeysReply.rawValue)
            let kept = entries.prefix(ClusterCodec.maxRepairEntries)
            u32(UInt32(kept.count))
            for entry in kept {
                blob(Array(entry.bucket.utf8.prefix(ClusterCodec.maxKeyBytes)))
                blob(Array(entry.key.utf8.prefix(ClusterCodec.maxKeyBytes)))
                u64(entry.digest)
            }
            optionalText(error)
        case .reapTombstone(let bucket, let key, let digest):
            u8(FrameType.reapTombstone.rawValue)
            blob(Array(bucket.utf8))
            blob(Array(key.utf8))
            u64(digest)
        case .reapTombstoneReply(let reaped, let error):
            u8(FrameType.reapTombstoneReply.rawValue)
            u8(reaped ? 1 : 0)
            optionalText(error)
        case .partitionPage(let partition, let after, let limit):
            u8(FrameType.partitionPage.rawValue)
            u32(UInt32(clamping: partition))
            u8(after == nil ? 0 : 1)
            if let after {
                blob(Array(after.bucket.utf8))
                blob(Array(after.key.utf8))
            }
            u32(UInt32(clamping: limit))
        case .partitionPageReply(let entries, let complete, let error):
            u8(FrameType.partitionPageReply.rawValue)
            let kept = entries.prefix(ClusterCodec.maxPageEntries)
            u32(UInt32(kept.count))
            for entry in kept {
                blob(Array(entry.bucket.utf8))
                blob(Array(entry.key.utf8))
                blob(entry.object)
            }
            u8(complete && kept.count == entries.count ? 1 : 0)
            optionalText(error)
        }
    }

    mutating func optionalText(_ text: String?) {
        u8(text == nil ? 0 : 1)
        if let text { blob(Array(text.utf8.prefix(4096))) }
    }
}

extension SWIMCodec.Reader {
    mutating func clusterMessage() throws(WireError) -> ClusterMessage {
        typealias FrameType = ClusterCodec.FrameType
        let rawType = try u8()
        guard let type = FrameType(rawValue: rawType) else { throw .unknownType(rawType) }
        let message: ClusterMessage
        switch type {
        case .pushPull:
            let joining = try bool()
            let state = try members()
            let snapshot = try keyring()
            message = .pushPull(joining: joining, state: state, keyring: snapshot, parameters: try parameters())
        case .pushPullReply:
            let state = try members()
            let snapshot = try keyring()
            message = .pushPullReply(state: state, keyring: snapshot, parameters: try parameters())
        case .refused:
            message = .refused(reason: try string())
        case .ping:
            message = .ping(target: try nodeID())
        case .pong:
            message = .pong
        case .keyOperation:
            let rawKind = try u8()
            guard let kind = KeyOperation.Kind(rawValue: rawKind) else {
                throw .invalidValue("key operation \(rawKind)")
            }
            let key = try string()
            message = .keyOperation(KeyOperation(kind: kind, key: key, version: try u64()))
        case .keyOperationReply:
            let error: String? = try bool() ? try string() : nil
            message = .keyOperationReply(KeyOperationReply(error: error, keyring: try keyring()))
        case .replicaWrite:
            let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
            let key = try text(maxBytes: ClusterCodec.maxKeyBytes)
            let object = try blob(maxBytes: ClusterCodec.maxObjectBytes)
            let hintFor = try bool() ? try nodeID() : nil
            message = .replicaWrite(ReplicaWrite(bucket: bucket, key: key, object: object, hintFor: hintFor))
        case .replicaWriteReply:
            message = .replicaWriteReply(error: try optionalText())
        case .replicaRead:
            let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
            message = .replicaRead(bucket: bucket, key: try text(maxBytes: ClusterCodec.maxKeyBytes))
        case .replicaReadReply:
            let object = try bool() ? try blob(maxBytes: ClusterCodec.maxObjectBytes) : nil
            message = .replicaReadReply(object: object, error: try optionalText())
        case .forward:
            let rawOperation = try u8()
            guard let operation = KVOperation(rawValue: rawOperation) else {
                throw .invalidValue("operation \(rawOperation)")
            }
            let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
            let key = try text(maxBytes: ClusterCodec.maxKeyBytes)
            let value = try blob(maxBytes: ClusterCodec.maxObjectBytes)
            let context = try text(maxBytes: 1 << 20)
            let r = try string()
            let w = try string()
            let sloppy = try string()
            let timeout = try u32()
            message = .forward(
                KVRequest(
                    operation: operation, bucket: bucket, key: key, value: value, context: context, r: r, w: w,
                    sloppy: sloppy, timeoutMilliseconds: timeout, forwarded: try bool()))
        case .forwardReply:
            let status = try u16()
            let context = try text(maxBytes: 1 << 20)
            let contentType = try string()
            message = .forwardReply(
                KVResponse(
                    status: status, context: context, contentType: contentType,
                    body: try blob(maxBytes: ClusterCodec.maxObjectBytes)))
        case .repairKeys:
            let partition = Int(try u32())
            let segmentCount = Int(try u32())
            let count = Int(try u32())
            guard count <= TictacShape.maxSegmentCount else { throw .tooLarge }
            guard count * 4 <= remaining else { throw .truncated }
            var segments: [Int] = []
            segments.reserveCapacity(count)
            for _ in 0..<count { segments.append(Int(try u32())) }
            message = .repairKeys(partition: partition, segmentCount: segmentCount, segments: segments)
        case .repairKeysReply:
            let count = Int(try u32())
            guard count <= ClusterCodec.maxRepairEntries else { throw .tooLarge }
            // Every entry takes at least its two lengths and its digest.
            guard count * 16 <= remaining else { throw .truncated }
            var entries: [RepairEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
                let key = try text(maxBytes: ClusterCodec.maxKeyBytes)
                entries.append(RepairEntry(bucket: bucket, key: key, digest: try u64()))
            }
            message = .repairKeysReply(entries: entries, error: try optionalText())
        case .reapTombstone:
            let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
            let key = try text(maxBytes: ClusterCodec.maxKeyBytes)
            message = .reapTombstone(bucket: bucket, key: key, digest: try u64())
        case .reapTombstoneReply:
            let reaped = try bool()
            message = .reapTombstoneReply(reaped: reaped, error: try optionalText())
        case .partitionPage:
            let partition = Int(try u32())
            var after: RepairKey?
            if try bool() {
                let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
                after = RepairKey(bucket: bucket, key: try text(maxBytes: ClusterCodec.maxKeyBytes))
            }
            message = .partitionPage(partition: partition, after: after, limit: Int(try u32()))
        case .partitionPageReply:
            let count = Int(try u32())
            guard count <= ClusterCodec.maxPageEntries else { throw .tooLarge }
            // Every entry takes at least its three lengths.
            guard count * 12 <= remaining else { throw .truncated }
            var entries: [PartitionEntry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let bucket = try text(maxBytes: ClusterCodec.maxKeyBytes)
                let key = try text(maxBytes: ClusterCodec.maxKeyBytes)
                entries.append(
                    PartitionEntry(bucket: bucket, key: key, object: try blob(maxBytes: ClusterCodec.maxObjectBytes)))
            }
            let complete = try bool()
            message = .partitionPageReply(entries: entries, complete: complete, error: try optionalText())
        }
        return message
    }

    /// A u32-length-prefixed UTF-8 string of at most `maxBytes` bytes.
    mutating func text(maxBytes: Int) throws(WireError) -> String {
        let bytes = try blob(maxBytes: maxBytes)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidValue("invalid UTF-8") }
        return text
    }

    mutating func parameters() throws(WireError) -> ClusterParameters {
        let partitions = try u32()
        return ClusterParameters(partitions: partitions, bucketsDigest: try u64())
    }

    mutating func optionalText() throws(WireError) -> String? {
        try bool() ? try text(maxBytes: 4096) : nil
    }
}

extension SWIMCodec.Writer {
    mutating func members(_ updates: [MemberUpdate]) {
        let count = min(updates.count, SWIMCodec.maxPushPullMembers)
        u32(UInt32(count))
        for update in updates.prefix(count) { self.update(update) }
    }

    mutating func keyring(_ snapshot: KeyringSnapshot) {
        u64(snapshot.version)
        string(snapshot.primary)
        let keys = snapshot.keys.prefix(ClusterCodec.maxKeys)
        u8(UInt8(keys.count))
        for key in keys { string(key) }
    }
}

extension SWIMCodec.Reader {
    mutating func members() throws(WireError) -> [MemberUpdate] {
        let count = Int(try u32())
        guard count <= SWIMCodec.maxPushPullMembers else { throw .tooLarge }
        var updates: [MemberUpdate] = []
        for _ in 0..<count { updates.append(try update()) }
        return updates
    }

    mutating func keyring() throws(WireError) -> KeyringSnapshot {
        let version = try u64()
        let primary = try string()
        let count = Int(try u8())
        guard count <= ClusterCodec.maxKeys else { throw .tooLarge }
        var keys: [String] = []
        for _ in 0..<count { keys.append(try string()) }
        return KeyringSnapshot(version: version, primary: primary, keys: keys)
    }
}
