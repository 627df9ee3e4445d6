import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Crash-safe file replacement: write a temporary file in the same folder, fsync
/// it, rename it over the target, fsync the folder. A reader sees the old
/// contents or the new, never a torn mix, even after `kill -9` or power loss.
enum AtomicFile {
    struct WriteError: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(WriteError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(description: "cannot create \(temporary): \(errnoText())") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buffer in
                Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                let message = errnoText()
                close(fd)
                unlink(temporary)
                throw WriteError(description: "cannot write \(temporary): \(message)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let message = errnoText()
            close(fd)
            unlink(temporary)
            throw WriteError(description: "cannot sync \(temporary): \(message)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let message = errnoText()
            unlink(temporary)
            throw WriteError(description: "cannot rename \(temporary) to \(path): \(message)")
        }
        let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
