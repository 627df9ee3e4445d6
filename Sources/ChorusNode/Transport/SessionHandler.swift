import ChorusCore
import ChorusCrypto
import NIOCore

/// Why a session could not be used.
enum SessionError: Error, CustomStringConvertible {
    case timedOut(Endpoint?)
    case connectFailed(Endpoint, String)
    case closed
    case handshakeFailed(String)

    var description: String {
        switch self {
        case .timedOut(let address?): "no reply from \(address) in time"
        case .timedOut(nil): "no reply in time"
        case .connectFailed(let address, let reason): "cannot connect to \(address): \(reason)"
        case .closed:
            "the connection closed before a reply (does the peer hold one of our keys and the same cluster name?)"
        case .handshakeFailed(let reason): "session handshake failed: \(reason)"
        }
    }
}

/// One agent-to-agent TCP connection: the handshake of `SessionHello`, then
/// multiplexed `SessionFrame`s sealed with the session's keys (DESIGN §7).
///
/// Confined to its channel's event loop: every method runs there, so frames are
/// sealed in the order they are written, as the implicit nonces require.
final class SessionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = [UInt8]

    /// Answers a request from `peer`; runs on the session channel's event loop,
    /// which it may answer on without a hop.
    typealias RequestHandler =
        @Sendable (ClusterMessage, NodeID, SocketAddress?, EventLoop) -> EventLoopFuture<
            ClusterMessage
        >

    private enum State {
        case initiating(KeyExchangeKeyPair)
        case awaitingHello
        case established(SessionCipher)
        case closed
    }

    let role: SessionHello.Role
    let localID: NodeID
    let sealer: FrameSealer
    let maxClockDistance: UInt64
    let handleRequest: RequestHandler
    let refused: @Sendable (String, SocketAddress?) -> Void
    /// Completes with this handler once the handshake is done.
    let ready: EventLoopPromise<SessionHandler>

    private var state: State
    private var context: ChannelHandlerContext?
    private var nextRequestID: UInt64 = 1
    /// Requests awaiting their response, each with the time it gives up.
    private var pending: [UInt64: (promise: EventLoopPromise<ClusterMessage>, deadline: NIODeadline)] = [:]
    /// The next pass over `pending` for requests past their deadline, while any wait.
    private var expirySweep: Scheduled<Void>?
    /// How often that pass runs: a request times out up to this much after its deadline.
    /// One timer per session instead of one per request, which every write paid twice (a
    /// task scheduled, then cancelled in the event loop's timer heap).
    static let expirySweepInterval = TimeAmount.milliseconds(50)
    /// The node at the other end, known once the handshake is done.
    private(set) var peer: NodeID?
    /// The cluster key id the handshake used, so removing that key can end the session.
    private(set) var keyID: UInt32?

    init(
        role: SessionHello.Role, localID: NodeID, sealer: FrameSealer, maxClockDistance: Duration,
        ready: EventLoopPromise<SessionHandler>, handleRequest: @escaping RequestHandler,
        refused: @escaping @Sendable (String, SocketAddress?) -> Void
    ) {
        self.role = role
        self.localID = localID
        self.sealer = sealer
        self.maxClockDistance = UInt64(max(0, maxClockDistance.nanosecondsClamped))
        self.ready = ready
        self.handleRequest = handleRequest
        self.refused = refused
        self.state = role == .initiator ? .initiating(.generate()) : .awaitingHello
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { sendInitiatorHello(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        sendInitiatorHello(context: context)
        context.fireChannelActive()
    }

    private var helloSent = false

    private func sendInitiatorHello(context: ChannelHandlerContext) {
        guard case .initiating(let pair) = state, !helloSent else { return }
        helloSent = true
        let hello = SessionHello(
            role: .initiator, node: localID, publicKey: pair.publicKey, sentAt: WallClock.nanoseconds())
        context.writeAndFlush(
            NIOAny(FrameDecoder.frame(sealer.seal(hello.encoded()), allocator: context.channel.allocator)), promise: nil
        )
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        switch state {
        case .initiating(let pair):
            acceptHello(bytes, expecting: .responder, pair: pair, context: context)
        case .awaitingHello:
            let pair = KeyExchangeKeyPair.generate()
            guard let keyID = acceptHello(bytes, expecting: .initiator, pair: pair, context: context) else { return }
            let hello = SessionHello(
                role: .responder, node: localID, publicKey: pair.publicKey, sentAt: WallClock.nanoseconds())
            // Answer under the key the initiator used: a node that missed a rotation
            // still holds only the old key, and must read the session that updates it.
            let sealed = sealer.seal(hello.encoded(), keyID: keyID)
            context.writeAndFlush(
                NIOAny(FrameDecoder.frame(sealed, allocator: context.channel.allocator)), promise: nil)
        case .established(var cipher):
            let plaintext: [UInt8]
            do {
                plaintext = try cipher.open(bytes)
            } catch {
                refused("auth_failed", context.remoteAddress)
                fail(context: context, SessionError.handshakeFailed("frame failed authentication"))
                return
            }
            state = .established(cipher)
            let decoded: SessionFrame.Decoded
            do {
                decoded = try SessionFrame.decode(plaintext)
            } catch {
                refused("malformed", context.remoteAddress)
                fail(context: context, SessionError.handshakeFailed("malformed frame"))
                return
            }
            switch decoded {
            case .frame(let frame):
                dispatch(frame, context: context)
            case .unsupported(let kind, let id, let messageType):
                unsupported(kind: kind, id: id, messageType: messageType, context: context)
            }
        case .closed:
            break
        }
    }

    /// Opens and checks a hello; on success derives the session and returns the
    /// cluster key id it was sealed with.
    @discardableResult
    private func acceptHello(
        _ bytes: [UInt8], expecting role: SessionHello.Role, pair: KeyExchangeKeyPair, context: ChannelHandlerContext
    ) -> UInt32? {
        let hello: SessionHello
        do {
            hello = try SessionHello(decoding: try sealer.open(bytes))
        } catch let error as Sealer.OpenError {
            refused(error.reason, context.remoteAddress)
            fail(context: context, SessionError.handshakeFailed("peer's hello did not open: \(error.reason)"))
            return nil
        } catch {
            refused("malformed", context.remoteAddress)
            fail(context: context, SessionError.handshakeFailed("malformed hello"))
            return nil
        }
        let now = WallClock.nanoseconds()
        let distance = hello.sentAt > now ? hello.sentAt - now : now - hello.sentAt
        guard hello.role == role, distance <= maxClockDistance else {
            refused(hello.role == role ? "stale" : "malformed", context.remoteAddress)
            fail(context: context, SessionError.handshakeFailed("stale or misdirected hello"))
            return nil
        }
        let cipherRole: SessionCipher.Role = self.role == .initiator ? .initiator : .responder
        do {
            state = .established(try SessionCipher(role: cipherRole, mine: pair, peerPublicKey: hello.publicKey))
        } catch {
            refused("malformed", context.remoteAddress)
            fail(context: context, SessionError.handshakeFailed("\(error)"))
            return nil
        }
        peer = hello.node
        keyID = FrameSealer.keyID(of: bytes)
        ready.succeed(self)
        return keyID
    }

    private func dispatch(_ frame: SessionFrame, context: ChannelHandlerContext) {
        switch frame.kind {
        case .response:
            if let entry = pending.removeValue(forKey: frame.id) {
                entry.promise.succeed(frame.message)
            }
        case .request, .oneWay:
            guard let peer else { return }
            let loop = context.eventLoop
            handleRequest(frame.message, peer, context.channel.remoteAddress, loop).hop(to: loop).whenSuccess {
                [self] reply in
                guard frame.kind == .request else { return }
                send(SessionFrame(kind: .response, id: frame.id, message: reply))
            }
        }
    }

    /// The `refused` reason of a message this version does not know (the session stays).
    static let unsupportedRefusal = "unsupported"

    /// A frame from a peer running a newer version, with a message this one does not know:
    /// counted, a request answered with a refusal (its sender treats it as this replica's
    /// failure and goes on), a reply handed to its request as a refusal. The session stays.
    private func unsupported(
        kind: SessionFrame.Kind, id: UInt64, messageType: UInt8, context: ChannelHandlerContext
    ) {
        refused(Self.unsupportedRefusal, context.remoteAddress)
        let reason = SessionFrame.unsupportedReason(messageType: messageType)
        switch kind {
        case .request:
            send(SessionFrame(kind: .response, id: id, message: .refused(reason: reason)))
        case .response:
            dispatch(
                SessionFrame(kind: .response, id: id, message: .refused(reason: "the peer answered with \(reason)")),
                context: context)
        case .oneWay:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, SessionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is FrameDecoder.FrameTooLarge { refused("oversize", context.remoteAddress) }
        fail(context: context, error)
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        if case .closed = state { return }
        state = .closed
        ready.fail(error)
        let waiting = pending
        pending = [:]
        expirySweep?.cancel()
        expirySweep = nil
        for (_, entry) in waiting {
            entry.promise.fail(error)
        }
        context.close(promise: nil)
    }

    // MARK: Sending (call on the channel's event loop)

    private func send(_ frame: SessionFrame) {
        guard let context, case .established(var cipher) = state else { return }
        let sealed = cipher.seal(frame.encoded())
        state = .established(cipher)
        context.write(NIOAny(FrameDecoder.frame(sealed, allocator: context.channel.allocator)), promise: nil)
        scheduleFlush(on: context.eventLoop)
    }

    /// Whether a flush is queued on the event loop for the frames written since the last.
    private var flushScheduled = false

    /// Flushes once per event-loop tick instead of once per frame: the replica writes
    /// one group commit releases, or the acknowledgements one fsync releases, leave in
    /// one `writev` and reach the peer in one read, where a flush per frame cost a
    /// syscall and a TCP segment each (on both ends) — a large part of a write's CPU.
    /// The flush task runs after the tasks and I/O events already queued, so a frame
    /// waits at most for the rest of the current tick.
    private func scheduleFlush(on loop: EventLoop) {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [self] in
            flushScheduled = false
            context?.flush()
        }
    }

    /// Sends a request and completes with its response, or fails after `timeout`.
    func request(_ message: ClusterMessage, timeout: TimeAmount, loop: EventLoop) -> EventLoopFuture<ClusterMessage> {
        let promise = loop.makePromise(of: ClusterMessage.self)
        guard case .established = state else {
            promise.fail(SessionError.closed)
            return promise.futureResult
        }
        let id = nextRequestID
        nextRequestID += 1
        pending[id] = (promise, .now() + timeout)
        scheduleExpirySweep(on: loop)
        send(SessionFrame(kind: .request, id: id, message: message))
        return promise.futureResult
    }

    private func scheduleExpirySweep(on loop: EventLoop) {
        guard expirySweep == nil else { return }
        expirySweep = loop.scheduleTask(in: Self.expirySweepInterval) { [self] in
            expirySweep = nil
            let now = NIODeadline.now()
            for (id, entry) in pending where entry.deadline <= now {
                pending.removeValue(forKey: id)
                entry.promise.fail(SessionError.timedOut(nil))
            }
            if !pending.isEmpty { scheduleExpirySweep(on: loop) }
        }
    }

    func close() {
        context?.close(promise: nil)
    }
}
