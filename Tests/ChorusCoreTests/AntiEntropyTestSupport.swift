@testable import ChorusCore

/// Helpers shared by the anti-entropy suites (tictac trees, exchanges, repair plans).

/// The seeded generator these suites draw from: the causality suites' (same sequence).
typealias AERandom = CausalRNG

/// A replica's key → version-digest map.
typealias AEKeySet = [RepairKey: UInt64]

/// `count` random keys over a few buckets, with random digests.
func aeRandomKeys(_ count: Int, random: inout AERandom) -> AEKeySet {
    var keys: AEKeySet = [:]
    while keys.count < count {
        let key = RepairKey(bucket: "b\(random.below(3))", key: "key-\(random.next() % 1_000_000)")
        keys[key] = random.next()
    }
    return keys
}

/// The tree of `keys`, inserted in `order` (default: sorted).
func aeTree(_ keys: AEKeySet, shape: TictacShape = .standard, order: [RepairKey]? = nil) -> TictacTree {
    var tree = TictacTree(shape: shape)
    for key in order ?? keys.keys.sorted() {
        tree.insert(bucket: key.bucket, key: key.key, digest: keys[key]!)
    }
    return tree
}

/// `keys` with `k` distinct keys changed (a new digest, removed, or a new key added),
/// and the segments those changes fall in.
func aeDiverge(_ keys: AEKeySet, k: Int, shape: TictacShape = .standard, random: inout AERandom) -> (
    AEKeySet, Set<Int>
) {
    var changed = keys
    var touched = Set<RepairKey>()
    var segments = Set<Int>()
    let existing = keys.keys.sorted()
    while touched.count < k {
        let key: RepairKey
        switch random.below(3) {
        case 0:
            key = existing[random.below(existing.count)]
            guard !touched.contains(key) else { continue }
            changed[key] = random.next()
        case 1:
            key = existing[random.below(existing.count)]
            guard !touched.contains(key) else { continue }
            changed[key] = nil
        default:
            key = RepairKey(bucket: "new", key: "added-\(random.next())")
            changed[key] = random.next()
        }
        touched.insert(key)
        segments.insert(TictacTree.segment(bucket: key.bucket, key: key.key, shape: shape))
    }
    return (changed, segments)
}

/// The outcome of an in-process exchange between two trees.
struct AEExchangeRun {
    var initiator: TreeExchange.Effect?
    var responder: TreeExchange.Effect?
    /// Every message put on the wire, dropped ones included, in send order.
    var sent: [ExchangeMessage] = []
    /// Every encoded message's size.
    var sizes: [Int] = []
    var dropped = 0
    var now = MonotonicTime.zero
    var initiatorState: TreeExchange?
    var responderState: TreeExchange?
}

/// Runs an exchange between `ours` (initiator) and `theirs` (responder) on a simulated
/// clock. Every message goes through the codec; `drop(message, sequence)` decides which
/// datagrams are lost (`sequence` counts sends from 0). Messages are delivered in waves,
/// and time advances to the next deadline when nothing is in flight.
func aeRunExchange(
    ours: TictacTree, theirs: TictacTree, settings: TreeExchange.Settings = TreeExchange.Settings(),
    partition: Int = 7, exchangeID: UInt64 = 0xAE,
    drop: (ExchangeMessage, Int) -> Bool = { _, _ in false },
    duplicate: Bool = false
) throws -> AEExchangeRun {
    var run = AEExchangeRun()
    var initiator = TreeExchange(initiating: exchangeID, partition: partition, tree: ours, settings: settings)
    var responder: TreeExchange?
    // (toResponder, bytes)
    var inFlight: [(Bool, [UInt8])] = []

    func handle(_ effects: [TreeExchange.Effect], fromInitiator: Bool, run: inout AEExchangeRun) {
        for effect in effects {
            switch effect {
            case .send(let message):
                let bytes = ExchangeCodec.encode(message)
                let sequence = run.sent.count
                run.sent.append(message)
                run.sizes.append(bytes.count)
                if drop(message, sequence) {
                    run.dropped += 1
                } else {
                    inFlight.append((fromInitiator, bytes))
                    if duplicate { inFlight.append((fromInitiator, bytes)) }
                }
            case .finished, .failed:
                if fromInitiator { run.initiator = effect } else { run.responder = effect }
            }
        }
    }

    handle(initiator.start(now: run.now), fromInitiator: true, run: &run)
    for _ in 0..<10_000 {
        if initiator.isDone, responder?.isDone ?? true, inFlight.isEmpty { break }
        if inFlight.isEmpty {
            let deadlines = [initiator.nextDeadline, responder?.nextDeadline].compactMap { $0 }
            guard let next = deadlines.min() else { break }
            run.now = next
            handle(initiator.tick(now: run.now), fromInitiator: true, run: &run)
            if var side = responder {
                handle(side.tick(now: run.now), fromInitiator: false, run: &run)
                responder = side
            }
            continue
        }
        let wave = inFlight
        inFlight = []
        for (toResponder, bytes) in wave {
            let message = try ExchangeCodec.decode(bytes)
            if toResponder {
                var side =
                    responder
                    ?? TreeExchange(
                        responding: message.exchangeID, partition: message.partition, tree: theirs, settings: settings)
                if responder == nil { _ = side.start(now: run.now) }
                handle(side.received(message, now: run.now), fromInitiator: false, run: &run)
                responder = side
            } else {
                handle(initiator.received(message, now: run.now), fromInitiator: true, run: &run)
            }
        }
    }
    run.initiatorState = initiator
    run.responderState = responder
    return run
}

/// Replica `n` of a test cluster.
func aeNode(_ n: UInt64) -> NodeID {
    NodeID(high: 0xAE, low: n)
}

func aeStamp(_ wall: UInt64, node: UInt64 = 1) -> LWWStamp {
    LWWStamp(timestamp: HLCTimestamp(wallNanos: wall, logical: 0), node: aeNode(node))
}
