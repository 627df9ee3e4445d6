/// The cluster keys a node holds: one primary that seals, any number installed that
/// open.
///
/// Rotation follows serf's keyring (`serf keys -install/-use/-remove`): install the new
/// key everywhere, make it primary everywhere, then remove the old one. Between steps
/// every node can still open what every other node seals, because openers accept any
/// installed key.
///
/// ``version`` is bumped by every change, so when two nodes compare keyrings the newer
/// one wins (``isNewer(than:)``); the shell uses that to hand the current keyring to a
/// node that was down during a rotation.
public struct Keyring: Sendable, Equatable {
    /// The key that seals everything this node sends.
    public private(set) var primary: ClusterKey
    /// Installed keys other than the primary, oldest first.
    private var secondaries: [ClusterKey]
    /// Bumped by every change; the higher version is the newer keyring.
    public private(set) var version: UInt64

    /// A keyring holding `primary` plus `others` (duplicates and copies of the primary
    /// are dropped).
    ///
    /// - Throws: ``KeyringError/keyIDCollision(keyID:)`` if two different keys share an id.
    public init(primary: ClusterKey, others: [ClusterKey] = [], version: UInt64 = 0)
        throws(KeyringError)
    {
        self.primary = primary
        self.secondaries = []
        self.version = version
        for key in others where !contains(key) {
            try checkNoCollision(key)
            secondaries.append(key)
        }
    }

    /// Every installed key, primary first (as memberlist's `GetKeys`).
    public var keys: [ClusterKey] { [primary] + secondaries }

    /// The installed key with this id, if any.
    public func key(forID id: UInt32) -> ClusterKey? {
        if primary.keyID == id { return primary }
        return secondaries.first { $0.keyID == id }
    }

    /// Whether `key` is installed (primary or not).
    public func contains(_ key: ClusterKey) -> Bool {
        primary == key || secondaries.contains(key)
    }

    /// Installs `key` so messages sealed with it open. Installing a key already present
    /// changes nothing and does not bump ``version``.
    ///
    /// - Returns: whether the keyring changed.
    /// - Throws: ``KeyringError/keyIDCollision(keyID:)`` if a different installed key has
    ///   the same id (chance 2⁻³²; generate another key).
    @discardableResult
    public mutating func install(_ key: ClusterKey) throws(KeyringError) -> Bool {
        guard !contains(key) else { return false }
        try checkNoCollision(key)
        secondaries.append(key)
        bump()
        return true
    }

    /// Makes an installed key the primary; the old primary stays installed.
    ///
    /// - Returns: whether the keyring changed (false if `key` already is primary).
    /// - Throws: ``KeyringError/notInstalled(keyID:)``: install it first, everywhere.
    @discardableResult
    public mutating func use(_ key: ClusterKey) throws(KeyringError) -> Bool {
        if primary == key { return false }
        guard let index = secondaries.firstIndex(of: key) else {
            throw .notInstalled(keyID: key.keyID)
        }
        secondaries.remove(at: index)
        secondaries.append(primary)
        primary = key
        bump()
        return true
    }

    /// Uninstalls a key; messages sealed with it no longer open.
    ///
    /// - Throws: ``KeyringError/cannotRemovePrimary(keyID:)`` (``use(_:)`` another key
    ///   first) or ``KeyringError/notInstalled(keyID:)``.
    public mutating func remove(_ key: ClusterKey) throws(KeyringError) {
        if primary == key { throw .cannotRemovePrimary(keyID: key.keyID) }
        guard let index = secondaries.firstIndex(of: key) else {
            throw .notInstalled(keyID: key.keyID)
        }
        secondaries.remove(at: index)
        bump()
    }

    /// Whether this keyring should replace `other` when two nodes compare.
    ///
    /// The higher ``version`` wins. Two operators changing different nodes from the same
    /// version produce equal versions with different contents; the tie is broken by key
    /// ids (primary, then the sorted installed ids) so every node picks the same winner.
    public func isNewer(than other: Keyring) -> Bool {
        if version != other.version { return version > other.version }
        let mine = [primary.keyID] + secondaries.map(\.keyID).sorted()
        let theirs = [other.primary.keyID] + other.secondaries.map(\.keyID).sorted()
        return theirs.lexicographicallyPrecedes(mine)
    }

    private func checkNoCollision(_ key: ClusterKey) throws(KeyringError) {
        if self.key(forID: key.keyID) != nil { throw .keyIDCollision(keyID: key.keyID) }
    }

    /// Saturating: a wrapped counter would make the newest keyring look oldest.
    private mutating func bump() {
        if version < .max { version += 1 }
    }
}

/// Why a keyring operation, load or save failed. File errors name the path.
public enum KeyringError: Error, Equatable, CustomStringConvertible {
    /// The key is not installed.
    case notInstalled(keyID: UInt32)
    /// The primary key cannot be removed; make another key primary first.
    case cannotRemovePrimary(keyID: UInt32)
    /// A different installed key already has this id.
    case keyIDCollision(keyID: UInt32)
    /// No keyring file at this path.
    case fileMissing(path: String)
    /// The keyring file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// The keyring file was read but is not a valid keyring.
    case corrupt(path: String, reason: String)
    /// The keyring file could not be written; the previous file, if any, is untouched.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .notInstalled(let id):
            "key \(ClusterKey.hex(id)) is not installed"
        case .cannotRemovePrimary(let id):
            "key \(ClusterKey.hex(id)) is the primary key; use another key before removing it"
        case .keyIDCollision(let id):
            "a different key with id \(ClusterKey.hex(id)) is already installed; generate another key"
        case .fileMissing(let path):
            "keyring file \(path) does not exist"
        case .unreadable(let path, let reason):
            "cannot read keyring file \(path): \(reason)"
        case .corrupt(let path, let reason):
            "keyring file \(path) is corrupt: \(reason)"
        case .writeFailed(let path, let reason):
            "cannot write keyring file \(path): \(reason)"
        }
    }
}
