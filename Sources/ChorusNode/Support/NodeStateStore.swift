import ChorusCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// This node's persistent identity: its id and the highest incarnation it has
/// used, in `<data_dir>/node.json`. A restart always comes back with a higher
/// incarnation than any state it gossiped before (SWIM §4.2: only the member
/// itself raises its incarnation, so it must never reuse one).
struct NodeState: Codable, Equatable {
    var id: String
    var name: String
    var clusterName: String
    var incarnation: UInt64
}

final class NodeStateStore {
    let dataDir: String
    private var lockDescriptor: Int32 = -1
    var path: String { dataDir + "/node.json" }

    init(dataDir: String) {
        self.dataDir = dataDir
    }

    /// Creates the data dir if needed and takes its lock, so two agents never share one.
    func lock() throws(ConfigError) {
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
        lockDescriptor = fd
    }

    /// Loads the state, or mints a new identity for a new data dir.
    func loadOrCreate(name: String, clusterName: String, using generator: inout some RandomNumberGenerator)
        throws(ConfigError) -> NodeState
    {
        guard FileManager.default.fileExists(atPath: path) else {
            return NodeState(
                id: NodeID(using: &generator).description, name: name, clusterName: clusterName, incarnation: 0)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read \(path)")
        }
        let state: NodeState
        do {
            state = try JSONDecoder().decode(NodeState.self, from: data)
        } catch {
            throw ConfigError("\(path) is corrupt (\(error)); restore it or remove the data dir to start as a new node")
        }
        guard NodeID(hex: state.id) != nil else { throw ConfigError("\(path) holds an invalid node id") }
        guard state.clusterName == clusterName else {
            throw ConfigError(
                "data dir \(dataDir) belongs to cluster '\(state.clusterName)', not '\(clusterName)'")
        }
        return state
    }

    func save(_ state: NodeState) throws(AtomicFile.WriteError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(state)) ?? Data()
        try AtomicFile.write(Array(data) + [0x0A], to: path)
    }
}
