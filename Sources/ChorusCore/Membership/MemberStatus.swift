/// A member's state in the SWIM view (SWIM §4.2, plus Chorus's graceful states).
///
/// Wire values: append only, the numbers are the protocol.
public enum MemberStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Answering probes, directly or indirectly.
    case alive = 0
    /// Failed a probe round; dead unless it refutes within the suspicion timeout.
    case suspect = 1
    /// Confirmed failed. Keeps its ring place (DESIGN §3): a crash moves no data.
    case dead = 2
    /// Announced a graceful stop (a restart is expected). Not probed, keeps its place.
    case stopped = 3
    /// Announced a graceful, permanent departure.
    case left = 4

    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .stopped: "stopped"
        case .left: "left"
        }
    }

    public init?(name: String) {
        guard let status = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = status
    }
}
