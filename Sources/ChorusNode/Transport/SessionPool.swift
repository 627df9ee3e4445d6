import ChorusCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Agent-to-agent TCP (DESIGN §7): one persistent, multiplexed, encrypted session
/// per peer address, opened on first use and reopened after a failure; plus the
/// listener that accepts sessions from peers. Every request has a timeout, so none
/// hangs forever.
final class SessionPool: Sendable {
    let group: EventLoopGroup
    let sealer: FrameSealer
    let localID: NodeID
    let maxClockDistance: Duration
    let connectTimeout: TimeAmount
    private let handleRequest: SessionHandler.RequestHandler
    private let refused: @Sendable (String, SocketAddress?) -> Void
    private let sessions = NIOLockedValueBox<[Endpoint: Session]>([:])
    private let inbound = NIOLockedValueBox<[ObjectIdentifier: SessionHandler]>([:])
    private let counts = NIOLockedValueBox((sent: UInt64(0), failed: UInt64(0)))

    /// Requests sent on every session since start, and how many failed or timed out.
    var requestCounts: (sent: UInt64, failed: UInt64) { counts.withLockedValue { $0 } }

    init(
        group: EventLoopGroup, sealer: FrameSealer, localID: NodeID, maxClockDistance: Duration,
        connectTimeout: TimeAmount = .seconds(2),
        handleRequest: @escaping SessionHandler.RequestHandler,
        refused: @escaping @Sendable (String, SocketAddress?) -> Void
    ) {
        self.group = group
        self.sealer = sealer
        self.localID = localID
        self.maxClockDistance = maxClockDistance
        self.connectTimeout = connectTimeout
        self.handleRequest = handleRequest
        self.refused = refused
    }

    /// Accepts sessions on `address` (the gossip port, TCP).
    func listen(on address: Endpoint) -> EventLoopFuture<Channel> {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { [self] channel in
                let ready = channel.eventLoop.makePromise(of: SessionHandler.self)
                let handler = makeHandler(role: .responder, ready: ready)
                let key = ObjectIdentifier(handler)
                inbound.withLockedValue { $0[key] = handler }
                channel.closeFuture.whenComplete { [self] _ in
                    _ = inbound.withLockedValue { $0.removeValue(forKey: key) }
                }
                // An initiator that never finishes its handshake is cut off.
                let deadline = channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
                ready.futureResult.whenComplete { _ in deadline.cancel() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .bind(host: address.host, port: Int(address.port))
    }

    private func makeHandler(role: SessionHello.Role, ready: EventLoopPromise<SessionHandler>) -> SessionHandler {
        SessionHandler(
            role: role, localID: localID, sealer: sealer, maxClockDistance: maxClockDistance, ready: ready,
            handleRequest: handleRequest, refused: refused)
    }

    /// A pooled session: its handshake, and its handler once the handshake is done.
    private struct Session {
        var future: EventLoopFuture<SessionHandler>
        /// Set when `future` succeeds: requests then go straight to the channel's loop
        /// (no task at all from that loop) instead of chaining on the completed future,
        /// which cost a task on the future's loop and another on the channel's.
        var established: SessionHandler?
    }

    /// Sends `message` to the agent at `address` and waits for its answer.
    /// Completes on the session channel's loop: callers hop only if they must.
    func request(_ message: ClusterMessage, to address: Endpoint, timeout: TimeAmount)
        -> EventLoopFuture<ClusterMessage>
    {
        let deadline = NIODeadline.now() + timeout
        counts.withLockedValue { $0.sent += 1 }
        let (future, established) = session(to: address, timeout: timeout)
        let sent: EventLoopFuture<ClusterMessage>
        if let handler = established {
            let channelLoop = handler.ready.futureResult.eventLoop
            if channelLoop.inEventLoop {
                sent = handler.request(message, timeout: timeout, loop: channelLoop)
            } else {
                sent = channelLoop.flatSubmit { handler.request(message, timeout: timeout, loop: channelLoop) }
            }
        } else {
            sent = future.flatMap { handler in
                let channelLoop = handler.ready.futureResult.eventLoop
                let remaining = deadline - NIODeadline.now()
                guard remaining > .zero else { return channelLoop.makeFailedFuture(SessionError.timedOut(address)) }
                return channelLoop.flatSubmit { handler.request(message, timeout: remaining, loop: channelLoop) }
            }
        }
        return sent.flatMapErrorThrowing { [counts] error in
            counts.withLockedValue { $0.failed += 1 }
            if case SessionError.timedOut(nil) = error { throw SessionError.timedOut(address) }
            throw error
        }
    }

    /// Opens the session to `address` unless one is open or opening (no request is sent).
    func warm(_ address: Endpoint) {
        _ = session(to: address, timeout: connectTimeout)
    }

    /// The session to `address` (connecting and handshaking if there is none), and its
    /// handler if the handshake is done.
    private func session(to address: Endpoint, timeout: TimeAmount) -> (
        EventLoopFuture<SessionHandler>, SessionHandler?
    ) {
        sessions.withLockedValue { sessions in
            if let existing = sessions[address] { return (existing.future, existing.established) }
            let future = connect(to: address, timeout: timeout)
            sessions[address] = Session(future: future)
            return (future, nil)
        }
    }

    private func connect(to address: Endpoint, timeout: TimeAmount) -> EventLoopFuture<SessionHandler> {
        let loop = group.next()
        let ready = loop.makePromise(of: SessionHandler.self)
        let future = ready.futureResult
        // Drop this session from the pool once it fails or closes, so the next
        // request reconnects (unless a newer session took its place already).
        let forget: @Sendable () -> Void = { [self] in
            sessions.withLockedValue { sessions in
                if sessions[address]?.future === future { sessions[address] = nil }
            }
        }
        ClientBootstrap(group: loop)
            .connectTimeout(min(timeout, connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(makeHandler(role: .initiator, ready: ready))
                }
            }
            .connect(host: address.host, port: Int(address.port))
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.closeFuture.whenComplete { _ in forget() }
                    let deadline = loop.scheduleTask(in: timeout) {
                        ready.fail(SessionError.timedOut(address))
                        channel.close(promise: nil)
                    }
                    ready.futureResult.whenComplete { _ in deadline.cancel() }
                case .failure(let error):
                    ready.fail(SessionError.connectFailed(address, "\(error)"))
                }
            }
        ready.futureResult.whenComplete { [self] result in
            switch result {
            case .success(let handler):
                // Runs on the channel's loop as the handshake completes, before a close
                // could run `forget`. A request that finds the handler after its channel
                // closed fails at once (`SessionError.closed`), as it did on the future.
                sessions.withLockedValue { sessions in
                    if sessions[address]?.future === future { sessions[address]?.established = handler }
                }
            case .failure:
                forget()
            }
        }
        return ready.futureResult
    }

    /// Ends every session whose handshake used cluster key `keyID` (after that key
    /// is removed from the keyring, nothing it authenticated goes on).
    func closeSessions(keyID: UInt32) {
        let outbound = sessions.withLockedValue { $0.values.map(\.future) }
        for future in outbound {
            future.whenSuccess { handler in
                handler.ready.futureResult.eventLoop.execute { if handler.keyID == keyID { handler.close() } }
            }
        }
        for handler in inbound.withLockedValue({ Array($0.values) }) {
            handler.ready.futureResult.eventLoop.execute { if handler.keyID == keyID { handler.close() } }
        }
    }

    /// Closes every session.
    func closeAll() {
        let outbound = sessions.withLockedValue { sessions in
            defer { sessions = [:] }
            return sessions.values.map(\.future)
        }
        for future in outbound {
            future.whenSuccess { handler in handler.ready.futureResult.eventLoop.execute { handler.close() } }
        }
        for handler in inbound.withLockedValue({ Array($0.values) }) {
            handler.ready.futureResult.eventLoop.execute { handler.close() }
        }
    }
}
