/// What a node knows about one member of the cluster (itself included).
public struct Member: Hashable, Sendable {
    public var id: NodeID
    public var name: String
    /// Gossip address: UDP for probes and gossip, TCP on the same port for push-pull.
    public var address: Endpoint
    public var incarnation: UInt64
    public var status: MemberStatus
    /// Operator-defined key=value tags, plus service ports (e.g. `http=127.0.0.1:7480`).
    public var tags: [String: String]

    public init(
        id: NodeID, name: String, address: Endpoint, incarnation: UInt64, status: MemberStatus,
        tags: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.tags = tags
    }

    /// This member's state as a gossip update asserted by `source`.
    public func update(from source: NodeID) -> MemberUpdate {
        MemberUpdate(
            id: id, name: name, address: address, incarnation: incarnation, status: status, tags: tags,
            source: source)
    }
}

/// A gossiped assertion about one member's state (SWIM §4.2 alive/suspect/confirm).
public struct MemberUpdate: Hashable, Sendable {
    public var id: NodeID
    public var name: String
    public var address: Endpoint
    public var incarnation: UInt64
    public var status: MemberStatus
    public var tags: [String: String]
    /// The node that asserts this state; suspicions from distinct sources are the
    /// independent confirmations of Lifeguard §3.2.
    public var source: NodeID

    public init(
        id: NodeID, name: String, address: Endpoint, incarnation: UInt64, status: MemberStatus,
        tags: [String: String], source: NodeID
    ) {
        self.id = id
        self.name = name
        self.address = address
        self.incarnation = incarnation
        self.status = status
        self.tags = tags
        self.source = source
    }

    public var member: Member {
        Member(id: id, name: name, address: address, incarnation: incarnation, status: status, tags: tags)
    }
}
