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
    }

    /// Most keys a keyring snapshot may carry.
    public static let maxKeys = 64

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
        case .pushPull(let joining, let state, let snapshot):
            u8(FrameType.pushPull.rawValue)
            u8(joining ? 1 : 0)
            members(state)
            self.keyring(snapshot)
        case .pushPullReply(let state, let snapshot):
            u8(FrameType.pushPullReply.rawValue)
            members(state)
            self.keyring(snapshot)
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
        }
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
            message = .pushPull(joining: joining, state: state, keyring: try keyring())
        case .pushPullReply:
            let state = try members()
            message = .pushPullReply(state: state, keyring: try keyring())
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
        }
        return message
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
