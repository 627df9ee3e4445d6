/// The agent-to-agent TCP session (DESIGN §7): a handshake, then multiplexed
/// request/response frames.
///
/// Handshake: the initiator sends a `SessionHello` sealed with the cluster keyring;
/// the responder, having opened it (proof that the initiator holds a cluster key),
/// answers with its own hello sealed under the same key. Each hello carries an
/// ephemeral X25519 public key; both sides derive the session's keys from them, and
/// every later frame is sealed with those keys.
public struct SessionHello: Hashable, Sendable {
    /// Wire values: append only, the numbers are the protocol.
    public enum Role: UInt8, Sendable {
        case initiator = 1
        case responder = 2
    }

    public var role: Role
    public var node: NodeID
    public var publicKey: [UInt8]
    /// The sender's wall clock, nanoseconds since the Unix epoch: a captured hello
    /// is refused once it is older than the replay horizon.
    public var sentAt: UInt64

    public init(role: Role, node: NodeID, publicKey: [UInt8], sentAt: UInt64) {
        self.role = role
        self.node = node
        self.publicKey = publicKey
        self.sentAt = sentAt
    }

    static let magic: [UInt8] = Array("CHSESSION1".utf8)
    static let publicKeyBytes = 32

    public func encoded() -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.bytes.append(contentsOf: Self.magic)
        writer.u8(role.rawValue)
        writer.nodeID(node)
        writer.bytes.append(contentsOf: publicKey.prefix(Self.publicKeyBytes))
        writer.u64(sentAt)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = SWIMCodec.Reader(bytes)
        guard Array(try reader.take(Self.magic.count)) == Self.magic else { throw .invalidValue("not a session hello") }
        let rawRole = try reader.u8()
        guard let role = Role(rawValue: rawRole) else { throw .invalidValue("hello role \(rawRole)") }
        let node = try reader.nodeID()
        let publicKey = Array(try reader.take(Self.publicKeyBytes))
        let sentAt = try reader.u64()
        try reader.expectEnd()
        self.init(role: role, node: node, publicKey: publicKey, sentAt: sentAt)
    }
}

/// One multiplexed frame inside an established session: a request (answered by a
/// response with the same id), a response, or a one-way message.
public struct SessionFrame: Hashable, Sendable {
    /// Wire values: append only, the numbers are the protocol.
    public enum Kind: UInt8, Sendable {
        case request = 1
        case response = 2
        case oneWay = 3
    }

    public var kind: Kind
    public var id: UInt64
    public var message: ClusterMessage

    public init(kind: Kind, id: UInt64, message: ClusterMessage) {
        self.kind = kind
        self.id = id
        self.message = message
    }

    public func encoded() -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.u8(kind.rawValue)
        writer.u64(id)
        writer.clusterMessage(message)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(WireError) {
        switch try Self.decode(bytes) {
        case .frame(let frame): self = frame
        case .unsupported(_, _, let messageType): throw .unknownType(messageType)
        }
    }

    /// What `decode` found in an authenticated frame.
    public enum Decoded: Hashable, Sendable {
        case frame(SessionFrame)
        /// A well-formed frame whose message type this version does not know: a peer running
        /// a newer version sent a message added after this one (a rolling upgrade). The
        /// session answers it with a refusal instead of closing, which would fail every
        /// other request in flight on it.
        case unsupported(kind: Kind, id: UInt64, messageType: UInt8)
    }

    /// Decodes a frame; one whose message type is unknown (and only that) is `.unsupported`.
    /// Anything else malformed throws.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Decoded {
        var reader = SWIMCodec.Reader(bytes)
        let rawKind = try reader.u8()
        guard let kind = Kind(rawValue: rawKind) else { throw .unknownType(rawKind) }
        let id = try reader.u64()
        var peek = reader
        let messageType = try peek.u8()
        guard ClusterCodec.FrameType(rawValue: messageType) != nil else {
            return .unsupported(kind: kind, id: id, messageType: messageType)
        }
        let message = try reader.clusterMessage()
        try reader.expectEnd()
        return .frame(SessionFrame(kind: kind, id: id, message: message))
    }

    /// The answer to a request of type `messageType` this version does not know.
    public static func unsupportedReason(messageType: UInt8) -> String {
        "unsupported message type \(messageType) (this node runs an older version of chorus)"
    }
}
