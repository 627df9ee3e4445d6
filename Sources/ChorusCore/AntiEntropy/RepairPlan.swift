/// A key of the store: bucket and key.
public struct RepairKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bucket: String
    public var key: String

    public init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    /// By bucket, then key (on UTF-8 bytes, the same on every platform).
    public static func < (lhs: RepairKey, rhs: RepairKey) -> Bool {
        if lhs.bucket != rhs.bucket { return lhs.bucket.utf8.lexicographicallyPrecedes(rhs.bucket.utf8) }
        return lhs.key.utf8.lexicographicallyPrecedes(rhs.key.utf8)
    }

    public var description: String { "\(bucket)/\(key)" }
}

/// What the bulk repair of one exchange moves (DESIGN §6), decided from the two sides'
/// key → version-digest lists for the differing segments (Riak's `aae_exchange`
/// compares the keys and clocks of the differing segments the same way before it
/// repairs).
///
/// - `missingHere`: keys only the peer holds; fetch them.
/// - `missingThere`: keys only we hold; send them.
/// - `different`: keys both hold at different digests. A digest says nothing about
///   which version is newer (and concurrent versions have no newer one), so both sides
///   send their copy and each merges the other's with its own (DVVSet `sync`, siblings
///   kept, tombstones winning only by causality).
///
/// Keys with equal digests on both sides are already in sync and move nowhere. Every
/// list is sorted by `RepairKey` order, so both sides plan the same repair.
public struct RepairPlan: Hashable, Sendable {
    public let missingHere: [RepairKey]
    public let missingThere: [RepairKey]
    public let different: [RepairKey]

    /// The plan for our `ours` and the peer's `theirs` digests.
    public init(ours: [RepairKey: UInt64], theirs: [RepairKey: UInt64]) {
        var missingHere: [RepairKey] = []
        var missingThere: [RepairKey] = []
        var different: [RepairKey] = []
        for (key, digest) in ours {
            if let other = theirs[key] {
                if other != digest { different.append(key) }
            } else {
                missingThere.append(key)
            }
        }
        for key in theirs.keys where ours[key] == nil {
            missingHere.append(key)
        }
        self.missingHere = missingHere.sorted()
        self.missingThere = missingThere.sorted()
        self.different = different.sorted()
    }

    /// The plan for two lists of (key, digest) pairs, as read from storage or received
    /// in a repair session. A key listed twice keeps its last digest.
    public init(ours: [(RepairKey, UInt64)], theirs: [(RepairKey, UInt64)]) {
        self.init(
            ours: Dictionary(ours, uniquingKeysWith: { _, last in last }),
            theirs: Dictionary(theirs, uniquingKeysWith: { _, last in last }))
    }

    /// Nothing to move: the segments hold the same keys at the same versions.
    public var isEmpty: Bool {
        missingHere.isEmpty && missingThere.isEmpty && different.isEmpty
    }

    /// Keys whose objects we send: those the peer lacks and those that differ.
    public var keysToSend: [RepairKey] {
        (missingThere + different).sorted()
    }

    /// Keys whose objects we ask the peer for: those we lack and those that differ.
    public var keysToFetch: [RepairKey] {
        (missingHere + different).sorted()
    }

    /// The peer's plan for the same lists: our sends are its fetches.
    public var mirrored: RepairPlan {
        RepairPlan(missingHere: missingThere, missingThere: missingHere, different: different)
    }

    private init(missingHere: [RepairKey], missingThere: [RepairKey], different: [RepairKey]) {
        self.missingHere = missingHere
        self.missingThere = missingThere
        self.different = different
    }
}
