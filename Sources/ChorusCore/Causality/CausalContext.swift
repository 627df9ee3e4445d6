/// The causal context a read returns and a write sends back, as the opaque base64
/// text of the `X-Chorus-Context` header (DESIGN §4).
///
/// Bytes, big-endian:
///
///     version(u8 = 1) | clusterTag(u32) | count(u16) | (nodeID(16) counter(u64)) * count | crc32(u32)
///
/// `clusterTag` is FNV-1a 32 of the cluster name's UTF-8, so a context minted by
/// another cluster is recognised rather than silently misread. Entries are in strictly
/// ascending node id order with non-zero counters (the canonical form, so a context
/// has exactly one encoding). The trailing CRC-32 covers every preceding byte; it stays
/// the last four bytes in every future version, so corruption is told apart from an
/// unsupported version.
///
/// Decoding never traps and rejects, with a `ContextError`: text that is not base64,
/// bytes that are truncated, trailing, mis-summed or not canonical, a context of
/// another cluster, and versions it does not know. At most `maxEntries` entries.
public enum CausalContext {
    public static let version: UInt8 = 1
    /// Most replicas a context may name. A key's history names only the replicas that
    /// coordinated its writes, so this is far beyond any real context.
    public static let maxEntries = 1024
    /// Bytes around the entries: version, tag, count, checksum.
    static let overhead = 1 + 4 + 2 + 4
    static let entrySize = 16 + 8
    /// Longest header text that can hold `maxEntries` entries.
    public static let maxEncodedLength = (overhead + maxEntries * entrySize + 2) / 3 * 4

    /// The header text for `context` in cluster `clusterName`. A vector with more than
    /// `maxEntries` replicas keeps the first `maxEntries` in id order: a smaller context
    /// can only make a write supersede less (more siblings), never lose data.
    public static func encode(_ context: VersionVector, clusterName: String) -> String {
        ContextBase64.encode(encodeBytes(context, clusterName: clusterName))
    }

    static func encodeBytes(_ context: VersionVector, clusterName: String) -> [UInt8] {
        let entries = context.sortedEntries.prefix(maxEntries)
        var writer = SWIMCodec.Writer()
        writer.u8(version)
        writer.u32(clusterTag(clusterName))
        writer.u16(UInt16(entries.count))
        for entry in entries {
            writer.nodeID(entry.id)
            writer.u64(entry.counter)
        }
        writer.u32(CausalityChecksum.crc32(writer.bytes))
        return writer.bytes
    }

    /// The version vector in header text `text`, checked to belong to `clusterName`.
    public static func decode(_ text: String, clusterName: String) throws(ContextError) -> VersionVector {
        guard text.utf8.count <= maxEncodedLength else { throw .corrupt }
        guard let bytes = ContextBase64.decode(text) else { throw .notBase64 }
        return try decodeBytes(bytes, clusterName: clusterName)
    }

    static func decodeBytes(_ bytes: [UInt8], clusterName: String) throws(ContextError) -> VersionVector {
        guard bytes.count >= overhead else { throw .corrupt }
        let body = bytes[..<(bytes.count - 4)]
        let stored = bytes[(bytes.count - 4)...].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard CausalityChecksum.crc32(body) == stored else { throw .corrupt }
        guard bytes[0] == version else { throw .unsupportedVersion(bytes[0]) }
        do {
            var reader = SWIMCodec.Reader(Array(body))
            _ = try reader.u8()
            guard try reader.u32() == clusterTag(clusterName) else { throw ContextError.foreignCluster }
            let count = Int(try reader.u16())
            guard count <= maxEntries, count * entrySize == reader.remaining else { throw ContextError.corrupt }
            var counters: [NodeID: UInt64] = [:]
            counters.reserveCapacity(count)
            var previous: NodeID?
            for _ in 0..<count {
                let id = try reader.nodeID()
                let counter = try reader.u64()
                if let previous, !(previous < id) { throw ContextError.corrupt }
                guard counter > 0 else { throw ContextError.corrupt }
                previous = id
                counters[id] = counter
            }
            try reader.expectEnd()
            return VersionVector(counters)
        } catch let error as ContextError {
            throw error
        } catch {
            throw .corrupt
        }
    }

    /// FNV-1a 32 of the cluster name's UTF-8.
    public static func clusterTag(_ clusterName: String) -> UInt32 {
        CausalityChecksum.fnv1a32(clusterName.utf8)
    }
}

/// Why an `X-Chorus-Context` header was refused; `message` is meant for a 400 body.
public enum ContextError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not base64 text.
    case notBase64
    /// Base64, but truncated, too long, failing its checksum or not canonical.
    case corrupt
    /// Intact, but minted by a cluster with another name.
    case foreignCluster
    /// Intact, but in a format version this node does not know.
    case unsupportedVersion(UInt8)

    public var message: String {
        switch self {
        case .notBase64:
            "causal context is not valid base64; send back the X-Chorus-Context value of a read unchanged"
        case .corrupt:
            "causal context is corrupt (truncated, altered or over-long); send back the X-Chorus-Context value of a read unchanged"
        case .foreignCluster:
            "causal context was issued by another cluster; read the key from this cluster to get a context"
        case .unsupportedVersion(let version):
            "causal context format version \(version) is not supported by this node (it reads version \(CausalContext.version))"
        }
    }

    public var description: String { message }
}
