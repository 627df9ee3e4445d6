/// The binary form of `ExchangeMessage`s (the plaintext of one sealed UDP datagram),
/// big-endian on the membership codec's `Writer`/`Reader`:
///
///     type(u8) exchangeID(u64) partition(u32) body
///     summary:       segmentCount(u32) root(u64) count(u8) hash(u64)*
///     summaryReply:  count(u8) index(u16)*  branches
///     branchRequest: request(u32) level(u8) count(u8) index(u16)*
///     branchReply:   request(u32) level(u8) branches
///     segments:      form(u8) then, form 0: count(u16) index(u16)*  (ascending)
///                                  form 1: length(u16) bitmap      (bit i of byte i/8,
///                                                                   most significant first)
///     refused:       reason(u8)
///     branches:      count(u8) then per branch index(u16) count(u8) hash(u64)*
///
/// Decoding is hostile-input safe: truncated, trailing, unknown, unordered or over-long
/// input throws `WireError` and never traps, and nothing is allocated from a count
/// before the bytes it announces are known to be present.
public enum ExchangeCodec {
    /// Message type numbers. Append only: the numbers are the protocol.
    public enum MessageType: UInt8, Sendable, CaseIterable {
        case summary = 1
        case summaryReply = 2
        case branchRequest = 3
        case branchReply = 4
        case segments = 5
        case refused = 6
    }

    /// Largest encoded message: one datagram's plaintext, leaving room for the seal and
    /// framing under the 1,400-byte datagram (`SWIMSettings.maxPayloadBytes`).
    public static let maxMessageBytes = 1200
    /// Type, exchange id, partition.
    public static let headerSize = 1 + 8 + 4
    /// Most hashes a node's children, or a top level, can hold.
    public static let maxHashesPerNode = TictacShape.fanout
    /// Largest segment bitmap (`TictacShape.maxSegmentCount` bits).
    public static let maxBitmapBytes = TictacShape.maxSegmentCount / 8

    /// How many nodes' children (`childrenPerNode` hashes each) one reply carries: what
    /// fits in `maxMessageBytes` beside the largest summary-reply preamble. 4 for the
    /// default shape's 32 children.
    public static func branchesPerMessage(childrenPerNode: Int) -> Int {
        let preamble = headerSize + 1 + 2 * maxHashesPerNode + 1
        let perBranch = 2 + 1 + 8 * childrenPerNode
        return max(1, min(maxHashesPerNode, (maxMessageBytes - preamble) / perBranch))
    }

    // MARK: - Encoding

    /// Encodes `message`. Values the format cannot carry (a partition beyond u32, an
    /// index beyond u16, more than 255 entries in a list) are clamped; messages built by
    /// `TreeExchange` never need it.
    public static func encode(_ message: ExchangeMessage) -> [UInt8] {
        var writer = SWIMCodec.Writer()
        writer.u8(type(of: message.body).rawValue)
        writer.u64(message.exchangeID)
        writer.u32(UInt32(clamping: message.partition))
        switch message.body {
        case .summary(let segmentCount, let root, let topLevel):
            writer.u32(UInt32(clamping: segmentCount))
            writer.u64(root)
            writer.hashes(topLevel)
        case .summaryReply(let differing, let branches):
            writer.indices(differing)
            writer.branches(branches)
        case .branchRequest(let request, let level, let indices):
            writer.u32(request)
            writer.u8(UInt8(clamping: level))
            writer.indices(indices)
        case .branchReply(let request, let level, let branches):
            writer.u32(request)
            writer.u8(UInt8(clamping: level))
            writer.branches(branches)
        case .segments(let differing):
            writer.segments(differing)
        case .refused(let reason):
            writer.u8(reason.rawValue)
        }
        return writer.bytes
    }

    static func type(of body: ExchangeMessage.Body) -> MessageType {
        switch body {
        case .summary: .summary
        case .summaryReply: .summaryReply
        case .branchRequest: .branchRequest
        case .branchReply: .branchReply
        case .segments: .segments
        case .refused: .refused
        }
    }

    // MARK: - Decoding

    /// Throws `WireError` on any malformed input; never traps.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> ExchangeMessage {
        guard bytes.count <= maxMessageBytes else { throw .tooLarge }
        var reader = SWIMCodec.Reader(bytes)
        let rawType = try reader.u8()
        guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
        let exchangeID = try reader.u64()
        let partition = Int(try reader.u32())
        let body: ExchangeMessage.Body
        switch type {
        case .summary:
            let segmentCount = Int(try reader.u32())
            guard TictacShape(segmentCount: segmentCount) != nil else {
                throw .invalidValue("segment count \(segmentCount)")
            }
            let root = try reader.u64()
            body = .summary(segmentCount: segmentCount, root: root, topLevel: try reader.hashes())
        case .summaryReply:
            let differing = try reader.indices(ascending: true)
            body = .summaryReply(differing: differing, branches: try reader.branches())
        case .branchRequest:
            let request = try reader.u32()
            let level = Int(try reader.u8())
            body = .branchRequest(request: request, level: level, indices: try reader.indices(ascending: false))
        case .branchReply:
            let request = try reader.u32()
            let level = Int(try reader.u8())
            body = .branchReply(request: request, level: level, branches: try reader.branches())
        case .segments:
            body = .segments(differing: try reader.segments())
        case .refused:
            let raw = try reader.u8()
            guard let reason = ExchangeRefusal(rawValue: raw) else { throw .invalidValue("refusal \(raw)") }
            body = .refused(reason)
        }
        try reader.expectEnd()
        return ExchangeMessage(exchangeID: exchangeID, partition: partition, body: body)
    }
}

// MARK: - Writer and reader helpers

extension SWIMCodec.Writer {
    fileprivate mutating func hashes(_ hashes: [UInt64]) {
        let kept = hashes.prefix(Int(UInt8.max))
        u8(UInt8(kept.count))
        for hash in kept { u64(hash) }
    }

    fileprivate mutating func indices(_ indices: [Int]) {
        let kept = indices.prefix(Int(UInt8.max))
        u8(UInt8(kept.count))
        for index in kept { u16(UInt16(clamping: index)) }
    }

    fileprivate mutating func branches(_ branches: [BranchHashes]) {
        let kept = branches.prefix(Int(UInt8.max))
        u8(UInt8(kept.count))
        for branch in kept {
            u16(UInt16(clamping: branch.index))
            hashes(branch.children)
        }
    }

    /// The smaller of an ascending index list and a bitmap (ties go to the list).
    fileprivate mutating func segments(_ segments: [Int]) {
        let valid = Set(segments.filter { $0 >= 0 && $0 < TictacShape.maxSegmentCount }).sorted()
        let bitmapBytes = (valid.max() ?? -1) / 8 + 1
        if 2 * valid.count <= bitmapBytes {
            u8(0)
            u16(UInt16(valid.count))
            for index in valid { u16(UInt16(index)) }
        } else {
            var bitmap = [UInt8](repeating: 0, count: bitmapBytes)
            for index in valid { bitmap[index / 8] |= 0x80 >> UInt8(index % 8) }
            u8(1)
            u16(UInt16(bitmapBytes))
            bytes.append(contentsOf: bitmap)
        }
    }
}

extension SWIMCodec.Reader {
    fileprivate mutating func hashes() throws(WireError) -> [UInt64] {
        let count = Int(try u8())
        guard count <= ExchangeCodec.maxHashesPerNode else { throw .tooLarge }
        guard count * 8 <= remaining else { throw .truncated }
        var hashes: [UInt64] = []
        hashes.reserveCapacity(count)
        for _ in 0..<count { hashes.append(try u64()) }
        return hashes
    }

    /// A u8-counted list of u16 indices; strictly ascending when `ascending`, else
    /// free of duplicates.
    fileprivate mutating func indices(ascending: Bool) throws(WireError) -> [Int] {
        let count = Int(try u8())
        guard count <= ExchangeCodec.maxHashesPerNode else { throw .tooLarge }
        guard count * 2 <= remaining else { throw .truncated }
        var indices: [Int] = []
        indices.reserveCapacity(count)
        for _ in 0..<count { indices.append(Int(try u16())) }
        if ascending {
            guard zip(indices, indices.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw .invalidValue("indices out of order")
            }
        } else {
            guard Set(indices).count == indices.count else { throw .invalidValue("duplicate indices") }
        }
        return indices
    }

    fileprivate mutating func branches() throws(WireError) -> [BranchHashes] {
        let count = Int(try u8())
        guard count <= ExchangeCodec.maxHashesPerNode else { throw .tooLarge }
        guard count * 3 <= remaining else { throw .truncated }
        var branches: [BranchHashes] = []
        branches.reserveCapacity(count)
        for _ in 0..<count {
            let index = Int(try u16())
            branches.append(BranchHashes(index: index, children: try hashes()))
        }
        guard Set(branches.map(\.index)).count == branches.count else {
            throw .invalidValue("duplicate branches")
        }
        return branches
    }

    fileprivate mutating func segments() throws(WireError) -> [Int] {
        switch try u8() {
        case 0:
            let count = Int(try u16())
            guard count <= TictacShape.maxSegmentCount else { throw .tooLarge }
            guard count * 2 <= remaining else { throw .truncated }
            var segments: [Int] = []
            segments.reserveCapacity(count)
            for _ in 0..<count {
                let index = Int(try u16())
                guard index < TictacShape.maxSegmentCount else { throw .invalidValue("segment \(index)") }
                if let last = segments.last, !(last < index) { throw .invalidValue("segments out of order") }
                segments.append(index)
            }
            return segments
        case 1:
            let length = Int(try u16())
            guard length <= ExchangeCodec.maxBitmapBytes else { throw .tooLarge }
            let bitmap = try take(length)
            // Canonical: the encoder never writes trailing zero bytes.
            guard length == 0 || bitmap.last != 0 else { throw .invalidValue("padded segment bitmap") }
            var segments: [Int] = []
            for (offset, byte) in bitmap.enumerated() where byte != 0 {
                for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                    segments.append(offset * 8 + bit)
                }
            }
            return segments
        case let form:
            throw .invalidValue("segment form \(form)")
        }
    }
}
