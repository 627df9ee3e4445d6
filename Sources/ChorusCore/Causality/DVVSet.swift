/// A dotted version vector set: the values stored for one key together with their
/// causal history, from Almeida, Baquero, Gonçalves, Preguiça and Fonte, "Scalable and
/// Accurate Causality Tracking for Eventually Consistent Stores" (DAIS 2014), in the
/// form of Riak's `dvvset.erl` (DESIGN §4).
///
/// One entry per replica that has coordinated a write, in replica id order. The entry
/// `(r, n, [v_n, v_{n-1}, …, v_{n-k+1}])` says that the events (dots) `r:1 … r:n` of
/// replica `r` are all known, and that the newest `k` of them are still live, with
/// those values, newest first; older dots were superseded. The version vector of all
/// counters (`join`) is the causal context the store returns on a read (the paper's
/// "DVVSet" section: a DVVSet is a compact set of DVVs that share one vector, each value
/// keeping its own dot implicitly by its position in the list).
///
/// Anonymous values have no dot of their own; their history is at most `join`. They
/// appear in client-side clocks (`new`, `reconcile`, and `lww` when the winner is
/// anonymous) and become dotted when a coordinator applies `update`. Clocks produced by
/// `update` and `sync` from dotted clocks never hold anonymous values.
///
/// Invariants: entries strictly ascending by replica, every counter ≥ 1, and every
/// entry holds at most `counter` values.
public struct DVVSet<Value: Hashable & Sendable>: Sendable {
    /// One replica's events: all of `1…counter` known, the newest `values.count` live.
    public struct Entry: Hashable, Sendable {
        public let replica: NodeID
        public let counter: UInt64
        /// Live values, newest first: `values[i]` is the value of dot `counter - i`.
        public let values: [Value]

        init(replica: NodeID, counter: UInt64, values: [Value]) {
            self.replica = replica
            self.counter = counter
            self.values = values
        }

        /// The largest dot of this replica that is known but not live.
        var discardedUpTo: UInt64 { counter - UInt64(values.count) }
    }

    public private(set) var entries: [Entry]
    /// Values without a dot (see the type's documentation).
    public private(set) var anonymous: [Value]

    /// The empty clock: no value, no history (a key never written).
    public init() {
        entries = []
        anonymous = []
    }

    /// A clock from parts, checked against the invariants (entries strictly ascending by
    /// replica, counters ≥ 1, at most `counter` values per entry); `nil` when they do not
    /// hold. Duplicate anonymous values are merged.
    public init?(entries: [Entry], anonymous: [Value] = []) {
        for (index, entry) in entries.enumerated() {
            guard entry.counter >= 1, UInt64(entry.values.count) <= entry.counter else { return nil }
            if index > 0, !(entries[index - 1].replica < entry.replica) { return nil }
        }
        self.entries = entries
        self.anonymous = Self.unique(anonymous)
    }

    init(unchecked entries: [Entry], anonymous: [Value]) {
        self.entries = entries
        self.anonymous = anonymous
    }

    // MARK: - Client writes

    /// A client write of `value` with no causal context (a blind write): it supersedes
    /// nothing once the coordinator `update`s it (dvvset:new/1).
    public static func new(_ value: Value) -> DVVSet {
        DVVSet(unchecked: [], anonymous: [value])
    }

    /// A client write of `value` that read `context` (the `join` of what it read): once
    /// the coordinator `update`s it, it supersedes exactly the values that context covers
    /// (dvvset:new/2; the paper's kernel `update` takes this context).
    public static func new(_ value: Value, context: VersionVector) -> DVVSet {
        let entries = context.sortedEntries.map { Entry(replica: $0.id, counter: $0.counter, values: []) }
        return DVVSet(unchecked: entries, anonymous: [value])
    }

    /// Entry constructor for clocks built by hand (tests, tools).
    public static func entry(_ replica: NodeID, counter: UInt64, values: [Value]) -> Entry {
        Entry(replica: replica, counter: counter, values: values)
    }

    // MARK: - Coordinator update

    /// The coordinator's write (the paper's kernel `update`; dvvset:update/3): merges the
    /// client clock `new` (from `new(_:context:)`) into this stored clock and gives each
    /// of its anonymous values the next dot of `replica`, which must be the coordinating
    /// replica.
    ///
    /// Stored values whose dots the client context covers are dropped; values it did not
    /// cover (written concurrently, or not yet seen by the replica the client read from)
    /// stay as siblings of the new one. The new dot's counter is one past everything known
    /// about `replica` here or in the context, so the write is not dominated by any
    /// existing clock.
    ///
    /// Two deliberate differences from dvvset.erl, both non-trapping generalisations: a
    /// client clock with several anonymous values mints one dot per value (dvvset.erl
    /// requires exactly one), and one with none only merges its context. Stored anonymous
    /// values (present only if a reconciled clock was stored without `update`) are
    /// dropped when the context covers this clock's `join`, since the client then saw
    /// them, and otherwise kept.
    public mutating func update(_ new: DVVSet, replica: NodeID) {
        let storedJoin = join
        let contextDescends = VersionVector(pairs: new.entries.map { ($0.replica, $0.counter) })
            .descends(storedJoin)
        var merged = Self.syncEntries(
            new.entries.map { Entry(replica: $0.replica, counter: $0.counter, values: []) }, entries)
        for value in new.anonymous {
            merged = Self.event(merged, replica: replica, value: value)
        }
        entries = merged
        if contextDescends { anonymous = [] }
    }

    /// `update` on a copy.
    public func updated(_ new: DVVSet, replica: NodeID) -> DVVSet {
        var copy = self
        copy.update(new, replica: replica)
        return copy
    }

    /// Appends `value` as the next dot of `replica` (dvvset:event/3).
    static func event(_ entries: [Entry], replica: NodeID, value: Value) -> [Entry] {
        var result = entries
        var low = 0
        var high = result.count
        while low < high {
            let mid = (low + high) / 2
            if result[mid].replica < replica { low = mid + 1 } else { high = mid }
        }
        if low < result.count, result[low].replica == replica {
            let old = result[low]
            // A counter at UInt64.max cannot advance; saturate rather than trap (2^64 writes
            // through one replica do not happen; a hostile clock still must not crash us).
            let counter = old.counter == .max ? old.counter : old.counter + 1
            var values = [value] + old.values
            if UInt64(values.count) > counter { values.removeLast() }
            result[low] = Entry(replica: replica, counter: counter, values: values)
        } else {
            result.insert(Entry(replica: replica, counter: 1, values: [value]), at: low)
        }
        return result
    }

    // MARK: - Sync

    /// Merges two replicas' clocks for the same key (the paper's kernel `sync`;
    /// dvvset:sync/2): each value survives unless the other side has seen its dot and
    /// superseded it. For dotted clocks (everything a store holds) this is the join of a
    /// semilattice, so it is commutative, associative and idempotent: anti-entropy, read
    /// repair and hinted handoff may apply it in any order, any number of times.
    ///
    /// Anonymous values follow dvvset.erl: those of a side whose entries the other
    /// strictly dominates are dropped, otherwise both sides' are kept (deduplicated). This
    /// part is commutative and idempotent but, the values having no dots, not associative
    /// in every case; stored clocks have none.
    public func sync(_ other: DVVSet) -> DVVSet {
        let anonymous: [Value]
        if less(other) {
            anonymous = other.anonymous
        } else if other.less(self) {
            anonymous = self.anonymous
        } else {
            anonymous = Self.unique(self.anonymous + other.anonymous)
        }
        return DVVSet(unchecked: Self.syncEntries(entries, other.entries), anonymous: anonymous)
    }

    /// `sync` in place.
    public mutating func formSync(_ other: DVVSet) {
        self = sync(other)
    }

    /// `sync` over any number of clocks (dvvset:sync/1); the empty clock for none.
    public static func sync<S: Sequence>(_ clocks: S) -> DVVSet where S.Element == DVVSet {
        clocks.reduce(DVVSet()) { $0.sync($1) }
    }

    static func syncEntries(_ left: [Entry], _ right: [Entry]) -> [Entry] {
        var result: [Entry] = []
        result.reserveCapacity(max(left.count, right.count))
        var i = 0
        var j = 0
        while i < left.count, j < right.count {
            if left[i].replica < right[j].replica {
                result.append(left[i])
                i += 1
            } else if right[j].replica < left[i].replica {
                result.append(right[j])
                j += 1
            } else {
                result.append(mergeEntry(left[i], right[j]))
                i += 1
                j += 1
            }
        }
        result.append(contentsOf: left[i...])
        result.append(contentsOf: right[j...])
        return result
    }

    /// dvvset:merge/5. The live dots after the merge are those above both sides'
    /// discarded prefixes, up to the larger counter: a dot one side has discarded stays
    /// discarded (no resurrection). Live dots are the same values on both sides (a dot is
    /// minted once), so taking them from the side with the larger counter is exact.
    static func mergeEntry(_ a: Entry, _ b: Entry) -> Entry {
        let (high, low) = a.counter >= b.counter ? (a, b) : (b, a)
        let floor = max(high.discardedUpTo, low.discardedUpTo)
        let live = Int(high.counter - floor)
        return Entry(replica: high.replica, counter: high.counter, values: Array(high.values.prefix(live)))
    }

    // MARK: - Reads

    /// The causal context for a reader (the paper's kernel `join`; dvvset:join/1): every
    /// dot this clock knows, as a version vector.
    public var join: VersionVector {
        VersionVector(pairs: entries.map { ($0.replica, $0.counter) })
    }

    /// Every live value, the siblings a read returns (dvvset:values/1): anonymous values
    /// first, then each entry's values newest first, entries in replica order.
    public var values: [Value] {
        anonymous + entries.flatMap(\.values)
    }

    /// Number of live values (dvvset:size/1).
    public var size: Int {
        anonymous.count + entries.reduce(0) { $0 + $1.values.count }
    }

    /// The replicas that have coordinated writes (dvvset:ids/1), in id order.
    public var ids: [NodeID] { entries.map(\.replica) }

    /// How many events of `replica` this clock knows; 0 for an unknown replica.
    public func counter(for replica: NodeID) -> UInt64 {
        entries.first { $0.replica == replica }?.counter ?? 0
    }

    // MARK: - Resolution

    /// Resolves siblings by last-writer-wins (dvvset:lww/2): keeps the single value for
    /// which `isNewer` says no other value is newer, with the whole history.
    /// `isNewer(a, b)` is true when `a` must win over `b`; it must be a strict total
    /// order for the result to be independent of sibling order.
    ///
    /// A dotted winner stays in its replica's entry, now the only live value there; as in
    /// dvvset.erl it then stands for that entry's newest dot, which may have been another
    /// value's. An lww-resolved clock is therefore only merged exactly with `lwwMerged`,
    /// which compares values rather than dots; `sync` of a resolved clock with an
    /// unresolved one can keep a loser. An anonymous winner becomes an anonymous value
    /// over `join`. A clock without values is returned unchanged.
    public func lww(_ isNewer: (Value, Value) -> Bool) -> DVVSet {
        lwwMerged(DVVSet(), isNewer)
    }

    /// Last-writer-wins merge of two replicas' clocks: the newest value (by `isNewer`)
    /// among the values of both, with both histories. No value is dropped for causal
    /// reasons, only for being older, so this is the merge of an LWW register: with a
    /// strict total order it is commutative, associative and idempotent, even over
    /// clocks resolved by `lww` (whose dots no longer identify their values).
    public func lwwMerged(_ other: DVVSet, _ isNewer: (Value, Value) -> Bool) -> DVVSet {
        var best: (value: Value, replica: NodeID?)?
        func consider(_ value: Value, _ replica: NodeID?) {
            guard let current = best else {
                best = (value, replica)
                return
            }
            if isNewer(value, current.value) {
                best = (value, replica)
            } else if !isNewer(current.value, value), current.replica == nil, replica != nil {
                // The same value dotted and anonymous: keep the dotted copy.
                best = (value, replica)
            }
        }
        for clock in [self, other] {
            for value in clock.anonymous { consider(value, nil) }
            for entry in clock.entries {
                for value in entry.values { consider(value, entry.replica) }
            }
        }
        let history = Self.syncEntries(entries, other.entries)
        guard let best else { return DVVSet(unchecked: history, anonymous: []) }
        let resolved = history.map {
            Entry(
                replica: $0.replica, counter: $0.counter,
                values: $0.replica == best.replica ? [best.value] : [])
        }
        return DVVSet(unchecked: resolved, anonymous: best.replica == nil ? [best.value] : [])
    }

    /// Resolves siblings with an application merge (dvvset:reconcile/2): a client clock
    /// holding `merge(values)` as an anonymous value over `join`. Hand it to `update` at
    /// a coordinator to store it as a new dot that supersedes every merged sibling.
    public func reconcile(_ merge: ([Value]) -> Value) -> DVVSet {
        DVVSet.new(merge(values), context: join)
    }

    // MARK: - Comparisons (on the histories, not the values)

    /// The history of `self` is strictly contained in that of `other`
    /// (dvvset:less/2): every counter ≤, and the histories differ.
    public func less(_ other: DVVSet) -> Bool {
        other.greater(self, strictly: true)
    }

    /// The history of `self` contains that of `other`: every counter ≥. Reflexive.
    public func descends(_ other: DVVSet) -> Bool {
        greater(other, strictly: false)
    }

    /// Same counters and the same number of live values per replica (dvvset:equal/2):
    /// the same history, and, between clocks of one key, the same dotted values.
    public func equal(_ other: DVVSet) -> Bool {
        entries.count == other.entries.count
            && zip(entries, other.entries).allSatisfy {
                $0.replica == $1.replica && $0.counter == $1.counter && $0.values.count == $1.values.count
            }
    }

    /// Neither history contains the other.
    public func concurrent(with other: DVVSet) -> Bool {
        !descends(other) && !other.descends(self)
    }

    /// Pointwise counters of `self` ≥ those of `other`, and (when `strictly`) not equal.
    private func greater(_ other: DVVSet, strictly: Bool) -> Bool {
        var i = 0
        var j = 0
        var strict = false
        while j < other.entries.count {
            guard i < entries.count else { return false }
            let mine = entries[i]
            let theirs = other.entries[j]
            if mine.replica < theirs.replica {
                strict = true
                i += 1
            } else if theirs.replica < mine.replica {
                return false
            } else {
                if mine.counter < theirs.counter { return false }
                if mine.counter > theirs.counter { strict = true }
                i += 1
                j += 1
            }
        }
        if i < entries.count { strict = true }
        return strictly ? strict : true
    }

    // MARK: - Helpers

    static func unique(_ values: [Value]) -> [Value] {
        var seen = Set<Value>()
        return values.filter { seen.insert($0).inserted }
    }
}

extension DVVSet: Equatable {
    /// Same entries (replicas, counters, values in order) and the same anonymous values
    /// in any order.
    public static func == (lhs: DVVSet, rhs: DVVSet) -> Bool {
        lhs.entries == rhs.entries && Set(lhs.anonymous) == Set(rhs.anonymous)
            && lhs.anonymous.count == rhs.anonymous.count
    }
}

extension DVVSet: CustomStringConvertible {
    public var description: String {
        let parts = entries.map { "\($0.replica):\($0.counter)\($0.values)" }
        return "DVVSet(\(parts.joined(separator: ", ")); anonymous: \(anonymous))"
    }
}
