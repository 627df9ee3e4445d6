import ChorusCore
import ChorusStorage
import Foundation
import Logging
import NIOCore
import NIOPosix

/// `chorus agent`: the membership service plus its HTTP API, signal handling and
/// a blocking run loop. Returns the process exit status.
public enum Agent {
    /// - Parameter reload: reads the configuration again (for SIGHUP); nil when
    ///   there is nothing to reload from.
    /// - Parameter allocator: what serves malloc in this process (logged at start).
    public static func run(
        config: AgentConfig, allocator: String = "system malloc", reload: (@Sendable () throws -> AgentConfig)? = nil
    ) -> Int32 {
        // SIGTERM and SIGINT are blocked in every thread (threads inherit the mask,
        // so before any starts) and taken by one thread with sigwait: a signal
        // that arrives at any moment, even during start-up, is delivered then,
        // never lost or ignored.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let logLevel = ReloadableLogHandler.Level(Logger.Level(rawValue: config.logLevel) ?? .info)
        var logger = Logger(label: "chorus") { label in
            ReloadableLogHandler(label: label, level: logLevel)
        }
        logger[metadataKey: "node"] = "\(config.name)"
        if WallClock.offsetNanoseconds != 0 {
            logger.warning(
                "wall clock shifted for testing",
                metadata: [WallClock.testOffsetVariable: "\(WallClock.offsetNanoseconds / 1_000_000_000)s"])
        }
        // systemd readiness (Type=notify) when $NOTIFY_SOCKET is set; else no-ops.
        let readiness = ServiceReadiness()

        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoopThreads)
        defer { try? group.syncShutdownGracefully() }
        let membershipGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? membershipGroup.syncShutdownGracefully() }
        let exitPromise = group.next().makePromise(of: Int32.self)
        let exit: @Sendable (Int32) -> Void = { code in exitPromise.succeed(code) }
        // Every way out completes the promise (a second completion is ignored).
        defer { exitPromise.succeed(1) }
        // Prometheus metrics on `GET /metrics`; also the process-wide swift-metrics backend.
        let metrics = AgentMetrics()
        metrics.bootstrapGlobalMetricsSystem()

        let stateStore: NodeStateStore
        let service: MembershipService
        let kv: KVService
        let antiEntropy: AntiEntropy
        do {
            let opening = ContinuousClock.now
            stateStore = try NodeStateStore(
                dataDir: config.dataDir, sync: config.store.sync, backend: config.store.backend,
                commitDelay: config.store.commitDelay)
            if stateStore.store.truncatedAtOpen > 0 {
                logger.warning(
                    "cut a torn write off the end of the object log (a crash during a commit; none of it was acknowledged)",
                    metadata: ["bytes": "\(stateStore.store.truncatedAtOpen)"])
            }
            let openSeconds = (ContinuousClock.now - opening).seconds
            logger.info(
                "storage opened",
                metadata: [
                    "seconds": "\(String(format: "%.3f", openSeconds))",
                    "objects": "\((try? stateStore.store.count()) ?? -1)",
                    "backend": "\(config.store.backend)", "sync": "\(config.store.sync)", "allocator": "\(allocator)",
                ])
            service = try MembershipService(
                config: config, stateStore: stateStore, group: group, loop: membershipGroup.next(), logger: logger,
                onExit: exit)
            kv = KVService(
                settings: config.store, clusterName: config.clusterName, membership: service,
                store: stateStore.store, group: group, metrics: metrics, logger: logger)
            let entropy = AntiEntropy(
                settings: config.store, membership: service, replicas: kv.replicas, loop: group.next(), logger: logger)
            antiEntropy = entropy
            let replicas = kv.replicas
            let partitions = config.store.partitions
            service.otherRequests = { message, peer, _, loop in
                if case .repairKeys = message { return entropy.handleRepairKeys(message) }
                if case .reapTombstone = message { return entropy.handleReapTombstone(message) }
                if case .partitionPage = message {
                    return loop.makeSucceededFuture(
                        RingHandoff.partitionPage(message, replicas: replicas, partitions: partitions))
                }
                return kv.handleReplicaRequest(message, from: peer, on: loop)
            }
            // Before the node takes any write, so every later change reaches the trees.
            try entropy.rebuild()
        } catch {
            logger.critical("cannot start: \(error)")
            return 1
        }
        defer { stateStore.store.close() }
        logStorageHealth(stateStore.store, logger: logger)

        let handoff = HintedHandoff(
            store: stateStore.store, replicas: kv.replicas, membership: service, settings: config.store,
            loop: group.next(), metrics: metrics, logger: logger)
        let ring = RingHandoff(
            membership: service, replicas: kv.replicas, handoff: handoff, antiEntropy: antiEntropy,
            settings: config.store, loop: group.next(), logger: logger, exit: exit)

        let gate = ClientGate()
        let http: Channel
        do {
            try service.start().wait()
            if config.store.hintedHandoff { handoff.start() }
            antiEntropy.start()
            ring.start()
            http = try HTTPAPIServer.bind(
                on: config.httpAddr, group: group, token: config.httpToken,
                maxBodyBytes: config.store.maxValueBytes + 1,
                router: { request, loop in
                    route(
                        request, service: service, kv: kv, handoff: handoff, ring: ring, antiEntropy: antiEntropy,
                        storage: stateStore.store, metrics: metrics, loop: loop)
                }
            ).wait()
        } catch {
            logger.critical(
                "cannot bind: \(error)", metadata: ["bind": "\(config.bind)", "http": "\(config.httpAddr)"])
            return 1
        }
        logger.info("HTTP API listening", metadata: ["address": "\(config.httpAddr)"])
        // READY=1 once the node serves, as `chorus status --wait-healthy` sees it: it
        // has joined (a seed or known peer answered; until then it refuses client
        // requests with 503) and, new to the ring, holds its partitions.
        if readiness.notifier.isEnabled {
            readiness.notifier.status("joining the cluster; HTTP API on \(config.httpAddr)")
            group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(50)) { task in
                guard readiness.isStarting else {
                    task.cancel()
                    return
                }
                guard service.hasJoined, service.ringPhase != .joining else { return }
                readiness.ready(status: "serving; HTTP API on \(config.httpAddr)")
                task.cancel()
            }
        }

        // SIGTERM / SIGINT: graceful stop. New client requests get 503 (clients
        // retry elsewhere) while those in flight finish (at most 5 s); then the
        // node announces `stopped` to every member, and exits 0 once the store is
        // flushed (the deferred close).
        let signals = stopSignals
        let signalLogger = logger
        let drainLoop = group.next()
        let signalThread = Thread {
            var set = signals
            var received: Int32 = 0
            while true {
                guard sigwait(&set, &received) == 0 else { continue }
                guard received == SIGHUP else { break }
                // SIGHUP: reload what can change while running: the log level and
                // the keyring file (other settings need a restart).
                readiness.reload {
                    do {
                        if let reload {
                            let fresh = try reload()
                            logLevel.value = Logger.Level(rawValue: fresh.logLevel) ?? logLevel.value
                        }
                        let keys = try service.reloadKeyring()
                        signalLogger.notice(
                            "reloaded", metadata: ["log_level": "\(logLevel.value)", "keys": "\(keys)"])
                        return "serving; reloaded log_level=\(logLevel.value) keys=\(keys)"
                    } catch {
                        signalLogger.error(
                            "reload failed; keeping the running settings", metadata: ["error": "\(error)"])
                        return "serving; reload failed: \(error)"
                    }
                }
            }
            readiness.stopping(status: "stopping; draining client requests")
            signalLogger.notice("received signal, draining client requests", metadata: ["signal": "\(received)"])
            let started = NIODeadline.now()
            // New client requests are refused (clients retry elsewhere) and the members
            // are told `stopped` at once, so they route replica writes and forwarded
            // requests around this node while the requests in flight finish over the
            // still open sessions; then the sessions close.
            let drained = gate.drain(on: drainLoop, timeout: .seconds(5))
            let announced = service.announceDeparture(.stopped)
            drained.and(announced).flatMap { unfinished, _ in
                signalLogger.notice(
                    "drained",
                    metadata: [
                        "seconds": "\(Double((NIODeadline.now() - started).nanoseconds) / 1e9)",
                        "unfinished": "\(unfinished)",
                    ])
                return service.depart(.stopped)
            }.whenComplete { _ in exit(0) }
        }
        signalThread.start()

        let code = (try? exitPromise.futureResult.wait()) ?? 1
        try? http.close().wait()
        handoff.stop()
        ring.stop()
        antiEntropy.stop()
        service.sessions.closeAll()
        logger.info("agent exited", metadata: ["status": "\(code)"])
        return code
    }

    /// Says in the log when the database stops or resumes taking writes (a full disk, an
    /// I/O error, damage found at run time); `chorus status` shows the same state.
    static func logStorageHealth(_ store: LocalStore, logger: Logger) {
        let path = store.path
        store.onHealthChange { health in
            let metadata: Logger.Metadata = ["path": "\(path)", "detail": "\(health.detail ?? "")"]
            switch health {
            case .ok:
                logger.notice("storage: writable again; writes are accepted", metadata: ["path": "\(path)"])
            case .diskFull:
                logger.error(
                    """
                    storage: read-only (disk full): writes are refused (clients get 503, nothing is acknowledged) \
                    until space is freed on the data volume; reads go on
                    """, metadata: metadata)
            case .ioError:
                logger.error(
                    "storage: read-only (I/O error): writes are refused until a commit succeeds; check the disk",
                    metadata: metadata)
            case .corrupt:
                logger.critical(
                    """
                    storage: the database is corrupt: writes are refused from now on; stop the agent and restore \
                    the data dir from a replica (a restart checks the file and stops)
                    """, metadata: metadata)
            }
        }
    }

    static func route(
        _ request: APIRequest, service: MembershipService, kv: KVService, handoff: HintedHandoff, ring: RingHandoff,
        antiEntropy: AntiEntropy, storage: LocalStore, metrics: AgentMetrics, loop: EventLoop
    ) -> EventLoopFuture<APIResponse> {
        if request.path.hasPrefix("/v1/kv/") {
            return KVRoutes.route(request, kv: kv, metrics: metrics, loop: loop)
        }
        let path = request.path.hasSuffix("/") ? String(request.path.dropLast()) : request.path
        switch (request.method, path) {
        case (.GET, "/metrics"):
            // Membership, transport and anti-entropy figures are read at scrape time; the rest is
            // recorded as it happens.
            return service.statusView().and(antiEntropy.statusView()).map { status, entropy in
                metrics.observe(status)
                metrics.observe(entropy)
                metrics.setStoreReadOnly(!storage.health.isWritable)
                metrics.observe(storage.statistics)
                if let hints = try? handoff.summary() {
                    metrics.setHintsPending(
                        Dictionary(hints.map { ($0.target, $0.count) }, uniquingKeysWith: +),
                        bytes: hints.reduce(0) { $0 + $1.bytes })
                }
                return .metrics(metrics)
            }
        case (.GET, "/v1/hints"):
            do {
                return loop.makeSucceededFuture(.json(try handoff.summary()))
            } catch {
                return loop.makeSucceededFuture(.error(.internalServerError, "cannot read hints: \(error)"))
            }
        case (_, "/metrics"):
            return loop.makeSucceededFuture(.error(.methodNotAllowed, "\(request.method) not allowed on /metrics"))
        case (.GET, "/v1/members"):
            return service.membersView().map { members in
                if let status = request.query["status"], !status.isEmpty {
                    return .json(members.filter { $0.status == status })
                }
                return .json(members)
            }
        case (.GET, "/v1/status"):
            return service.statusView().and(antiEntropy.statusView()).map { status, entropy in
                var status = status
                status.antiEntropy = entropy
                status.ring = ring.progress
                let health = storage.health
                status.storage = StorageView(
                    state: health.summary, writable: health.isWritable, detail: health.detail, path: storage.path)
                return .json(status)
            }
        case (.POST, "/v1/repair"):
            var partition: Int?
            if let text = request.query["partition"], !text.isEmpty {
                guard let value = Int(text), value >= 0, value < service.config.store.partitions else {
                    return loop.makeSucceededFuture(
                        .error(.badRequest, "partition must be 0 to \(service.config.store.partitions - 1)"))
                }
                partition = value
            }
            let node = request.query["node"].flatMap { $0.isEmpty ? nil : $0 }
            if let node, !service.view.members.values.contains(where: { $0.name == node }) {
                return loop.makeSucceededFuture(.error(.notFound, "no member named '\(node)'"))
            }
            return antiEntropy.startRound(partition: partition, node: node).map { .json($0, status: .accepted) }
        case (.GET, "/v1/antientropy/roots"):
            return loop.makeSucceededFuture(.json(antiEntropy.rootsView()))
        case (.GET, "/v1/repair"):
            return antiEntropy.roundView().map { round in
                guard let round else { return .error(.notFound, "no repair round has run") }
                return .json(round)
            }
        case (.POST, "/v1/leave"):
            // Streams this node's partitions to their next owners, then announces
            // `left` and exits; GET /v1/leave follows it.
            switch ring.leave(force: request.query["force"] == "true") {
            case .success(let progress): return loop.makeSucceededFuture(.json(progress, status: .accepted))
            case .failure(let error): return loop.makeSucceededFuture(.error(.conflict, error.description))
            }
        case (.GET, "/v1/leave"):
            return loop.makeSucceededFuture(.json(ring.progress))
        case (.POST, "/v1/remove"):
            guard let name = request.query["name"], !name.isEmpty else {
                return loop.makeSucceededFuture(.error(.badRequest, "name the member to remove: ?name=NAME"))
            }
            return service.remove(name: name).map { result in
                switch result {
                case .success(let member):
                    return .json(["removed": member.name, "id": member.id.description])
                case .failure(.unknown):
                    return .error(.notFound, "no member named '\(name)'")
                case .failure(let error):
                    return .error(.conflict, "cannot remove \(name): \(error)")
                }
            }
        case (.GET, "/v1/ring"):
            return loop.makeSucceededFuture(.json(ringView(service.view, config: service.config, request: request)))
        case (.GET, "/v1/keys"):
            return service.keyOperation(.list, key: "").map { .json($0) }
        case (.POST, _) where path.hasPrefix("/v1/keys/"):
            let operation = String(path.dropFirst("/v1/keys/".count))
            guard let kind = KeyOperation.Kind.allCases.first(where: { $0.name == operation }), kind != .list else {
                return loop.makeSucceededFuture(.error(.notFound, "unknown key operation '\(operation)'"))
            }
            struct Body: Decodable { var key: String }
            guard let body = try? JSONDecoder().decode(Body.self, from: Data(request.body)) else {
                return loop.makeSucceededFuture(.error(.badRequest, "body must be JSON {\"key\": \"<base64 key>\"}"))
            }
            return service.keyOperation(kind, key: body.key).map { results in
                .json(results, status: results.allSatisfy(\.ok) ? .ok : .multiStatus)
            }
        case (_, "/v1/members"), (_, "/v1/status"), (_, "/v1/leave"), (_, "/v1/remove"), (_, "/v1/keys"),
            (_, "/v1/ring"),
            (_, "/v1/hints"), (_, "/v1/repair"), (_, "/v1/antientropy/roots"):
            return loop.makeSucceededFuture(
                .error(.methodNotAllowed, "\(request.method) not allowed on \(request.path)"))
        default:
            return loop.makeSucceededFuture(.error(.notFound, "no such endpoint: \(request.path)"))
        }
    }

    /// `GET /v1/ring[?bucket=B&key=K]`: each node's share of partitions, and where a key lives.
    static func ringView(_ view: ClusterView, config: AgentConfig, request: APIRequest) -> RingView {
        let bucket = request.query["bucket"] ?? BucketProperties.defaultBucketName
        let n = config.store.buckets.properties(of: bucket).n
        let shares = view.placement.shares(n: n)
        let nodes = view.placement.nodes.map { id in
            let member = view.members[id]
            return RingView.Node(
                name: member?.name ?? id.description, id: id.description,
                status: member?.status.description ?? "unknown",
                primary: shares[id]?.primary ?? 0, replica: shares[id]?.replica ?? 0)
        }
        var key: RingView.Key?
        if let name = request.query["key"] {
            let partition = view.placement.partitioner.partition(bucket: bucket, key: name)
            let ranking = view.placement.ranking(of: partition)
            key = RingView.Key(
                bucket: bucket, key: name, partition: partition,
                replicas: ranking.prefix(n).map { view.members[$0]?.name ?? $0.description },
                fallbacks: ranking.dropFirst(n).map { view.members[$0]?.name ?? $0.description })
        }
        return RingView(
            partitions: view.placement.partitioner.partitionCount, n: n, bucket: bucket, nodes: nodes, key: key)
    }
}
