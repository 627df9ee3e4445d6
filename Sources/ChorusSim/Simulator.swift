import ChorusCore

/// Runs many nodes' unmodified `SWIMInstance` cores in one process over a simulated
/// network and clock (DESIGN §1), in the spirit of FoundationDB's simulation testing.
///
/// A discrete-event loop pops the earliest event of `EventQueue` (keyed by time and
/// scheduling order), hands it to the core it concerns, and executes the effects:
/// `.send` becomes zero, one or two future `.datagram` events (loss, latency,
/// duplication, reordering, partitions); `.probeOverTCP` an answer one round trip
/// later (or a timeout when the target is down, paused or cut off); `.memberChanged`
/// updates `Observations`, where the invariants are checked as the run goes. One
/// `SeededRandom`, seeded from the scenario, draws every random choice — the seeds of
/// the cores included — so a run replays exactly from its seed, and `TraceDigest`
/// proves it.
public final class Simulator {
    public let scenario: Scenario
    public internal(set) var now: MonotonicTime = .zero
    let end: MonotonicTime

    var nodes: [SWIMInstance] = []
    let ids: [NodeID]
    let addresses: [Endpoint]
    let indexByAddress: [Endpoint: Int]
    var crashed: [Bool]
    var paused: [Bool]
    var pauseEnds: [MonotonicTime]
    var pauseHistory: [[(start: MonotonicTime, end: MonotonicTime)]]
    /// A slow node's inbound lag (nil when not slow), its timers' lag, when it ends.
    var slowLag: [Duration?]
    var slowTimerLag: [Duration]
    var slowEnds: [MonotonicTime]
    var slowHistory: [[(start: MonotonicTime, end: MonotonicTime)]]
    /// Inbounds a (recently) slow node has yet to read, and when it reads the last one.
    var backlog: [Int]
    var backlogUntil: [MonotonicTime]
    /// When a partition that cut the node off last healed.
    var lastCutOff: [MonotonicTime?]
    var pending: [[Inbound]]
    var tickGeneration: [UInt32]
    var scheduledTick: [UInt64]
    var datagramSequence: [UInt64]

    var queue = EventQueue<SimEvent>()
    var random: SeededRandom
    let network: SimNetwork
    var partitions: PartitionTable
    var observations: Observations
    var traffic = TrafficMeter()
    var digest = TraceDigest()
    public internal(set) var events = 0
    public internal(set) var trace: [String] = []
    var wallSeconds = 0.0

    static let idHigh: UInt64 = 0x4348_4F52_5553_494D  // "CHORUSIM"

    public init(_ scenario: Scenario) {
        precondition(scenario.nodes >= 1, "a scenario needs at least one node")
        self.scenario = scenario
        let count = scenario.nodes
        end = .zero + scenario.duration
        random = SeededRandom(seed: scenario.seed)
        ids = (0..<count).map { NodeID(high: Self.idHigh, low: UInt64($0)) }
        addresses = (0..<count).map {
            Endpoint(host: "10.\(($0 >> 16) & 255).\(($0 >> 8) & 255).\($0 & 255)", port: 7946)
        }
        var byAddress: [Endpoint: Int] = [:]
        for (index, address) in addresses.enumerated() { byAddress[address] = index }
        indexByAddress = byAddress
        crashed = [Bool](repeating: false, count: count)
        paused = crashed
        pauseEnds = [MonotonicTime](repeating: .zero, count: count)
        pauseHistory = [[(start: MonotonicTime, end: MonotonicTime)]](repeating: [], count: count)
        pending = [[Inbound]](repeating: [], count: count)
        slowLag = [Duration?](repeating: nil, count: count)
        slowTimerLag = [Duration](repeating: .zero, count: count)
        slowEnds = pauseEnds
        slowHistory = pauseHistory
        backlog = [Int](repeating: 0, count: count)
        backlogUntil = pauseEnds
        lastCutOff = [MonotonicTime?](repeating: nil, count: count)
        tickGeneration = [UInt32](repeating: 0, count: count)
        scheduledTick = [UInt64](repeating: .max, count: count)
        datagramSequence = [UInt64](repeating: 0, count: count)
        network = SimNetwork(model: scenario.network, nodeCount: count, salt: random.next())
        partitions = PartitionTable(nodeCount: count)
        observations = Observations(nodeCount: count)
        traffic.windowStart = .zero + scenario.warmUp
        formCluster()
    }

    /// Node `index` as it sees itself.
    public func member(_ index: Int) -> Member { nodes[index].myself }

    /// How `observer` sees `subject` (nil when it does not know it).
    public func status(of subject: Int, seenBy observer: Int) -> MemberStatus? {
        nodes[observer].member(ids[subject])?.status
    }

    public func incarnation(of subject: Int, seenBy observer: Int) -> UInt64? {
        nodes[observer].member(ids[subject])?.incarnation
    }

    public func isCrashed(_ node: Int) -> Bool { crashed[node] }
    public func isPaused(_ node: Int) -> Bool { paused[node] }

    /// The digest of the trace so far.
    public var traceDigest: String { digest.hex }

    func index(of id: NodeID) -> Int? {
        guard id.high == Self.idHigh, id.low < UInt64(ids.count) else { return nil }
        return Int(id.low)
    }

    /// Every node knows every other as alive at time zero; periodic timers start at
    /// random offsets; the fault schedule is queued.
    private func formCluster() {
        let members = (0..<ids.count).map {
            Member(id: ids[$0], name: "node-\($0)", address: addresses[$0], incarnation: 0, status: .alive)
        }
        let everyone = members.map { $0.update(from: $0.id) }
        for index in members.indices {
            nodes.append(
                SWIMInstance(myself: members[index], settings: scenario.settings, seed: random.next(), now: now))
        }
        for index in members.indices {
            execute(index, nodes[index].mergeFullState(everyone, now: now))
            reschedule(index)
        }
        for index in members.indices {
            for reconnect in [false, true] {
                let interval = reconnect ? scenario.reconnectInterval : scenario.pushPullInterval
                let offset = Duration.nanoseconds(Int64(random.unit() * Double(interval.nanosecondsClamped)))
                schedule(.pushPullTimer(node: index, reconnect: reconnect), after: offset)
            }
        }
        for (index, fault) in scenario.faults.enumerated() {
            queue.schedule(.fault(index: index), at: (MonotonicTime.zero + fault.at).nanoseconds)
        }
    }

    func schedule(_ event: SimEvent, after delay: Duration) {
        queue.schedule(event, at: (now + delay).nanoseconds)
    }

    /// Runs every event due up to `time` (from the start), then sets the clock there.
    public func run(until time: Duration) {
        let limit = min(end, .zero + time).nanoseconds
        let started = ContinuousClock.now
        while let next = queue.nextTime, next <= limit, let entry = queue.popFirst() {
            now = MonotonicTime(nanoseconds: entry.time)
            handle(entry.payload)
        }
        now = max(now, MonotonicTime(nanoseconds: limit))
        let elapsed = ContinuousClock.now - started
        wallSeconds += elapsed.seconds
    }

    /// Runs to the end of the scenario and reports.
    public func run() -> SimReport {
        run(until: scenario.duration)
        return report()
    }

    private func handle(_ event: SimEvent) {
        events += 1
        switch event {
        case .tick(let node, let generation):
            guard generation == tickGeneration[node], !crashed[node], !paused[node] else { return }
            scheduledTick[node] = .max
            mixEvent(1, node)
            execute(node, nodes[node].tick(now: now))
            reschedule(node, afterTick: true)
            noteHealth(node)
        case .datagram(let to, let from, let messages):
            guard !crashed[to] else { return }
            if paused[to] {
                if pending[to].count < scenario.receiveBuffer {
                    pending[to].append(.datagram(from: from, messages: messages))
                } else {
                    traffic.droppedWhilePaused += 1
                }
                return
            }
            if delayIfSlow(to, .datagram(from: from, messages: messages)) { return }
            mixEvent(2, to, from)
            execute(to, nodes[to].receive(messages, from: ids[from], at: addresses[from], now: now))
            reschedule(to)
        case .tcpProbeAnswer(let node, let sequence, let target, let reachable):
            guard !crashed[node] else { return }
            if paused[node] {
                pending[node].append(.tcpProbeAnswer(sequence: sequence, target: target, reachable: reachable))
                return
            }
            if delayIfSlow(node, .tcpProbeAnswer(sequence: sequence, target: target, reachable: reachable)) {
                return
            }
            mixEvent(3, node, reachable ? 1 : 0)
            execute(
                node, nodes[node].tcpProbeAnswered(sequence: sequence, target: target, reachable: reachable, now: now)
            )
            reschedule(node)
        case .pushPullTimer(let node, let reconnect):
            pushPullTimer(node, reconnect: reconnect)
        case .pushPullRequest(let from, let to, let state):
            pushPullRequest(from: from, to: to, state: state)
        case .pushPullReply(let to, let from, let state):
            pushPullReply(to: to, from: from, state: state)
        case .fault(let index):
            strike(scenario.faults[index].fault, index: index)
        case .resume(let node):
            resume(node)
        case .lateInbound(let node, let inbound):
            lateInbound(node, inbound)
        case .endSlow(let node):
            endSlow(node)
        case .heal(let partition):
            heal(partition)
        case .detectionCheck(let crash):
            checkDetection(crash)
        case .convergenceCheck(let partition):
            checkConvergence(after: partition)
        }
    }

    /// Queues the node's next tick at its `nextDeadline` (late by the timer lag while
    /// the node is slow) unless that tick is queued already. A tick that leaves a
    /// deadline in the past is retried a millisecond on, so a core that failed to move
    /// a deadline cannot stall the run.
    func reschedule(_ node: Int, afterTick: Bool = false) {
        guard !crashed[node], !paused[node] else { return }
        var time = nodes[node].nextDeadline.nanoseconds
        if slowLag[node] != nil { time += UInt64(max(0, slowTimerLag[node].nanosecondsClamped)) }
        if time <= now.nanoseconds {
            time = afterTick ? now.nanoseconds + 1_000_000 : now.nanoseconds
        }
        guard time != scheduledTick[node] else { return }
        tickGeneration[node] &+= 1
        scheduledTick[node] = time
        queue.schedule(.tick(node: node, generation: tickGeneration[node]), at: time)
    }

    /// Executes one core's effects.
    func execute(_ node: Int, _ effects: [SWIMEffect]) {
        for effect in effects {
            switch effect {
            case .send(let messages, let address):
                send(messages, from: node, to: address)
            case .probeOverTCP(let sequence, let target, let address):
                digest.mix(7)
                digest.mix(sequence)
                digest.mix(target.low)
                let to = indexByAddress[address]
                let reachable = to.map { !crashed[$0] && !paused[$0] && partitions.connects(node, $0) } ?? false
                // A slow target answers over TCP as late as over UDP.
                let delay =
                    reachable
                    ? network.latency(from: node, to: to!, random: &random)
                        + network.latency(from: to!, to: node, random: &random) + (slowLag[to!] ?? .zero)
                    : scenario.settings.probeTimeout
                schedule(
                    .tcpProbeAnswer(node: node, sequence: sequence, target: target, reachable: reachable), after: delay)
            case .memberChanged(let change):
                observe(change, by: node)
            }
        }
    }

    private func send(_ messages: [SWIMMessage], from node: Int, to address: Endpoint) {
        guard let to = indexByAddress[address] else { return }
        digest.mix(UInt64(1) << 56 | UInt64(to))
        for message in messages { mix(message) }
        var delivered = messages
        let size: Int
        if scenario.throughCodec {
            datagramSequence[node] += 1
            let envelope = SWIMEnvelope(
                sender: ids[node], bootID: 1, sequence: datagramSequence[node], sentAt: now.nanoseconds,
                messages: messages)
            let bytes = SWIMCodec.encode(envelope)
            size = bytes.count
            guard let decoded = try? SWIMCodec.decode(bytes) else {
                observations.oversizeViolations.add("node \(node): a datagram did not decode")
                return
            }
            delivered = decoded.messages
        } else {
            size = SWIMCodec.encodedSize(ofEnvelopeWith: messages)
        }
        if size > scenario.settings.maxPayloadBytes {
            observations.oversizeViolations.add("node \(node): \(size)-byte datagram at \(now)")
        }
        traffic.sent(messages: messages.count, bytes: size + TrafficMeter.sealOverhead, at: now)
        if partitions.blocks(node, to) {
            traffic.lost += 1
            return
        }
        let delays = network.transmit(from: node, to: to, random: &random)
        if delays.isEmpty { traffic.lost += 1 }
        for delay in delays {
            schedule(.datagram(to: to, from: node, messages: delivered), after: delay)
        }
    }

    func mixEvent(_ kind: UInt64, _ node: Int, _ detail: Int = 0) {
        digest.mix(now.nanoseconds)
        digest.mix(kind << 56 | UInt64(node) << 24 | UInt64(truncatingIfNeeded: detail) & 0xFF_FFFF)
        if scenario.recordTrace { trace.append("\(now) kind=\(kind) node=\(node) detail=\(detail)") }
    }

    private func mix(_ message: SWIMMessage) {
        switch message {
        case .ping(let sequence, let target):
            digest.mix(1)
            digest.mix(sequence)
            digest.mix(target.low)
        case .pingRequest(let sequence, let target, _, let wantsNack):
            digest.mix(wantsNack ? 2 : 12)
            digest.mix(sequence)
            digest.mix(target.low)
        case .ack(let sequence):
            digest.mix(3)
            digest.mix(sequence)
        case .nack(let sequence):
            digest.mix(4)
            digest.mix(sequence)
        case .update(let update):
            digest.mix(5 | UInt64(update.status.rawValue) << 8)
            digest.mix(update.id.low)
            digest.mix(update.incarnation)
            digest.mix(update.source.low)
        case .antiEntropy(let payload):
            digest.mix(6)
            digest.mix(UInt64(payload.count))
        }
    }
}
