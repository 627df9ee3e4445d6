#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The keyring's file form: one line of JSON,
/// `{"version":N,"primary":"base64","keys":["base64",...]}`, mode 0600.
///
/// Small and human-readable so an operator can inspect it (and see which key is
/// primary) with `cat`; `keys` lists every installed key including the primary.
/// Saving is atomic — temp file in the same directory, fsync, rename, fsync the
/// directory — so a crash mid-save leaves either the old keyring or the new one, never
/// a torn file that would lock the node out of its cluster.
extension Keyring {
    /// A keyring file larger than this is refused unread: even a thousand keys fit in
    /// 64 KiB.
    public static let maxFileBytes = 1 << 20

    /// Reads a keyring saved by ``save(to:)``.
    ///
    /// - Throws: ``KeyringError/fileMissing(path:)``, ``KeyringError/unreadable(path:reason:)``
    ///   or ``KeyringError/corrupt(path:reason:)``, each naming `path`.
    public static func load(from path: String) throws(KeyringError) -> Keyring {
        let bytes = try readFile(path)
        let file: KeyringFileFormat
        do {
            file = try JSONDecoder().decode(KeyringFileFormat.self, from: Data(bytes))
        } catch {
            throw .corrupt(path: path, reason: "not a keyring JSON object (\(describe(error)))")
        }
        func parse(_ text: String, _ what: String) throws(KeyringError) -> ClusterKey {
            do {
                return try ClusterKey(base64: text)
            } catch {
                throw .corrupt(path: path, reason: "\(what): \(error)")
            }
        }
        let primary = try parse(file.primary, "primary key")
        var others: [ClusterKey] = []
        for (index, text) in file.keys.enumerated() {
            others.append(try parse(text, "keys[\(index)]"))
        }
        do {
            return try Keyring(primary: primary, others: others, version: file.version)
        } catch {
            throw .corrupt(path: path, reason: "\(error)")
        }
    }

    /// Writes the keyring atomically to `path` with mode 0600, replacing any file there.
    ///
    /// - Throws: ``KeyringError/writeFailed(path:reason:)`` naming `path`; unless the
    ///   reason says the rename happened, the previous file is untouched.
    public func save(to path: String) throws(KeyringError) {
        let quoted = keys.map { "\"\($0.base64)\"" }.joined(separator: ",")
        let text = "{\"version\":\(version),\"primary\":\"\(primary.base64)\",\"keys\":[\(quoted)]}\n"
        try Self.writeAtomically(Array(text.utf8), to: path)
    }

    // MARK: - File I/O

    private static func readFile(_ path: String) throws(KeyringError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .fileMissing(path: path) }
            throw .unreadable(path: path, reason: errorString(code))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: errorString(errno))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > maxFileBytes {
                throw .corrupt(path: path, reason: "larger than \(maxFileBytes) bytes")
            }
        }
        return bytes
    }

    private static func writeAtomically(_ bytes: [UInt8], to path: String) throws(KeyringError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let suffix = String(Hashing.randomUInt64(), radix: 16)
        let temp = (directory == "/" ? "" : directory) + "/.\(name).tmp-\(suffix)"

        func fail(_ step: String, _ code: Int32) -> KeyringError {
            .writeFailed(path: path, reason: "\(step): \(errorString(code))")
        }

        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fail("create \(temp)", errno) }
        var renamed = false
        defer { if !renamed { unlink(temp) } }
        do throws(KeyringError) {
            // The umask can only clear bits, but be explicit: keys are secrets.
            guard fchmod(fd, 0o600) == 0 else { throw fail("chmod \(temp)", errno) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes {
                    write(fd, $0.baseAddress! + offset, $0.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw fail("write \(temp)", errno)
                }
                offset += written
            }
            guard fsync(fd) == 0 else { throw fail("fsync \(temp)", errno) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw fail("close \(temp)", errno) }
        guard rename(temp, path) == 0 else { throw fail("rename \(temp)", errno) }
        renamed = true

        // Make the rename itself durable.
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw fail("renamed, but open directory \(directory)", errno) }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw fail("renamed, but fsync directory \(directory)", errno) }
    }

    private static func errorString(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context),
            .keyNotFound(_, let context), .dataCorrupted(let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return field.isEmpty
                ? context.debugDescription : "\(field): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// The JSON shape of a keyring file.
private struct KeyringFileFormat: Decodable {
    var version: UInt64
    var primary: String
    var keys: [String]
}
