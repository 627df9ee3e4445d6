import ChorusCore
import ChorusCrypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The membership shell: runs the pure `SWIMInstance` on one event loop, feeds it
/// datagrams, TCP requests and timer ticks, and carries out its effects
/// (DESIGN §1). Also owns push-pull sync, joining through seeds, reconnecting to
/// dead members, keyring rotation and graceful departure.
///
/// Thread-safety: every mutable property is touched only on `loop`; public
/// entry points hop there first.
public final class MembershipService: @unchecked Sendable {
    public let config: AgentConfig
    public let loop: EventLoop
    let group: EventLoopGroup
    let logger: Logger
    let sealer: FrameSealer
    public let localID: NodeID
    /// This node was a ring member before this start (its data dir said so): a restart,
    /// not a new node.
    public let restarted: Bool
    /// Agent-to-agent sessions (push-pull, fallback probes, key rotation).
    private(set) var sessions: SessionPool!
    let keyringPath: String

    private var swim: SWIMInstance
    private var replayWindow = ReplayWindow()
    private var counters = DatagramCounters()
    private let stateStore: NodeStateStore
    private var persistedIncarnation: UInt64
    private let bootID: UInt64
    private var datagramSequence: UInt64 = 0
    private var transport: GossipTransport?
    private var sessionListener: Channel?
    private var tick: Scheduled<Void>?
    private var tickDeadline: NIODeadline?
    private var addressCache: [Endpoint: SocketAddress] = [:]
    private var departure: MemberStatus?
    /// The departure announcement and the channels' closing, once started.
    private var announced: EventLoopFuture<Void>?
    private var closing: EventLoopFuture<Void>?
    private var joined = false {
        didSet { joinedBox.withLockedValue { $0 = joined } }
    }
    private let joinedBox = NIOLockedValueBox(false)

    /// Whether this node has joined the cluster (a seed or known peer answered, or
    /// it has none): until then its view holds only itself, so it must not
    /// coordinate requests by it.
    public var hasJoined: Bool { joinedBox.withLockedValue { $0 } }
    private let joinedWithoutFetchBox = NIOLockedValueBox(false)
    private let viewBox: NIOLockedValueBox<ClusterView>
    /// Members' addresses saved in the data dir, to rejoin through after a restart.
    private var knownPeers: [Endpoint]
    private var peersSaveScheduled = false
    /// Peers whose bucket settings differ from ours.
    private var bucketDisagreements: Set<String> = []
    /// Handles agent-to-agent requests that are not about membership (the store's).
    var otherRequests: SessionHandler.RequestHandler?
    /// Receives anti-entropy payloads from authenticated, replay-checked datagrams
    /// (sender, the address to answer, payload and its datagram's sealed size);
    /// called on `loop`. Set before `start`.
    var antiEntropyReceiver: (@Sendable (NodeID, Endpoint, [UInt8], Int) -> Void)?
    private var periodicTasks: [RepeatedTask] = []
    private let startedAt = NIODeadline.now()
    private var rng: SeededRandom
    /// Called once the agent has departed (left, or a fatal join refusal); the
    /// process exits with the given status.
    private let onExit: @Sendable (Int32) -> Void

    /// Takes the data dir lock, loads (or mints) the node's identity and keyring,
    /// and bumps the persisted incarnation. Nothing is bound yet.
    /// - Parameters:
    ///   - group: the event loops agent-to-agent sessions run on.
    ///   - loop: the loop the membership protocol runs on: its own thread, so a
    ///     node busy serving data still answers probes in time and is not
    ///     suspected for it (Cassandra keeps gossip on its own stage for the same reason).
    init(
        config: AgentConfig, stateStore: NodeStateStore, group: EventLoopGroup, loop: EventLoop, logger: Logger,
        onExit: @escaping @Sendable (Int32) -> Void
    ) throws(ConfigError) {
        self.config = config
        self.group = group
        self.loop = loop
        self.logger = logger
        self.onExit = onExit
        var system = SystemRandomNumberGenerator()
        self.bootID = system.next()
        self.rng = SeededRandom(seed: system.next())

        let state = try stateStore.loadOrCreate(
            clusterName: config.clusterName, partitions: config.store.partitions, using: &system)
        self.restarted = state.ring == .member
        let incarnation = state.incarnation + 1
        do {
            try stateStore.saveIncarnation(incarnation)
        } catch {
            throw ConfigError("cannot persist node state: \(error)")
        }
        self.stateStore = stateStore
        self.persistedIncarnation = incarnation
        self.knownPeers = stateStore.knownPeers()
        let id = state.id

        self.keyringPath = config.dataDir + "/keyring.json"
        let keyring = try Self.loadKeyring(path: keyringPath, seed: config.encryptKey)
        self.sealer = FrameSealer(clusterName: config.clusterName, keyring: keyring)
        self.localID = id

        var tags = config.tags.merging(["http": config.httpAddr.description]) { mine, _ in mine }
        switch state.ring {
        case .joining:
            tags[RingPhase.tag] = RingPhase.joining.rawValue
        case .leaving:
            logger.warning("this node was leaving when it stopped; it is a member again until `chorus leave` runs")
            try? stateStore.saveRingState(.member)
        case .member, .left:
            break
        }
        let myself = Member(
            id: id, name: config.name, address: config.advertise, incarnation: incarnation, status: .alive,
            tags: tags)
        self.swim = SWIMInstance(
            myself: myself, settings: config.swim, seed: system.next(), now: Self.monotonicNow())
        self.viewBox = NIOLockedValueBox(
            ClusterView(
                members: [id: myself],
                ring: RingPlacement(
                    partitioner: Partitioner(partitionCount: config.store.partitions), members: [myself])))
        let loop = self.loop
        self.sessions = SessionPool(
            group: group, sealer: sealer, localID: id, maxClockDistance: replayWindow.maxClockDistance,
            handleRequest: { [unowned self] message, peer, remote, channelLoop in
                // Store traffic is served on the session's own loop; only membership
                // requests go to the membership loop, which data load must not crowd.
                switch message {
                case .pushPull, .ping, .keyOperation:
                    return loop.flatSubmit { self.handleClusterRequest(message, from: peer, remote: remote) }
                default:
                    guard let handler = self.otherRequests else {
                        return channelLoop.makeSucceededFuture(.refused(reason: "this node does not serve keys yet"))
                    }
                    return handler(message, peer, remote, channelLoop)
                }
            },
            refused: { [unowned self] reason, remote in
                loop.execute {
                    self.counters.dropTCP(reason)
                    let metadata: Logger.Metadata = ["from": "\(remote.map { "\($0)" } ?? "?")", "reason": "\(reason)"]
                    if reason == SessionHandler.unsupportedRefusal {
                        // One per request from a newer peer during an upgrade: counted, not logged each.
                        self.logger.debug("refused a message of a newer protocol version", metadata: metadata)
                    } else {
                        self.logger.warning("refused TCP session", metadata: metadata)
                    }
                }
            })
    }

    private static func loadKeyring(path: String, seed: String?) throws(ConfigError) -> Keyring {
        if FileManager.default.fileExists(atPath: path) {
            do {
                return try Keyring.load(from: path)
            } catch {
                throw ConfigError("\(error)")
            }
        }
        guard let seed else {
            throw ConfigError(
                "no keyring at \(path) and no encrypt_key set: generate a key with `chorus keygen` and pass it as encrypt_key (the same on every node)"
            )
        }
        do {
            let keyring = try Keyring(primary: try ClusterKey(base64: seed))
            try keyring.save(to: path)
            return keyring
        } catch {
            throw ConfigError("encrypt_key: \(error)")
        }
    }

    static func monotonicNow() -> MonotonicTime {
        MonotonicTime(nanoseconds: NIODeadline.now().uptimeNanoseconds)
    }

    // MARK: - Lifecycle

    /// Binds UDP and TCP, starts the timers, and joins through the seeds.
    public func start() -> EventLoopFuture<Void> {
        loop.flatSubmit { [self] in
            let udp = GossipTransport.bind(on: config.bind, group: loop, logger: logger) { [self] buffer, address in
                loop.execute { self.receiveDatagram(buffer, from: address) }
            }
            return udp.and(sessions.listen(on: config.bind)).map { [self] udp, listener in
                transport = udp
                sessionListener = listener
                logger.info(
                    "agent started",
                    metadata: [
                        "id": "\(localID)", "bind": "\(config.bind)", "advertise": "\(config.advertise)",
                        "incarnation": "\(persistedIncarnation)", "keys": "\(sealer.keyring.keys.count)",
                    ])
                scheduleTick()
                periodicTasks.append(
                    loop.scheduleRepeatedTask(
                        initialDelay: config.pushPullInterval.timeAmount, delay: config.pushPullInterval.timeAmount
                    ) { [self] _ in periodicPushPull() })
                periodicTasks.append(
                    loop.scheduleRepeatedTask(
                        initialDelay: config.reconnectInterval.timeAmount, delay: config.reconnectInterval.timeAmount
                    ) { [self] _ in reconnect() })
                joinSeeds(attempt: 0)
            }
        }
    }

    /// Graceful departure (DESIGN §9): announce `stopped` (SIGTERM) or `left`
    /// (`chorus leave`) directly to every member, give the datagrams a moment to
    /// go out, then close the channels.
    public func depart(_ status: MemberStatus) -> EventLoopFuture<Void> {
        announceDeparture(status).flatMap { [self] in
            loop.flatSubmit { [self] in
                if let closing { return closing }
                let closed = shutdownChannels()
                closing = closed
                return closed
            }
        }
    }

    /// The first half of `depart`: tells every member this node departs with `status`
    /// (twice: UDP may drop one) and stops probing, but keeps the sessions and the gossip
    /// socket open, so that requests in flight to and from this node finish while the
    /// members already route new ones around it. Completes once the repeat is out.
    public func announceDeparture(_ status: MemberStatus) -> EventLoopFuture<Void> {
        loop.flatSubmit { [self] in
            if let announced { return announced }
            departure = status
            logger.notice("departing", metadata: ["status": "\(status)"])
            let effects = swim.depart(status, now: Self.monotonicNow())
            execute(effects)
            let repeated = loop.scheduleTask(in: .milliseconds(100)) { [self] in
                execute(effects.filter { if case .send = $0 { true } else { false } })
            }.futureResult.flatMap { [self] in
                loop.scheduleTask(in: .milliseconds(150)) {}.futureResult
            }
            announced = repeated
            return repeated
        }
    }

    private func shutdownChannels() -> EventLoopFuture<Void> {
        tick?.cancel()
        for task in periodicTasks { task.cancel() }
        periodicTasks = []
        sessions.closeAll()
        let closes = [transport?.close(), sessionListener?.close()].compactMap { $0 }
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }

    // MARK: - Timers and effects

    private func scheduleTick() {
        let deadline = swim.nextDeadline
        let now = Self.monotonicNow()
        let delay = deadline > now ? deadline.since(now) : .zero
        let when = NIODeadline.now() + max(.milliseconds(1), delay.timeAmount)
        if let current = tickDeadline, current <= when, tick != nil { return }
        tick?.cancel()
        tickDeadline = when
        tick = loop.scheduleTask(deadline: when) { [self] in
            tick = nil
            tickDeadline = nil
            guard departure == nil else { return }
            execute(swim.tick(now: Self.monotonicNow()))
        }
    }

    private func execute(_ effects: [SWIMEffect]) {
        var membershipChanged = false
        defer { if membershipChanged { publishView() } }
        for effect in effects {
            switch effect {
            case .send(let messages, let address):
                sendDatagram(messages, to: address)
            case .probeOverTCP(let sequence, let target, let address):
                probeOverTCP(sequence: sequence, target: target, address: address)
            case .memberChanged(let change):
                membershipChanged = true
                logChange(change)
                // A member (back) alive: open the session to it now, so the first replica
                // request after a restart does not wait for the connect and handshake.
                if change.current == .alive, change.member.id != localID, departure == nil {
                    sessions?.warm(change.member.address)
                }
            }
        }
        persistIncarnationIfRaised()
        if departure == nil { scheduleTick() }
    }

    private func logChange(_ change: MemberChange) {
        let member = change.member
        guard member.id != localID else { return }
        let metadata: Logger.Metadata = [
            "member": "\(member.name)", "address": "\(member.address)", "incarnation": "\(member.incarnation)",
            "from": "\(change.previous.map { "\($0)" } ?? "new")",
            "to": "\(change.current.map { "\($0)" } ?? "reaped")",
        ]
        switch change.current {
        case .dead?, .suspect?: logger.warning("member state changed", metadata: metadata)
        default: logger.info("member state changed", metadata: metadata)
        }
    }

    /// Persists a raised incarnation (a refutation) before it can be gossiped
    /// further, so a restart never reuses it.
    private func persistIncarnationIfRaised() {
        let incarnation = swim.myself.incarnation
        guard incarnation > persistedIncarnation else { return }
        persistedIncarnation = incarnation
        do {
            try stateStore.saveIncarnation(incarnation)
        } catch {
            logger.error("cannot persist incarnation", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - UDP

    @discardableResult
    private func sendDatagram(_ messages: [SWIMMessage], to address: Endpoint) -> Int {
        guard let transport else { return 0 }
        let socketAddress: SocketAddress
        if let cached = addressCache[address] {
            socketAddress = cached
        } else {
            guard let resolved = try? SocketAddress(ipAddress: address.host, port: Int(address.port)) else {
                logger.warning("cannot send to unparsable address", metadata: ["address": "\(address)"])
                return 0
            }
            if addressCache.count > 4096 { addressCache.removeAll() }
            addressCache[address] = resolved
            socketAddress = resolved
        }
        datagramSequence += 1
        let envelope = SWIMEnvelope(
            sender: localID, bootID: bootID, sequence: datagramSequence, sentAt: WallClock.nanoseconds(),
            messages: messages)
        let sealed = sealer.seal(SWIMCodec.encode(envelope))
        counters.datagramsOut += 1
        counters.bytesOut += UInt64(sealed.count)
        transport.send(sealed, to: socketAddress)
        return sealed.count
    }

    private func receiveDatagram(_ buffer: ByteBuffer, from address: SocketAddress) {
        counters.datagramsIn += 1
        counters.bytesIn += UInt64(buffer.readableBytes)
        guard buffer.readableBytes <= Sealer.maxDatagramBytes else {
            counters.drop("oversize")
            return
        }
        let plaintext: [UInt8]
        do {
            plaintext = try sealer.open(Array(buffer.readableBytesView))
        } catch {
            counters.drop(error.reason)
            return
        }
        let envelope: SWIMEnvelope
        do {
            envelope = try SWIMCodec.decode(plaintext)
        } catch {
            counters.drop("malformed")
            return
        }
        switch replayWindow.admit(
            sender: envelope.sender, bootID: envelope.bootID, sequence: envelope.sequence,
            sentAt: envelope.sentAt, wallNow: WallClock.nanoseconds())
        {
        case .accept: break
        case .replay:
            counters.drop("replay")
            return
        case .stale:
            counters.drop("stale")
            return
        }
        guard envelope.sender != localID, let ip = address.ipAddress, let port = address.port else { return }
        let endpoint = Endpoint(host: ip, port: UInt16(port))
        // Anti-entropy summaries share the channel (sealing, replay window) but not
        // the protocol: they go to anti-entropy, never to the SWIM instance.
        var membership: [SWIMMessage] = []
        membership.reserveCapacity(envelope.messages.count)
        for message in envelope.messages {
            if case .antiEntropy(let payload) = message {
                if let receiver = antiEntropyReceiver {
                    receiver(envelope.sender, endpoint, payload, buffer.readableBytes)
                } else {
                    counters.drop("anti-entropy-off")
                }
            } else {
                membership.append(message)
            }
        }
        guard !membership.isEmpty else { return }
        execute(swim.receive(membership, from: envelope.sender, at: endpoint, now: Self.monotonicNow()))
    }

    /// Sends one anti-entropy payload to `address` in its own sealed datagram.
    /// Returns (on `loop`) the sealed datagram's size, 0 if it could not be sent.
    func sendAntiEntropy(_ payload: [UInt8], to address: Endpoint) -> EventLoopFuture<Int> {
        loop.submit { [self] in
            guard departure == nil else { return 0 }
            return sendDatagram([.antiEntropy(payload)], to: address)
        }
    }

    private func probeOverTCP(sequence: UInt64, target: NodeID, address: Endpoint) {
        sessions.request(.ping(target: target), to: address, timeout: config.swim.probeTimeout.timeAmount)
            .hop(to: loop)
            .whenComplete { [self] result in
                var reachable = false
                if case .success(.pong) = result { reachable = true }
                guard departure == nil else { return }
                execute(
                    swim.tcpProbeAnswered(
                        sequence: sequence, target: target, reachable: reachable, now: Self.monotonicNow()))
            }
    }

    // MARK: - TCP requests

    private func handleClusterRequest(_ message: ClusterMessage, from peer: NodeID, remote: SocketAddress?)
        -> EventLoopFuture<ClusterMessage>
    {
        counters.tcpRequestsIn += 1
        switch message {
        case .pushPull(let joining, let state, let keyring, let parameters):
            if joining, let joiner = state.first(where: { $0.id == peer }) {
                if let mismatch = parameterMismatch(parameters) {
                    logger.warning(
                        "refused join",
                        metadata: ["name": "\(joiner.name)", "address": "\(joiner.address)", "reason": "\(mismatch)"])
                    return loop.makeSucceededFuture(.refused(reason: mismatch))
                }
                if case .refuse(let reason) = swim.admit(joiner) {
                    logger.warning(
                        "refused join",
                        metadata: ["name": "\(joiner.name)", "address": "\(joiner.address)", "reason": "\(reason)"])
                    return loop.makeSucceededFuture(.refused(reason: reason))
                }
            }
            adoptKeyringIfNewer(keyring, from: remote.map { "\($0)" } ?? "?")
            noteBucketAgreement(parameters, peer: state.first(where: { $0.id == peer })?.name ?? "\(peer)")
            // A member synced its full state with us: our view now holds the cluster
            // (after a full cold restart the others join through us first).
            let reply = ClusterMessage.pushPullReply(
                state: swim.fullState(), keyring: snapshot(of: sealer.keyring), parameters: localParameters())
            execute(swim.mergeFullState(state, now: Self.monotonicNow()))
            if !joined { finishJoin() }
            return loop.makeSucceededFuture(reply)
        case .ping(let target):
            return loop.makeSucceededFuture(target == localID ? .pong : .refused(reason: "not the probed node"))
        case .keyOperation(let operation):
            return loop.makeSucceededFuture(.keyOperationReply(applyKeyOperation(operation)))
        case .replicaWrite, .replicaRead, .forward, .repairKeys, .reapTombstone, .partitionPage:
            guard let handler = otherRequests else {
                return loop.makeSucceededFuture(.refused(reason: "this node does not serve keys yet"))
            }
            return handler(message, peer, remote, loop)
        case .pushPullReply, .refused, .pong, .keyOperationReply, .replicaWriteReply, .replicaReadReply,
            .forwardReply, .repairKeysReply, .reapTombstoneReply, .partitionPageReply:
            counters.dropTCP("unexpected")
            return loop.makeSucceededFuture(.refused(reason: "not a request"))
        }
    }

    // MARK: - Push-pull, joining, reconnecting

    /// Full-state exchange with `address`; on success both sides hold the union.
    private func pushPull(with address: Endpoint, joining: Bool) -> EventLoopFuture<Void> {
        let request = ClusterMessage.pushPull(
            joining: joining, state: swim.fullState(), keyring: snapshot(of: sealer.keyring),
            parameters: localParameters())
        return sessions.request(request, to: address, timeout: .seconds(10)).hop(to: loop).flatMapThrowing {
            [self] reply in
            switch reply {
            case .pushPullReply(let state, let keyring, let parameters):
                if let mismatch = parameterMismatch(parameters) { throw JoinRefused(reason: mismatch) }
                adoptKeyringIfNewer(keyring, from: "\(address)")
                noteBucketAgreement(parameters, peer: "\(address)")
                execute(swim.mergeFullState(state, now: Self.monotonicNow()))
            case .refused(let reason):
                throw JoinRefused(reason: reason)
            default:
                throw SessionError.handshakeFailed("unexpected reply to push-pull")
            }
        }
    }

    struct JoinRefused: Error, CustomStringConvertible {
        var reason: String
        var description: String { "join refused: \(reason)" }
    }

    /// Join through every seed, retrying with exponential backoff up to
    /// `join_retry_max` until one answers (serf's retry_join).
    private func joinSeeds(attempt: Int) {
        var candidates = config.join
        for peer in knownPeers where !candidates.contains(peer) { candidates.append(peer) }
        let seeds = candidates.filter { $0 != config.advertise && $0 != config.bind }
        guard !seeds.isEmpty, departure == nil else {
            finishJoin()
            return
        }
        let attempts = seeds.map { seed in
            pushPull(with: seed, joining: true).map { true }.flatMapError { [self] error in
                if let refusal = error as? JoinRefused {
                    logger.critical(
                        "cannot join the cluster", metadata: ["seed": "\(seed)", "reason": "\(refusal.reason)"])
                    onExit(1)
                } else {
                    logger.warning("join attempt failed", metadata: ["seed": "\(seed)", "error": "\(error)"])
                }
                return loop.makeSucceededFuture(false)
            }
        }
        EventLoopFuture.whenAllComplete(attempts, on: loop).whenSuccess { [self] results in
            let successes = results.filter { (try? $0.get()) == true }.count
            if successes > 0 {
                finishJoin()
                execute(swim.announce(now: Self.monotonicNow()))
                logger.info(
                    "joined cluster",
                    metadata: ["seeds": "\(successes)/\(seeds.count)", "members": "\(swim.members.count)"])
                return
            }
            let backoff = min(config.joinRetryMax, .seconds(1) * (1 << min(attempt, 10)))
            logger.warning("no seed answered; retrying", metadata: ["in": "\(DurationParsing.format(backoff))"])
            loop.scheduleTask(in: backoff.timeAmount) { [self] in joinSeeds(attempt: attempt + 1) }
        }
    }

    /// The node has joined (or has no one to join). A new node is a member at
    /// once when no partition has copies it would take over: while the ring has
    /// fewer members than the largest replication factor, it only adds replicas
    /// (anti-entropy fills them). Otherwise it stays `joining` until `RingHandoff`
    /// has fetched its partitions.
    private func finishJoin() {
        if swim.myself.ringPhase == .joining {
            let ring = swim.members.filter { $0.id != localID && $0.inCurrentRing }
            if ring.count < config.store.buckets.maxReplication {
                changeRingPhase(to: nil)
                if !ring.isEmpty { joinedWithoutFetchBox.withLockedValue { $0 = true } }
            }
        }
        joined = true
    }

    /// This node joined a ring of fewer than n members (not empty) as a member at once,
    /// without fetching: anti-entropy's catch-up fills its partitions (`HomeWatch`).
    public var joinedWithoutFetch: Bool { joinedWithoutFetchBox.withLockedValue { $0 } }

    // MARK: - Ring changes

    /// This node's phase in a ring change (nil: a settled member).
    public var ringPhase: RingPhase? { view.members[localID]?.ringPhase }

    /// Gossips this node's new ring phase, telling every member directly, and
    /// records it in the data dir.
    public func setRingPhase(_ phase: RingPhase?) -> EventLoopFuture<Void> {
        loop.submit { [self] in changeRingPhase(to: phase) }
    }

    private func changeRingPhase(to phase: RingPhase?) {
        guard departure == nil else { return }
        var tags = swim.myself.tags
        tags[RingPhase.tag] = phase?.rawValue
        guard tags != swim.myself.tags else { return }
        let now = Self.monotonicNow()
        execute(swim.setTags(tags, now: now) + swim.announce(now: now))
        let state: RingState =
            switch phase {
            case nil: .member
            case .joining?: .joining
            case .leaving?: .leaving
            }
        do {
            try stateStore.saveRingState(state)
        } catch {
            logger.error("cannot record the ring state", metadata: ["error": "\(error)"])
        }
        logger.notice("ring phase changed", metadata: ["phase": "\(phase.map(\.rawValue) ?? "member")"])
    }

    /// Records that this node has left for good (its data dir will not serve again).
    func recordLeft() {
        try? stateStore.saveRingState(.left)
    }

    /// `chorus remove NAME`: drops a dead or stopped member from the ring for good.
    public func remove(name: String) -> EventLoopFuture<Result<Member, SWIMInstance.RemovalError>> {
        loop.submit { [self] in
            guard let member = swim.members.first(where: { $0.name == name && $0.status != .left }) else {
                return .failure(.unknown)
            }
            do throws(SWIMInstance.RemovalError) {
                let effects = try swim.remove(member.id, now: Self.monotonicNow())
                execute(effects)
                logger.notice("removed member", metadata: ["member": "\(name)", "id": "\(member.id)"])
                return .success(member)
            } catch {
                return .failure(error)
            }
        }
    }

    private func periodicPushPull() {
        guard departure == nil else { return }
        let candidates = swim.members.filter { $0.id != localID && ($0.status == .alive || $0.status == .suspect) }
        guard let peer = candidates.randomElement(using: &rng) else { return }
        pushPull(with: peer.address, joining: false).whenFailure { [self] error in
            logger.debug("push-pull failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
        }
    }

    /// Try one dead or stopped member, or the seeds when this node sees nobody
    /// alive: heals partitions and restarts that gossip alone missed (serf's reconnect).
    private func reconnect() {
        guard departure == nil else { return }
        let others = swim.members.filter { $0.id != localID }
        if !others.contains(where: { $0.status == .alive }), joined, !config.join.isEmpty {
            joinSeeds(attempt: 10)
            return
        }
        let candidates = others.filter { $0.status == .dead || $0.status == .stopped }
        guard let peer = candidates.randomElement(using: &rng) else { return }
        pushPull(with: peer.address, joining: false).whenFailure { [self] error in
            logger.debug("reconnect failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
        }
    }

    // MARK: - The view other services read

    /// The members and the partition placement as this node sees them now.
    public var view: ClusterView { viewBox.withLockedValue { $0 } }

    /// Saves the members' addresses (at most every few seconds), so a restart can
    /// rejoin through them.
    private func scheduleKnownPeersSave() {
        guard !peersSaveScheduled else { return }
        peersSaveScheduled = true
        loop.scheduleTask(in: .seconds(5)) { [self] in
            peersSaveScheduled = false
            let peers = swim.members.filter { $0.id != localID && $0.status != .left }.map(\.address)
            guard peers != knownPeers else { return }
            knownPeers = peers
            do {
                try stateStore.saveKnownPeers(peers)
            } catch {
                logger.warning("cannot save known peers", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Who is in the current and the target ring: placement depends on nothing else.
    private static func ringMembership(_ members: some Sequence<Member>) -> Set<RingSeat> {
        Set(members.map { RingSeat(id: $0.id, current: $0.inCurrentRing, target: $0.inTargetRing) })
    }

    private struct RingSeat: Hashable {
        var id: NodeID
        var current: Bool
        var target: Bool
    }

    /// Publishes the current members; placement is recomputed only when the ring
    /// (who is in the current and the target ring) changed, not on every failure or recovery.
    private func publishView() {
        scheduleKnownPeersSave()
        var members: [NodeID: Member] = [:]
        for member in swim.members { members[member.id] = member }
        viewBox.withLockedValue { view in
            if Self.ringMembership(members.values) != Self.ringMembership(view.members.values) {
                view.ring = RingPlacement(partitioner: view.ring.partitioner, members: members.values)
            }
            view.members = members
        }
    }

    // MARK: - Cluster parameters

    private func localParameters() -> ClusterParameters {
        ClusterParameters(
            partitions: UInt32(config.store.partitions), bucketsDigest: config.store.buckets.digest)
    }

    /// Why a peer with `parameters` cannot be in this node's cluster, if it cannot.
    private func parameterMismatch(_ parameters: ClusterParameters) -> String? {
        guard parameters.partitions != UInt32(config.store.partitions) else { return nil }
        return
            "partition count \(parameters.partitions) differs from this cluster's \(config.store.partitions) (store.partitions is fixed when a cluster is created)"
    }

    /// Members should share bucket settings; a difference is logged once per peer
    /// and shown by `chorus status`.
    private func noteBucketAgreement(_ parameters: ClusterParameters, peer: String) {
        if parameters.bucketsDigest == config.store.buckets.digest {
            bucketDisagreements.remove(peer)
        } else if bucketDisagreements.insert(peer).inserted {
            logger.warning(
                "bucket settings differ from a member's; every member should have the same [buckets.*]",
                metadata: ["peer": "\(peer)"])
        }
    }

    // MARK: - Keyring

    /// Reads the keyring file again (SIGHUP, after an operator copied a current
    /// one in); returns how many keys it holds. A bad file changes nothing.
    public func reloadKeyring() throws -> Int {
        let keyring: Keyring
        do {
            keyring = try Keyring.load(from: keyringPath)
        } catch {
            throw ConfigError("\(error)")
        }
        sealer.keyring = keyring
        return keyring.keys.count
    }

    private func snapshot(of keyring: Keyring) -> KeyringSnapshot {
        KeyringSnapshot(
            version: keyring.version, primary: keyring.primary.base64,
            keys: keyring.keys.map(\.base64))
    }

    /// A node that missed a rotation while down takes the newer keyring from the
    /// first member it syncs with (serf cannot: serf issue 579).
    private func adoptKeyringIfNewer(_ snapshot: KeyringSnapshot, from peer: String) {
        guard snapshot.version > sealer.keyring.version else { return }
        do {
            let primary = try ClusterKey(base64: snapshot.primary)
            var others: [ClusterKey] = []
            for key in snapshot.keys { others.append(try ClusterKey(base64: key)) }
            let keyring = try Keyring(
                primary: primary, others: others.filter { $0 != primary }, version: snapshot.version)
            try keyring.save(to: keyringPath)
            sealer.keyring = keyring
            logger.notice("keyring updated from peer", metadata: ["peer": "\(peer)", "version": "\(snapshot.version)"])
        } catch {
            logger.error("cannot adopt peer keyring", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    private func applyKeyOperation(_ operation: KeyOperation) -> KeyOperationReply {
        var keyring = sealer.keyring
        if operation.kind == .list {
            return KeyOperationReply(error: nil, keyring: snapshot(of: keyring))
        }
        do {
            let key = try ClusterKey(base64: operation.key)
            switch operation.kind {
            case .install: try keyring.install(key)
            case .use: try keyring.use(key)
            case .remove:
                // A member that already holds the coordinator's keyring (push-pull can
                // bring it before this request) has nothing left to remove.
                if keyring.contains(key) || keyring.version < operation.version { try keyring.remove(key) }
                // Sessions the removed key authenticated end, once in-flight
                // replies (this operation's own among them) have gone out.
                let sessions = self.sessions!
                loop.scheduleTask(in: .seconds(2)) { sessions.closeSessions(keyID: key.keyID) }
            case .list: break
            }
            // Every member takes the coordinator's version, so they agree on which
            // keyring is newest when a member that missed this comes back.
            keyring = try Keyring(
                primary: keyring.primary, others: Array(keyring.keys.dropFirst()),
                version: max(keyring.version, operation.version))
            try keyring.save(to: keyringPath)
            sealer.keyring = keyring
            logger.notice(
                "keyring changed", metadata: ["operation": "\(operation.kind.name)", "key": "\(key.keyIDHex)"])
            return KeyOperationReply(error: nil, keyring: snapshot(of: keyring))
        } catch {
            return KeyOperationReply(error: "\(error)", keyring: snapshot(of: keyring))
        }
    }

    /// Runs a keyring operation on every alive member (this one included) and
    /// reports per node, like `serf keys`.
    public func keyOperation(_ kind: KeyOperation.Kind, key: String) -> EventLoopFuture<[KeyOperationResult]> {
        loop.flatSubmit { [self] in
            let version = max(WallClock.nanoseconds(), sealer.keyring.version + 1)
            let operation = KeyOperation(kind: kind, key: key, version: version)
            let targets = swim.members.filter { $0.status == .alive }
            let replies = targets.map { member -> EventLoopFuture<KeyOperationResult> in
                if member.id == localID {
                    let reply = applyKeyOperation(operation)
                    return loop.makeSucceededFuture(KeyOperationResult(node: member.name, reply: reply))
                }
                // A listing is asked again (up to 3 times, 100 ms apart) if the session
                // failed: right after a `remove` the sessions sealed under the removed key
                // are ending, and an immediate retry could still find the closing one in
                // the pool; a later one opens a fresh session. (A change is not repeated:
                // its first attempt may have been applied.)
                let sessions: SessionPool = self.sessions
                let loop = self.loop
                let request: @Sendable () -> EventLoopFuture<ClusterMessage> = {
                    sessions.request(.keyOperation(operation), to: member.address, timeout: .seconds(5))
                }
                @Sendable func listing(retries: Int) -> EventLoopFuture<ClusterMessage> {
                    request().flatMapError { error in
                        guard retries > 0 else { return loop.makeFailedFuture(error) }
                        return loop.flatScheduleTask(in: .milliseconds(100)) { listing(retries: retries - 1) }
                            .futureResult
                    }
                }
                let answered = kind == .list ? listing(retries: 3) : request()
                return
                    answered
                    .hop(to: loop)
                    .map { message in
                        if case .keyOperationReply(let reply) = message {
                            return KeyOperationResult(node: member.name, reply: reply)
                        }
                        return KeyOperationResult(node: member.name, error: "unexpected reply")
                    }
                    .recover { error in KeyOperationResult(node: member.name, error: "\(error)") }
            }
            return EventLoopFuture.whenAllSucceed(replies, on: loop)
        }
    }

    // MARK: - Views for the HTTP API

    public func membersView() -> EventLoopFuture<[MemberView]> {
        loop.submit { [self] in
            swim.members.map { member in
                let stats = member.id == localID ? nil : swim.probeStats(for: member.id)
                return MemberView(
                    name: member.name, id: member.id.description, address: member.address.description,
                    status: member.status.description, incarnation: member.incarnation, tags: member.tags,
                    rttMilliseconds: stats?.lastRoundTrip.map { $0.seconds * 1000 },
                    udp: stats.map(\.reachableOverUDP))
            }
        }
    }

    public func statusView() -> EventLoopFuture<StatusView> {
        loop.submit { [self] in
            var byStatus: [String: Int] = [:]
            for status in MemberStatus.allCases { byStatus[status.description] = 0 }
            for member in swim.members { byStatus[member.status.description, default: 0] += 1 }
            let myself = swim.myself
            return StatusView(
                name: myself.name, id: myself.id.description, address: myself.address.description,
                status: myself.status.description, incarnation: myself.incarnation,
                clusterName: config.clusterName, members: byStatus,
                uptimeSeconds: Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9,
                localHealth: swim.localHealth,
                datagrams: .init(
                    in: counters.datagramsIn, out: counters.datagramsOut, bytesIn: counters.bytesIn,
                    bytesOut: counters.bytesOut, dropped: counters.dropped),
                tcp: .init(
                    requestsIn: counters.tcpRequestsIn, requestsOut: sessions.requestCounts.sent,
                    requestFailures: sessions.requestCounts.failed, dropped: counters.tcpDropped),
                keyringVersion: sealer.keyring.version)
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount { .nanoseconds(nanosecondsClamped) }
}
