/// A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014,
/// the HLC algorithm): timestamps that never go backwards, stay close to physical
/// time, and order every event after the events it has heard of.
///
/// Pure: the shell passes the wall clock reading (nanoseconds since the Unix epoch) in.
///
/// Drift bound: a remote timestamp more than `maxDriftNanos` ahead of the local wall
/// clock is still witnessed, but clamped to `wall + maxDriftNanos`, and the outcome
/// reports by how much it was clamped, so the shell can log and count it. One node with
/// a clock set far into the future therefore cannot drag every other clock (and every
/// later LWW stamp) with it; the cost is that the clamped witness does not order this
/// node's next events after that remote event (its data keeps the remote's own stamp).
/// A local wall clock that goes backwards is absorbed as the paper prescribes: the
/// physical part holds and the logical counter advances, so readings stay monotonic.
public struct HybridLogicalClock: Sendable {
    /// Default drift bound: 60 seconds.
    public static let defaultMaxDriftNanos: UInt64 = 60_000_000_000

    /// The latest timestamp issued or witnessed.
    public private(set) var last: HLCTimestamp
    /// How far ahead of the local wall clock a witnessed remote timestamp may move it.
    public var maxDriftNanos: UInt64

    /// What `witness` did.
    public struct Witness: Hashable, Sendable {
        /// The clock's new reading: after the remote (or after its clamped bound).
        public var timestamp: HLCTimestamp
        /// How many nanoseconds of the remote's physical time lay beyond
        /// `wall + maxDriftNanos` and were ignored; 0 when within the bound.
        public var clampedNanos: UInt64

        public var wasClamped: Bool { clampedNanos > 0 }
    }

    /// A clock that has issued nothing yet, or resumes after `last` (persisted by the
    /// shell to stay monotonic across restarts).
    public init(last: HLCTimestamp = .zero, maxDriftNanos: UInt64 = defaultMaxDriftNanos) {
        self.last = last
        self.maxDriftNanos = maxDriftNanos
    }

    /// A timestamp for a local or send event: greater than every earlier reading, and at
    /// least the wall clock (the paper's send/local rule).
    public mutating func now(wall: UInt64) -> HLCTimestamp {
        if wall > last.wallNanos {
            last = HLCTimestamp(wallNanos: wall, logical: 0)
        } else {
            last = last.successor
        }
        return last
    }

    /// Updates the clock on receiving `remote` (the paper's receive rule): the new reading
    /// is greater than both the previous reading and `remote` (unless clamped, see the
    /// type's documentation), and at least the wall clock.
    @discardableResult
    public mutating func witness(_ remote: HLCTimestamp, wall: UInt64) -> Witness {
        let bound = wall.addingReportingOverflow(maxDriftNanos)
        let limit = bound.overflow ? UInt64.max : bound.partialValue
        var remote = remote
        var clamped: UInt64 = 0
        if remote.wallNanos > limit {
            clamped = remote.wallNanos - limit
            remote = HLCTimestamp(wallNanos: limit, logical: 0)
        }
        let physical = max(last.wallNanos, remote.wallNanos, wall)
        if physical == last.wallNanos && physical == remote.wallNanos {
            last = HLCTimestamp(wallNanos: physical, logical: max(last.logical, remote.logical)).successor
        } else if physical == last.wallNanos {
            last = last.successor
        } else if physical == remote.wallNanos {
            last = remote.successor
        } else {
            last = HLCTimestamp(wallNanos: physical, logical: 0)
        }
        return Witness(timestamp: last, clampedNanos: clamped)
    }
}
