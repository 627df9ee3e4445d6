import NIOConcurrencyHelpers
import NIOCore

/// Admits client requests, and drains them on a graceful stop (DESIGN §9): once
/// closed, new requests get 503 "agent is stopping" (a client retries on another
/// node), and the stop waits, bounded, for those already in flight.
final class ClientGate: Sendable {
    private let state = NIOLockedValueBox((open: true, inFlight: 0))

    /// Whether to take a request; a taken request must be `finished()`.
    func enter() -> Bool {
        state.withLockedValue { state in
            guard state.open else { return false }
            state.inFlight += 1
            return true
        }
    }

    func finished() {
        state.withLockedValue { $0.inFlight -= 1 }
    }

    /// Stops admitting requests; completes once none is in flight, or after `timeout`.
    func drain(on loop: EventLoop, timeout: TimeAmount) -> EventLoopFuture<Int> {
        state.withLockedValue { $0.open = false }
        let deadline = NIODeadline.now() + timeout
        let promise = loop.makePromise(of: Int.self)
        @Sendable func check() {
            let inFlight = state.withLockedValue { $0.inFlight }
            if inFlight == 0 || NIODeadline.now() >= deadline {
                promise.succeed(inFlight)
            } else {
                loop.scheduleTask(in: .milliseconds(10)) { check() }
            }
        }
        check()
        return promise.futureResult
    }
}
