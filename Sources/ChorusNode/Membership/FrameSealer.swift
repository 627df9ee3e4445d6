import ChorusCrypto
import NIOConcurrencyHelpers

/// Seals and opens datagrams and TCP frames under the current keyring, with the
/// cluster name as associated data (DESIGN §7). Thread-safe: the keyring changes
/// under rotation while channels on any event loop use it.
final class FrameSealer: Sendable {
    let associatedData: [UInt8]
    private let keyringBox: NIOLockedValueBox<Keyring>

    init(clusterName: String, keyring: Keyring) {
        self.associatedData = Array(clusterName.utf8)
        self.keyringBox = NIOLockedValueBox(keyring)
    }

    var keyring: Keyring {
        get { keyringBox.withLockedValue { $0 } }
        set { keyringBox.withLockedValue { $0 = newValue } }
    }

    func seal(_ plaintext: [UInt8]) -> [UInt8] {
        let keyring = self.keyring
        return Sealer.seal(plaintext, associatedData: associatedData, keyring: keyring)
    }

    func open(_ sealed: [UInt8]) throws(Sealer.OpenError) -> [UInt8] {
        let keyring = self.keyring
        return try Sealer.open(sealed, associatedData: associatedData, keyring: keyring)
    }
}
