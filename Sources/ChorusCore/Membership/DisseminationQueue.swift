/// The transmit-limited broadcast queue (SWIM §4.1 infection-style dissemination,
/// memberlist `queue.go` `TransmitLimitedQueue`).
///
/// Holds at most one update per member: a newer update about a member replaces the
/// queued one. Each update rides on `retransmitMult × ceil(log10(n + 1))` datagrams,
/// fewest-sent first (newest first among equals), then is dropped.
struct DisseminationQueue: Sendable {
    private struct Entry: Sendable {
        var update: MemberUpdate
        var transmits: Int
        /// Insertion order, to prefer newer updates among equally-sent ones.
        var order: UInt64
        /// Encoded size of `.update(update)` inside an envelope.
        var size: Int
    }

    private var entries: [NodeID: Entry] = [:]
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// The queued update about `id`, if any.
    func queued(about id: NodeID) -> MemberUpdate? { entries[id]?.update }

    /// How many datagrams the queued update about `id` has ridden on.
    func transmits(about id: NodeID) -> Int? { entries[id]?.transmits }

    /// memberlist `retransmitLimit`: `retransmitMult × ceil(log10(n + 1))`.
    static func retransmitLimit(retransmitMult: Int, members: Int) -> Int {
        // ceil(log10(n + 1)) in integers: the number of decimal digits of n, for n ≥ 1.
        var digits = 0
        var power = 1
        while power < members + 1 {
            power *= 10
            digits += 1
        }
        return max(0, retransmitMult) * digits
    }

    /// Queues `update`, replacing any queued update about the same member. Updates
    /// too large for any datagram (`maxSize`) are not queued: push-pull carries them.
    mutating func enqueue(_ update: MemberUpdate, maxSize: Int) {
        let size = SWIMCodec.encodedSize(of: .update(update))
        guard size <= maxSize else {
            entries[update.id] = nil
            return
        }
        nextOrder += 1
        entries[update.id] = Entry(update: update, transmits: 0, order: nextOrder, size: size)
    }

    /// Drops any queued update about `id`.
    mutating func remove(about id: NodeID) {
        entries[id] = nil
    }

    /// Takes the updates to piggyback on one datagram with `budget` bytes left for
    /// them: fewest-transmitted first, each counted as sent once, skipping those that
    /// do not fit in what remains. Updates that reach `limit` transmits are dropped.
    /// Updates about members in `excluding` (already in the datagram) are left queued.
    mutating func take(budget: Int, limit: Int, excluding: Set<NodeID> = []) -> [MemberUpdate] {
        guard budget > 0, !entries.isEmpty else { return [] }
        let ordered = entries.values.sorted {
            ($0.transmits, $1.order) < ($1.transmits, $0.order)
        }
        var remaining = budget
        var taken: [MemberUpdate] = []
        for entry in ordered where entry.size <= remaining && !excluding.contains(entry.update.id) {
            remaining -= entry.size
            taken.append(entry.update)
            let transmits = entry.transmits + 1
            if transmits >= limit {
                entries[entry.update.id] = nil
            } else {
                entries[entry.update.id]?.transmits = transmits
            }
        }
        return taken
    }
}
