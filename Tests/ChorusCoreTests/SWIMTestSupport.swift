import Testing

@testable import ChorusCore

/// Test node `n`: id `0:n`, name `node-n`, address `127.0.0.n:7946`.
func swimID(_ n: UInt64) -> NodeID { NodeID(high: 0, low: n) }

func swimAddress(_ n: UInt64) -> Endpoint { Endpoint(host: "127.0.0.\(n)", port: 7946) }

func swimMember(
    _ n: UInt64, incarnation: UInt64 = 0, status: MemberStatus = .alive, tags: [String: String] = [:]
) -> Member {
    Member(
        id: swimID(n), name: "node-\(n)", address: swimAddress(n), incarnation: incarnation,
        status: status, tags: tags)
}

func swimUpdate(
    _ n: UInt64, incarnation: UInt64 = 0, status: MemberStatus = .alive, from source: UInt64,
    address: Endpoint? = nil, tags: [String: String] = [:]
) -> MemberUpdate {
    var member = swimMember(n, incarnation: incarnation, status: status, tags: tags)
    if let address { member.address = address }
    return member.update(from: swimID(source))
}

func at(_ seconds: Double) -> MonotonicTime {
    MonotonicTime(nanoseconds: UInt64((seconds * 1e9).rounded()))
}

/// Node 1 knowing itself and the alive peers `2 ... count`.
func swimInstance(
    count: UInt64, settings: SWIMSettings = SWIMSettings(), seed: UInt64 = 42,
    now: MonotonicTime = .zero
) -> SWIMInstance {
    var instance = SWIMInstance(myself: swimMember(1), settings: settings, seed: seed, now: now)
    if count > 1 {
        _ = instance.mergeFullState((2...count).map { swimUpdate($0, from: $0) }, now: now)
    }
    return instance
}

extension SWIMInstance {
    func status(of n: UInt64) -> MemberStatus? { member(swimID(n))?.status }
}

extension [SWIMEffect] {
    var sends: [(messages: [SWIMMessage], to: Endpoint)] {
        compactMap {
            if case .send(let messages, let to) = $0 { (messages, to) } else { nil }
        }
    }

    var changes: [MemberChange] {
        compactMap {
            if case .memberChanged(let change) = $0 { change } else { nil }
        }
    }

    var tcpProbes: [(sequence: UInt64, target: NodeID)] {
        compactMap {
            if case .probeOverTCP(let sequence, let target, _) = $0 { (sequence, target) } else { nil }
        }
    }

    /// Every `(sequence, target)` pinged, with the address pinged.
    var pings: [(sequence: UInt64, target: NodeID, to: Endpoint)] {
        sends.flatMap { send in
            send.messages.compactMap {
                if case .ping(let sequence, let target) = $0 { (sequence, target, send.to) } else { nil }
            }
        }
    }

    var updates: [MemberUpdate] {
        sends.flatMap { send in
            send.messages.compactMap {
                if case .update(let update) = $0 { update } else { nil }
            }
        }
    }
}

/// Drives one instance through time, as if every peer not in `silent` answered
/// each ping at once. Returns every effect emitted.
@discardableResult
func advance(
    _ instance: inout SWIMInstance, to end: MonotonicTime, silent: Set<UInt64> = [],
    maxSteps: Int = 100_000
) -> [SWIMEffect] {
    var all: [SWIMEffect] = []
    for _ in 0..<maxSteps {
        let next = instance.nextDeadline
        guard next <= end else { break }
        let effects = instance.tick(now: next)
        all += effects
        for ping in effects.pings where !silent.contains(ping.target.low) {
            all += instance.receive(
                [.ack(sequence: ping.sequence)], from: ping.target, at: swimAddress(ping.target.low),
                now: next)
        }
    }
    all += instance.tick(now: end)
    return all
}

/// Several instances wired in-process: datagrams go through the codec (and are
/// checked against the payload limit) and arrive after a millisecond; silenced nodes
/// neither send, receive nor run (a crash).
struct SWIMTestCluster {
    var nodes: [SWIMInstance]
    var silenced: Set<Int> = []
    var now: MonotonicTime = .zero
    /// Every effect in order, for determinism checks.
    var log: [(node: Int, effect: SWIMEffect)] = []
    var oversized: [Int] = []
    private var inFlight: [(at: MonotonicTime, order: Int, to: Int, envelope: SWIMEnvelope, from: Endpoint)] = []
    private var order = 0
    private var pendingTCP: [(at: MonotonicTime, node: Int, sequence: UInt64, target: NodeID, reachable: Bool)] = []
    let latency = Duration.milliseconds(1)

    /// `count` nodes; each joins through node 0 by a push-pull exchange.
    init(count: Int, seed: UInt64, settings: SWIMSettings = SWIMSettings()) {
        nodes = (1...count).map {
            SWIMInstance(
                myself: swimMember(UInt64($0)), settings: settings, seed: seed &+ UInt64($0), now: .zero)
        }
        for i in 1..<count {
            let seedState = nodes[0].fullState()
            handle(i, nodes[i].mergeFullState(seedState, now: now))
            let joinerState = nodes[i].fullState()
            handle(0, nodes[0].mergeFullState(joinerState, now: now))
        }
    }

    func index(of address: Endpoint) -> Int? {
        nodes.firstIndex { $0.myself.address == address }
    }

    mutating func handle(_ node: Int, _ effects: [SWIMEffect]) {
        for effect in effects {
            log.append((node, effect))
            switch effect {
            case .send(let messages, let address):
                let envelope = SWIMEnvelope(
                    sender: nodes[node].myself.id, bootID: 1, sequence: UInt64(order), sentAt: 0,
                    messages: messages)
                let bytes = SWIMCodec.encode(envelope)
                if bytes.count > nodes[node].settings.maxPayloadBytes { oversized.append(bytes.count) }
                guard let decoded = try? SWIMCodec.decode(bytes), let to = index(of: address) else {
                    continue
                }
                order += 1
                inFlight.append((now + latency, order, to, decoded, nodes[node].myself.address))
            case .probeOverTCP(let sequence, let target, let address):
                let reachable = index(of: address).map { !silenced.contains($0) } ?? false
                pendingTCP.append((now + latency * 2, node, sequence, target, reachable))
            case .memberChanged:
                break
            }
        }
    }

    /// Runs the cluster until `end`.
    mutating func run(until end: MonotonicTime) {
        while true {
            var next = end
            for (i, node) in nodes.enumerated() where !silenced.contains(i) {
                next = min(next, node.nextDeadline)
            }
            for message in inFlight { next = min(next, message.at) }
            for answer in pendingTCP { next = min(next, answer.at) }
            now = max(now, next)
            let due = inFlight.filter { $0.at <= now }.sorted { ($0.at, $0.order) < ($1.at, $1.order) }
            inFlight.removeAll { $0.at <= now }
            for message in due where !silenced.contains(message.to) {
                guard let from = index(of: message.from), !silenced.contains(from) else { continue }
                handle(
                    message.to,
                    nodes[message.to].receive(
                        message.envelope.messages, from: message.envelope.sender, at: message.from, now: now))
            }
            let answers = pendingTCP.filter { $0.at <= now }
            pendingTCP.removeAll { $0.at <= now }
            for answer in answers where !silenced.contains(answer.node) {
                handle(
                    answer.node,
                    nodes[answer.node].tcpProbeAnswered(
                        sequence: answer.sequence, target: answer.target, reachable: answer.reachable, now: now)
                )
            }
            for i in nodes.indices where !silenced.contains(i) && nodes[i].nextDeadline <= now {
                handle(i, nodes[i].tick(now: now))
            }
            if now >= end { break }
        }
    }

    /// How node `viewer` sees node index `subject`.
    func status(of subject: Int, seenBy viewer: Int) -> MemberStatus? {
        nodes[viewer].member(nodes[subject].myself.id)?.status
    }
}
