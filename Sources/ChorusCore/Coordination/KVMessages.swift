/// Client operations on keys, as forwarded between agents (a node that is not a
/// home replica of a key hands a write to one that is, DESIGN §4).
public enum KVOperation: UInt8, Hashable, Sendable {
    // Wire values: append only, the numbers are the protocol.
    case get = 1
    case put = 2
    case delete = 3
}

/// A client request, with its parameters as the client gave them (validated by
/// the node that coordinates it).
public struct KVRequest: Hashable, Sendable {
    public var operation: KVOperation
    public var bucket: String
    public var key: String
    public var value: [UInt8]
    /// Base64 causal context from `X-Chorus-Context`, or empty.
    public var context: String
    /// Raw `r`/`w` parameters, or empty for the bucket's default.
    public var r: String
    public var w: String
    /// Request timeout in milliseconds.
    public var timeoutMilliseconds: UInt32
    /// Raw `sloppy` parameter (`true`/`false`), or empty for the bucket's default.
    public var sloppy: String
    /// Hops taken so far: a forwarded request is never forwarded again.
    public var forwarded: Bool

    public init(
        operation: KVOperation, bucket: String, key: String, value: [UInt8] = [], context: String = "", r: String = "",
        w: String = "", sloppy: String = "", timeoutMilliseconds: UInt32, forwarded: Bool = false
    ) {
        self.sloppy = sloppy
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.value = value
        self.context = context
        self.r = r
        self.w = w
        self.timeoutMilliseconds = timeoutMilliseconds
        self.forwarded = forwarded
    }
}

/// The answer to a `KVRequest`, as the HTTP API returns it.
public struct KVResponse: Hashable, Sendable {
    public var status: UInt16
    /// Base64 causal context for `X-Chorus-Context`, or empty.
    public var context: String
    public var contentType: String
    public var body: [UInt8]

    public init(status: UInt16, context: String = "", contentType: String = "application/json", body: [UInt8] = []) {
        self.status = status
        self.context = context
        self.contentType = contentType
        self.body = body
    }
}

/// A replica's copy of a key, pushed by a coordinator (or read repair, or handoff):
/// the receiver merges it into what it stores.
public struct ReplicaWrite: Hashable, Sendable {
    public var bucket: String
    public var key: String
    /// `ObjectCodec` bytes.
    public var object: [UInt8]
    /// Set on a write to a fallback node: the home replica it stands in for, to
    /// which the receiver keeps it as a hint until it can hand it off (Dynamo §4.6).
    public var hintFor: NodeID?

    public init(bucket: String, key: String, object: [UInt8], hintFor: NodeID? = nil) {
        self.bucket = bucket
        self.key = key
        self.object = object
        self.hintFor = hintFor
    }
}
