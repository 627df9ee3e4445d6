/// Length-prefixed byte blobs (object values, keys, contexts) on the membership
/// codec's `Writer`/`Reader`, whose strings stop at 255 bytes: a u32 length, then the bytes.
extension SWIMCodec.Writer {
    /// Writes `blob` with a u32 length prefix. Callers bound the size (a blob over 4 GiB
    /// cannot be framed); `ObjectCodec` refuses larger values before it gets here.
    mutating func blob(_ blob: [UInt8]) {
        u32(UInt32(clamping: blob.count))
        bytes.append(contentsOf: blob.prefix(Int(UInt32.max)))
    }
}

extension SWIMCodec.Reader {
    /// Reads a u32-length-prefixed blob of at most `maxBytes` bytes. The length is
    /// checked against the bound and against the bytes present before anything is copied.
    mutating func blob(maxBytes: Int) throws(WireError) -> [UInt8] {
        let length = Int(try u32())
        guard length <= maxBytes else { throw .tooLarge }
        return Array(try take(length))
    }
}
