/// The membership wire format (DESIGN §7): a compact, big-endian binary encoding of
/// `SWIMEnvelope`s (one datagram's plaintext) and of push-pull member lists.
///
/// Envelope: `sender(16) bootID(8) sequence(8) sentAt(8) count(u16)` then `count`
/// messages, each `type(u8) length(u16) body`. Strings are a u16 byte length then
/// UTF-8; an `Endpoint` is its host string then a u16 port.
///
/// Decoding is hostile-input safe: anything truncated, trailing, unknown, out of range
/// or over-long throws `WireError` (never traps), and no allocation is sized from a
/// length field before the bytes it announces are known to be present.
///
/// Encoding clamps values the format cannot carry (strings over 255 bytes are cut at a
/// character boundary, tags beyond 64 entries are dropped in key order) so that every
/// encoded value decodes; `encodedSize(of:)` accounts for the clamping.
public enum SWIMCodec {
    /// Message type numbers. Append only: the numbers are the protocol.
    public enum MessageType: UInt8, Sendable, CaseIterable {
        case ping = 1
        case pingRequest = 2
        case ack = 3
        case nack = 4
        case update = 5
        case antiEntropy = 6
    }

    /// Bytes of an envelope before its first message: sender, boot id, sequence,
    /// send time, message count.
    public static let envelopeHeaderSize = 16 + 8 + 8 + 8 + 2
    /// Bytes of a message before its body: type and body length.
    public static let messageHeaderSize = 1 + 2
    /// Longest name, host, tag key or tag value, in UTF-8 bytes.
    public static let maxStringBytes = 255
    /// Most tags a member may carry on the wire.
    public static let maxTags = 64
    /// Most members a push-pull payload may carry (memberlist has no bound; a few
    /// thousand members is the design's target size, with headroom).
    public static let maxPushPullMembers = 16_384
    /// Longest anti-entropy payload: one exchange message (`ExchangeCodec.maxMessageBytes`).
    public static let maxAntiEntropyBytes = ExchangeCodec.maxMessageBytes

    // MARK: - Envelopes

    public static func encode(_ envelope: SWIMEnvelope) -> [UInt8] {
        var writer = Writer()
        writer.nodeID(envelope.sender)
        writer.u64(envelope.bootID)
        writer.u64(envelope.sequence)
        writer.u64(envelope.sentAt)
        writer.u16(UInt16(clamping: envelope.messages.count))
        for message in envelope.messages.prefix(Int(UInt16.max)) {
            writer.message(message)
        }
        return writer.bytes
    }

    /// Throws `WireError` on any malformed input; never traps.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> SWIMEnvelope {
        var reader = Reader(bytes)
        let sender = try reader.nodeID()
        let bootID = try reader.u64()
        let sequence = try reader.u64()
        let sentAt = try reader.u64()
        let count = Int(try reader.u16())
        // Every message takes at least its header: a count the remaining bytes cannot
        // hold is rejected before anything is reserved for it.
        guard count * messageHeaderSize <= reader.remaining else { throw .truncated }
        var messages: [SWIMMessage] = []
        messages.reserveCapacity(count)
        for _ in 0..<count {
            messages.append(try reader.message())
        }
        try reader.expectEnd()
        return SWIMEnvelope(
            sender: sender, bootID: bootID, sequence: sequence, sentAt: sentAt, messages: messages)
    }

    // MARK: - Push-pull member lists

    /// A member list for push-pull: `count(u32)` then `count` update bodies, each
    /// prefixed by its u16 length.
    public static func encodeUpdates(_ updates: [MemberUpdate]) -> [UInt8] {
        var writer = Writer()
        let kept = updates.prefix(maxPushPullMembers)
        writer.u32(UInt32(kept.count))
        for update in kept {
            writer.lengthPrefixed { $0.update(update) }
        }
        return writer.bytes
    }

    public static func decodeUpdates(_ bytes: [UInt8]) throws(WireError) -> [MemberUpdate] {
        var reader = Reader(bytes)
        let count = Int(try reader.u32())
        guard count <= maxPushPullMembers else { throw .tooLarge }
        guard count * 2 <= reader.remaining else { throw .truncated }
        var updates: [MemberUpdate] = []
        updates.reserveCapacity(count)
        for _ in 0..<count {
            var body = try reader.subReader(length: Int(try reader.u16()))
            updates.append(try body.update())
            try body.expectEnd()
        }
        try reader.expectEnd()
        return updates
    }

    // MARK: - Sizes

    /// The encoded size of `message` inside an envelope, header included. The
    /// dissemination queue packs datagrams with it.
    public static func encodedSize(of message: SWIMMessage) -> Int {
        messageHeaderSize + bodySize(of: message)
    }

    /// The encoded size of an envelope carrying `messages`.
    public static func encodedSize(ofEnvelopeWith messages: [SWIMMessage]) -> Int {
        messages.reduce(envelopeHeaderSize) { $0 + encodedSize(of: $1) }
    }

    static func bodySize(of message: SWIMMessage) -> Int {
        switch message {
        case .ping: 8 + 16
        case .pingRequest(_, _, let address, _): 8 + 16 + endpointSize(address) + 1
        case .ack, .nack: 8
        case .update(let update): updateSize(update)
        case .antiEntropy(let payload): min(payload.count, maxAntiEntropyBytes)
        }
    }

    static func updateSize(_ update: MemberUpdate) -> Int {
        var size = 16 + stringSize(update.name) + endpointSize(update.address) + 8 + 1 + 1 + 16
        for (key, value) in clampedTags(update.tags) {
            size += stringSize(key) + stringSize(value)
        }
        return size
    }

    static func stringSize(_ string: String) -> Int {
        2 + clampedUTF8(string).count
    }

    static func endpointSize(_ endpoint: Endpoint) -> Int {
        stringSize(endpoint.host) + 2
    }

    /// The string's UTF-8, cut to `maxStringBytes` at a character boundary.
    static func clampedUTF8(_ string: String) -> [UInt8] {
        let utf8 = Array(string.utf8)
        guard utf8.count > maxStringBytes else { return utf8 }
        var end = maxStringBytes
        // Back up over continuation bytes (10xxxxxx) so the cut is valid UTF-8.
        while end > 0, utf8[end] & 0xC0 == 0x80 { end -= 1 }
        return Array(utf8[0..<end])
    }

    /// Tags in key order, at most `maxTags` of them.
    static func clampedTags(_ tags: [String: String]) -> [(String, String)] {
        Array(tags.sorted { $0.key < $1.key }.prefix(maxTags))
    }
}

/// Why a datagram or payload was rejected.
public enum WireError: Error, Hashable, Sendable {
    case truncated
    case unknownType(UInt8)
    case invalidValue(String)
    case tooLarge
}

// MARK: - Writer

extension SWIMCodec {
    struct Writer {
        var bytes: [UInt8] = []

        mutating func u8(_ value: UInt8) { bytes.append(value) }

        mutating func u16(_ value: UInt16) {
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
        }

        mutating func u32(_ value: UInt32) {
            for shift in stride(from: 24, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
            }
        }

        mutating func u64(_ value: UInt64) {
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }

        mutating func nodeID(_ id: NodeID) {
            u64(id.high)
            u64(id.low)
        }

        mutating func string(_ value: String) {
            let utf8 = SWIMCodec.clampedUTF8(value)
            u16(UInt16(utf8.count))
            bytes.append(contentsOf: utf8)
        }

        mutating func endpoint(_ endpoint: Endpoint) {
            string(endpoint.host)
            u16(endpoint.port)
        }

        /// Writes a u16 length, then whatever `body` writes.
        mutating func lengthPrefixed(_ body: (inout Writer) -> Void) {
            let lengthAt = bytes.count
            u16(0)
            body(&self)
            let length = UInt16(clamping: bytes.count - lengthAt - 2)
            bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
            bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
        }

        mutating func message(_ message: SWIMMessage) {
            switch message {
            case .ping(let sequence, let target):
                u8(MessageType.ping.rawValue)
                lengthPrefixed {
                    $0.u64(sequence)
                    $0.nodeID(target)
                }
            case .pingRequest(let sequence, let target, let address, let wantsNack):
                u8(MessageType.pingRequest.rawValue)
                lengthPrefixed {
                    $0.u64(sequence)
                    $0.nodeID(target)
                    $0.endpoint(address)
                    $0.u8(wantsNack ? 1 : 0)
                }
            case .ack(let sequence):
                u8(MessageType.ack.rawValue)
                lengthPrefixed { $0.u64(sequence) }
            case .nack(let sequence):
                u8(MessageType.nack.rawValue)
                lengthPrefixed { $0.u64(sequence) }
            case .update(let update):
                u8(MessageType.update.rawValue)
                lengthPrefixed { $0.update(update) }
            case .antiEntropy(let payload):
                // Clamped like every other field, so an encoded message always decodes
                // (the exchange codec never produces more).
                u8(MessageType.antiEntropy.rawValue)
                lengthPrefixed { $0.bytes.append(contentsOf: payload.prefix(SWIMCodec.maxAntiEntropyBytes)) }
            }
        }

        mutating func update(_ update: MemberUpdate) {
            nodeID(update.id)
            string(update.name)
            endpoint(update.address)
            u64(update.incarnation)
            u8(update.status.rawValue)
            let tags = SWIMCodec.clampedTags(update.tags)
            u8(UInt8(tags.count))
            for (key, value) in tags {
                string(key)
                string(value)
            }
            nodeID(update.source)
        }
    }
}

// MARK: - Reader

extension SWIMCodec {
    struct Reader {
        private let bytes: [UInt8]
        private var position: Int
        private let end: Int

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.position = 0
            self.end = bytes.count
        }

        private init(bytes: [UInt8], position: Int, end: Int) {
            self.bytes = bytes
            self.position = position
            self.end = end
        }

        var remaining: Int { end - position }

        mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= remaining else { throw .truncated }
            defer { position += count }
            return bytes[position..<position + count]
        }

        /// A reader over the next `length` bytes; this reader skips past them.
        mutating func subReader(length: Int) throws(WireError) -> Reader {
            guard length <= remaining else { throw .truncated }
            defer { position += length }
            return Reader(bytes: bytes, position: position, end: position + length)
        }

        func expectEnd() throws(WireError) {
            guard remaining == 0 else { throw .invalidValue("\(remaining) trailing bytes") }
        }

        mutating func u8() throws(WireError) -> UInt8 {
            guard remaining >= 1 else { throw .truncated }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func u16() throws(WireError) -> UInt16 {
            let slice = try take(2)
            return slice.reduce(0) { $0 << 8 | UInt16($1) }
        }

        mutating func u32() throws(WireError) -> UInt32 {
            let slice = try take(4)
            return slice.reduce(0) { $0 << 8 | UInt32($1) }
        }

        mutating func u64() throws(WireError) -> UInt64 {
            let slice = try take(8)
            return slice.reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func nodeID() throws(WireError) -> NodeID {
            let high = try u64()
            return NodeID(high: high, low: try u64())
        }

        mutating func string() throws(WireError) -> String {
            let length = Int(try u16())
            guard length <= SWIMCodec.maxStringBytes else { throw .tooLarge }
            let slice = try take(length)
            guard let string = String(validating: slice, as: UTF8.self) else {
                throw .invalidValue("invalid UTF-8")
            }
            return string
        }

        mutating func endpoint() throws(WireError) -> Endpoint {
            let host = try string()
            return Endpoint(host: host, port: try u16())
        }

        mutating func bool() throws(WireError) -> Bool {
            switch try u8() {
            case 0: return false
            case 1: return true
            case let other: throw .invalidValue("boolean \(other)")
            }
        }

        mutating func message() throws(WireError) -> SWIMMessage {
            let rawType = try u8()
            let length = Int(try u16())
            guard let type = MessageType(rawValue: rawType) else {
                // Still bounds-check the length so truncation is reported first.
                guard length <= remaining else { throw .truncated }
                throw .unknownType(rawType)
            }
            var body = try subReader(length: length)
            let message: SWIMMessage
            switch type {
            case .ping:
                let sequence = try body.u64()
                message = .ping(sequence: sequence, target: try body.nodeID())
            case .pingRequest:
                let sequence = try body.u64()
                let target = try body.nodeID()
                let address = try body.endpoint()
                message = .pingRequest(
                    sequence: sequence, target: target, targetAddress: address, wantsNack: try body.bool())
            case .ack:
                message = .ack(sequence: try body.u64())
            case .nack:
                message = .nack(sequence: try body.u64())
            case .update:
                message = .update(try body.update())
            case .antiEntropy:
                guard length <= SWIMCodec.maxAntiEntropyBytes else { throw .tooLarge }
                message = .antiEntropy(Array(try body.take(length)))
            }
            try body.expectEnd()
            return message
        }

        mutating func update() throws(WireError) -> MemberUpdate {
            let id = try nodeID()
            let name = try string()
            let address = try endpoint()
            let incarnation = try u64()
            let rawStatus = try u8()
            guard let status = MemberStatus(rawValue: rawStatus) else {
                throw .invalidValue("member status \(rawStatus)")
            }
            let tagCount = Int(try u8())
            guard tagCount <= SWIMCodec.maxTags else { throw .tooLarge }
            var tags: [String: String] = [:]
            var previousKey: String?
            for _ in 0..<tagCount {
                let key = try string()
                // Canonical form: keys strictly ascending, as the encoder writes them
                // (which also rules out duplicates).
                if let previousKey, !(previousKey < key) { throw .invalidValue("tags out of order") }
                previousKey = key
                tags[key] = try string()
            }
            let source = try nodeID()
            return MemberUpdate(
                id: id, name: name, address: address, incarnation: incarnation, status: status, tags: tags,
                source: source)
        }
    }
}
