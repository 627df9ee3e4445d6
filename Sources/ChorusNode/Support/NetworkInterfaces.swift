import NIOCore
import NIOPosix

/// Host address helpers for choosing an advertise address.
enum NetworkInterfaces {
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    static func firstNonLoopbackAddress() -> String? {
        guard let devices = try? System.enumerateDevices() else { return nil }
        for device in devices {
            guard let address = device.address, case .v4 = address, let ip = address.ipAddress,
                !isLoopback(ip)
            else { continue }
            return ip
        }
        return nil
    }
}
