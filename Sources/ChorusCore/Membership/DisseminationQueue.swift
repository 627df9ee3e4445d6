/// The transmit-limited broadcast queue (SWIM §4.1 infection-style dissemination,
/// memberlist `queue.go` `TransmitLimitedQueue`).
///
/// Holds at most one update per member: a newer update about a member replaces the
/// queued one. Each update rides on `retransmitMult × ceil(log10(n + 1))` datagrams,
/// fewest-sent first (newest first among equals), then is dropped.
struct DisseminationQueue: Sendable {
    /// An update's bookkeeping, kept apart from the update itself so `take` walks
    /// plain values (no reference counting) when it picks the fewest-sent.
    private struct Entry: Sendable {
        var transmits: Int
        /// Insertion order, to prefer newer updates among equally-sent ones.
        var order: UInt64
        /// Encoded size of `.update(update)` inside an envelope.
        var size: Int
    }

    private var entries: [NodeID: Entry] = [:]
    private var updates: [NodeID: MemberUpdate] = [:]
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// The queued update about `id`, if any.
    func queued(about id: NodeID) -> MemberUpdate? { updates[id] }

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
            remove(about: update.id)
            return
        }
        nextOrder += 1
        entries[update.id] = Entry(transmits: 0, order: nextOrder, size: size)
        updates[update.id] = update
    }

    /// Drops any queued update about `id`.
    mutating func remove(about id: NodeID) {
        entries[id] = nil
        updates[id] = nil
    }

    /// Takes the updates to piggyback on one datagram with `budget` bytes left for
    /// them: fewest-transmitted first, each counted as sent once, skipping those that
    /// do not fit in what remains. Updates that reach `limit` transmits are dropped.
    /// Updates about members in `excluding` (already in the datagram) are left queued.
    ///
    /// Only the head of that order fits in one datagram, so it is drawn from a heap
    /// (O(n + k log n)) rather than by sorting the whole queue: with a thousand
    /// members queued after a join, the sort dominated the simulator's profile.
    mutating func take(budget: Int, limit: Int, excluding: Set<NodeID> = []) -> [MemberUpdate] {
        guard budget > 0, !entries.isEmpty else { return [] }
        var heap = entries.map {
            Candidate(id: $0.key, transmits: $0.value.transmits, order: $0.value.order, size: $0.value.size)
        }
        let smallest = heap.reduce(Int.max) { min($0, $1.size) }
        for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { Self.siftDown(&heap, from: index) }
        var remaining = budget
        var taken: [MemberUpdate] = []
        while remaining >= smallest, let candidate = Self.popFirst(&heap) {
            guard candidate.size <= remaining, !excluding.contains(candidate.id),
                let update = updates[candidate.id]
            else { continue }
            remaining -= candidate.size
            taken.append(update)
            let transmits = candidate.transmits + 1
            if transmits >= limit {
                remove(about: candidate.id)
            } else {
                entries[candidate.id]?.transmits = transmits
            }
        }
        return taken
    }

    /// An entry's sort key, without the update (no reference counting in the heap).
    private struct Candidate {
        let id: NodeID
        let transmits: Int
        let order: UInt64
        let size: Int

        /// Fewest transmits first, then newest.
        func precedes(_ other: Candidate) -> Bool {
            transmits != other.transmits ? transmits < other.transmits : order > other.order
        }
    }

    private static func siftDown(_ heap: inout [Candidate], from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var first = left
            if left + 1 < heap.count, heap[left + 1].precedes(heap[left]) { first = left + 1 }
            guard heap[first].precedes(heap[parent]) else { return }
            heap.swapAt(first, parent)
            parent = first
        }
    }

    private static func popFirst(_ heap: inout [Candidate]) -> Candidate? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        siftDown(&heap, from: 0)
        return first
    }
}
