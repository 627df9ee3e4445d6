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

    /// Seals with the installed key `keyID` rather than the primary: a reply goes
    /// out under the key its request came in with, so a member that missed a
    /// rotation (and holds only the old key) can read the answer that brings it
    /// the new keyring.
    func seal(_ plaintext: [UInt8], keyID: UInt32) -> [UInt8] {
        let keyring = self.keyring
        guard keyID != keyring.primary.keyID, let key = keyring.key(forID: keyID),
            let single = try? Keyring(primary: key)
        else {
            return Sealer.seal(plaintext, associatedData: associatedData, keyring: keyring)
        }
        return Sealer.seal(plaintext, associatedData: associatedData, keyring: single)
    }

    /// The key id in a sealed message's header (bytes 3..<7), if it has one.
    static func keyID(of sealed: [UInt8]) -> UInt32? {
        guard sealed.count >= 7 else { return nil }
        return sealed[3..<7].reduce(0) { $0 << 8 | UInt32($1) }
    }

    func open(_ sealed: [UInt8]) throws(Sealer.OpenError) -> [UInt8] {
        let keyring = self.keyring
        return try Sealer.open(sealed, associatedData: associatedData, keyring: keyring)
    }
}
