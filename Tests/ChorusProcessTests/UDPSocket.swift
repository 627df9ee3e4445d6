import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A bare IPv4 UDP socket for sending hostile datagrams at agents and capturing the
/// datagrams they send, with nothing but the C library.
final class UDPSocket {
    private let fd: Int32

    /// An unbound socket (the kernel picks an ephemeral source port on first send).
    init() throws {
        fd = socket(AF_INET, Self.datagramType, 0)
        guard fd >= 0 else { throw HarnessError("socket(): \(Self.errorText())") }
    }

    /// A socket bound to `host:port`, for example to take over a dead agent's address.
    convenience init(bindingTo host: String, port: Int) throws {
        try self.init()
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = try Self.address(host, port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let text = Self.errorText()
            close(fd)
            throw HarnessError("bind(\(host):\(port)): \(text)")
        }
    }

    deinit { close(fd) }

    /// Sends one datagram; returns false when the kernel refused it (a full buffer,
    /// or ECONNREFUSED reported from an earlier send), which a flood ignores.
    @discardableResult
    func send(_ bytes: [UInt8], to host: String, port: Int) throws -> Bool {
        var address = try Self.address(host, port)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return sent == bytes.count
    }

    /// Receives one datagram if one is queued; never blocks.
    func receiveNow(maxBytes: Int = 65_536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        let count = buffer.withUnsafeMutableBytes {
            recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
        }
        guard count >= 0 else { return nil }
        return Array(buffer[0..<count])
    }

    private static var datagramType: Int32 {
        #if canImport(Glibc)
            Int32(SOCK_DGRAM.rawValue)
        #else
            SOCK_DGRAM
        #endif
    }

    private static func address(_ host: String, _ port: Int) throws -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw HarnessError("not an IPv4 address: \(host)")
        }
        return address
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
