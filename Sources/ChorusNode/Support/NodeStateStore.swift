import ChorusCore
import ChorusStorage
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// This node's persistent identity, kept in the store's `meta` table (DESIGN §8):
/// its id, the highest incarnation it has used, the cluster name and the
/// partition count Q. A restart always comes back with a higher incarnation than
/// any state it gossiped before (SWIM §4.2: only the member itself raises its
/// incarnation, so it must never reuse one).
struct NodeState: Equatable {
    var id: NodeID
    var clusterName: String
    var partitions: Int
    var incarnation: UInt64
    var ring: RingState = .member
}

/// Where a node stands in the ring, kept across restarts: a new node is `joining`
/// until it holds its partitions; one that left never serves again from this data
/// dir (its copies stopped receiving writes and deletes when it left).
enum RingState: String, Sendable {
    case joining
    case member
    case leaving
    case left
}

/// The data dir: its lock, its database, and the node state in it.
final class NodeStateStore: Sendable {
    let dataDir: String
    let store: LocalStore
    private let lockDescriptor: Int32

    var databasePath: String { dataDir + "/chorus.db" }

    /// Creates the data dir if needed, takes its lock (two agents never share one)
    /// and opens its database; a corrupt or foreign database stops here.
    init(
        dataDir: String, sync: StoreSettings.Sync, backend: ObjectBackend = .log, commitDelay: Duration = .zero
    ) throws(ConfigError) {
        self.dataDir = dataDir
        do {
            try FileManager.default.createDirectory(
                atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigError("cannot create data dir \(dataDir): \(error.localizedDescription)")
        }
        let fd = open(dataDir + "/agent.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot open \(dataDir)/agent.lock: \(AtomicFile.errnoText())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ConfigError("data dir \(dataDir) is in use by another chorus agent")
        }
        self.lockDescriptor = fd
        let policy: SyncPolicy
        switch sync {
        case .batch: policy = .batch
        case .periodic(let interval): policy = .periodic(interval)
        }
        do {
            self.store = try LocalStore(
                path: dataDir + "/chorus.db", sync: policy, limits: StoreLimits(commitDelay: commitDelay),
                backend: backend)
        } catch {
            close(fd)
            throw ConfigError("\(error)")
        }
    }

    /// Loads the state, or mints a new identity for a new data dir. The cluster
    /// name and Q recorded at creation must match the configuration.
    func loadOrCreate(clusterName: String, partitions: Int, using generator: inout some RandomNumberGenerator)
        throws(ConfigError) -> NodeState
    {
        do {
            guard let idBytes = try store.meta(MetaName.nodeID) else {
                let state = NodeState(
                    id: NodeID(using: &generator), clusterName: clusterName, partitions: partitions, incarnation: 0)
                try store.setMeta(MetaName.clusterName, Array(clusterName.utf8))
                try store.setMeta(MetaName.partitionCount, Self.encode(UInt64(partitions)))
                try store.setMeta(MetaName.incarnation, Self.encode(0))
                try store.setMeta(MetaName.ringState, Array(RingState.joining.rawValue.utf8))
                try store.setMeta(MetaName.nodeID, Array(state.id.description.utf8))
                var created = state
                created.ring = .joining
                return created
            }
            guard let id = NodeID(hex: String(decoding: idBytes, as: UTF8.self)),
                let storedCluster = try store.meta(MetaName.clusterName).map({ String(decoding: $0, as: UTF8.self) }),
                let storedPartitions = try store.meta(MetaName.partitionCount).flatMap(Self.decode),
                let incarnation = try store.meta(MetaName.incarnation).flatMap(Self.decode)
            else {
                throw ConfigError(
                    "\(databasePath) holds incomplete node state; restore it from a backup or remove the data dir to start as a new node"
                )
            }
            guard storedCluster == clusterName else {
                throw ConfigError("data dir \(dataDir) belongs to cluster '\(storedCluster)', not '\(clusterName)'")
            }
            guard storedPartitions == UInt64(partitions) else {
                throw ConfigError(
                    "data dir \(dataDir) was created with store.partitions = \(storedPartitions), not \(partitions); the partition count is fixed when a cluster is created"
                )
            }
            let ring = try store.meta(MetaName.ringState).flatMap {
                RingState(rawValue: String(decoding: $0, as: UTF8.self))
            }
            guard ring != .left else {
                throw ConfigError(
                    "this node left the cluster; its data dir \(dataDir) is out of date. Remove the data dir to add the host again as a new node"
                )
            }
            return NodeState(
                id: id, clusterName: clusterName, partitions: partitions, incarnation: incarnation,
                ring: ring ?? .member)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError("\(error)")
        }
    }

    /// The members' gossip addresses as last saved.
    func knownPeers() -> [Endpoint] {
        guard let bytes = try? store.meta(MetaName.knownPeers) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap {
            Endpoint(parsing: String($0))
        }
    }

    func saveKnownPeers(_ peers: [Endpoint]) throws(StoreError) {
        try store.setMeta(MetaName.knownPeers, Array(peers.map(\.description).joined(separator: "\n").utf8))
    }

    func saveRingState(_ state: RingState) throws(StoreError) {
        try store.setMeta(MetaName.ringState, Array(state.rawValue.utf8))
    }

    /// Durably records a raised incarnation.
    func saveIncarnation(_ incarnation: UInt64) throws(StoreError) {
        try store.setMeta(MetaName.incarnation, Self.encode(incarnation))
    }

    private static func encode(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    private static func decode(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
