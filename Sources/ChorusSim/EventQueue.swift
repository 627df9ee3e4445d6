/// The discrete-event scheduler's queue: a binary min-heap keyed by `(time, sequence)`.
///
/// The sequence number is assigned at insertion, so events due at the same instant
/// run in the order they were scheduled and the order never depends on anything but
/// the run itself (no hashing, no addresses): the heart of the simulator's
/// determinism. Hand-written to keep ChorusSim's dependency list at ChorusCore only.
struct EventQueue<Payload> {
    struct Entry {
        let time: UInt64
        let sequence: UInt64
        let payload: Payload

        func precedes(_ other: Entry) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    private var heap: [Entry] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }

    /// The time of the earliest event, if any.
    var nextTime: UInt64? { heap.first?.time }

    mutating func schedule(_ payload: Payload, at time: UInt64) {
        heap.append(Entry(time: time, sequence: nextSequence, payload: payload))
        nextSequence += 1
        siftUp(heap.count - 1)
    }

    /// Removes and returns the earliest event.
    mutating func popFirst() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
        return first
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var smallest = left
            let right = left + 1
            if right < count, heap[right].precedes(heap[left]) { smallest = right }
            guard heap[smallest].precedes(heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
