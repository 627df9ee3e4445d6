/// One frame on the agent-to-agent TCP channel: who sent it, when (checked
/// against the receiver's clock like datagrams, DESIGN §7), and the message.
public struct ClusterFrame: Hashable, Sendable {
    public var sender: NodeID
    public var sentAt: UInt64
    public var message: ClusterMessage

    public init(sender: NodeID, sentAt: UInt64, message: ClusterMessage) {
        self.sender = sender
        self.sentAt = sentAt
        self.message = message
    }
}

/// Binary encoding of `ClusterFrame`s, with the same primitives and the same
/// hostile-input rules as `SWIMCodec`: `sender(16) sentAt(8) type(u8) body`.
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

    public static func encode(_ frame: ClusterFrame) -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.nodeID(frame.sender)
        writer.u64(frame.sentAt)
        switch frame.message {
        case .pushPull(let joining, let state, let keyring):
            writer.u8(FrameType.pushPull.rawValue)
            writer.u8(joining ? 1 : 0)
            writer.members(state)
            writer.keyring(keyring)
        case .pushPullReply(let state, let keyring):
            writer.u8(FrameType.pushPullReply.rawValue)
            writer.members(state)
            writer.keyring(keyring)
        case .refused(let reason):
            writer.u8(FrameType.refused.rawValue)
            writer.string(reason)
        case .ping(let target):
            writer.u8(FrameType.ping.rawValue)
            writer.nodeID(target)
        case .pong:
            writer.u8(FrameType.pong.rawValue)
        case .keyOperation(let operation):
            writer.u8(FrameType.keyOperation.rawValue)
            writer.u8(operation.kind.rawValue)
            writer.string(operation.key)
            writer.u64(operation.version)
        case .keyOperationReply(let reply):
            writer.u8(FrameType.keyOperationReply.rawValue)
            writer.u8(reply.error == nil ? 0 : 1)
            if let error = reply.error { writer.string(error) }
            writer.keyring(reply.keyring)
        }
        return writer.bytes
    }

    /// Throws `WireError` on any malformed input; never traps.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ClusterFrame {
        var reader = SWIMCodec.Reader(bytes)
        let sender = try reader.nodeID()
        let sentAt = try reader.u64()
        let rawType = try reader.u8()
        guard let type = FrameType(rawValue: rawType) else { throw .unknownType(rawType) }
        let message: ClusterMessage
        switch type {
        case .pushPull:
            let joining = try reader.bool()
            let state = try reader.members()
            message = .pushPull(joining: joining, state: state, keyring: try reader.keyring())
        case .pushPullReply:
            let state = try reader.members()
            message = .pushPullReply(state: state, keyring: try reader.keyring())
        case .refused:
            message = .refused(reason: try reader.string())
        case .ping:
            message = .ping(target: try reader.nodeID())
        case .pong:
            message = .pong
        case .keyOperation:
            let rawKind = try reader.u8()
            guard let kind = KeyOperation.Kind(rawValue: rawKind) else {
                throw .invalidValue("key operation \(rawKind)")
            }
            let key = try reader.string()
            message = .keyOperation(KeyOperation(kind: kind, key: key, version: try reader.u64()))
        case .keyOperationReply:
            let error: String? = try reader.bool() ? try reader.string() : nil
            message = .keyOperationReply(KeyOperationReply(error: error, keyring: try reader.keyring()))
        }
        try reader.expectEnd()
        return ClusterFrame(sender: sender, sentAt: sentAt, message: message)
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
