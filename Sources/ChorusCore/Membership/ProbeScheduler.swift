/// Chooses whom to probe next: round-robin over a randomly shuffled list of the
/// probe-able members, reshuffled each time it is exhausted (SWIM §4.3, memberlist
/// `probe` / `resetNodes`). A member that joins mid-round is inserted at a random
/// position, so every member is probed within a bounded time of joining (SWIM §4.3:
/// at most `2n − 1` rounds) yet the order stays unpredictable.
struct ProbeScheduler: Sendable {
    private var order: [NodeID] = []
    private var index = 0

    /// The next member to probe, or nil when no candidate is probe-able.
    /// `candidates` lists the probe-able members in a deterministic (sorted) order.
    mutating func next(
        candidates: () -> [NodeID], isProbeable: (NodeID) -> Bool, random: inout SeededRandom
    ) -> NodeID? {
        for pass in 0..<2 {
            while index < order.count {
                let id = order[index]
                index += 1
                if isProbeable(id) { return id }
            }
            guard pass == 0 else { break }
            order = candidates()
            random.fisherYatesShuffle(&order)
            index = 0
        }
        return nil
    }

    /// Inserts a member new to the view at a random position.
    mutating func insert(_ id: NodeID, random: inout SeededRandom) {
        guard !order.contains(id) else { return }
        let position = random.uniformIndex(below: order.count + 1)
        order.insert(id, at: position)
        if position < index { index += 1 }
    }

    /// Drops a forgotten member.
    mutating func remove(_ id: NodeID) {
        guard let position = order.firstIndex(of: id) else { return }
        order.remove(at: position)
        if position < index { index -= 1 }
    }
}
