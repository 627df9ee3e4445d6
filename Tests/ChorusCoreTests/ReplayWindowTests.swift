import Testing

@testable import ChorusCore

@Suite struct ReplayWindowTests {
    let sender = NodeID(high: 1, low: 2)
    let now: UInt64 = 1_000_000_000_000

    @Test func firstDatagramIsAcceptedAndItsRepeatIsDropped() {
        var window = ReplayWindow()
        #expect(window.admit(sender: sender, bootID: 7, sequence: 1, sentAt: now, wallNow: now) == .accept)
        #expect(window.admit(sender: sender, bootID: 7, sequence: 1, sentAt: now, wallNow: now) == .replay)
    }

    @Test func reorderedDatagramsInsideTheWindowAreAcceptedOnce() {
        var window = ReplayWindow()
        for sequence in [5, 3, 4, 1, 2] as [UInt64] {
            #expect(window.admit(sender: sender, bootID: 7, sequence: sequence, sentAt: now, wallNow: now) == .accept)
        }
        for sequence in 1...5 as ClosedRange<UInt64> {
            #expect(window.admit(sender: sender, bootID: 7, sequence: sequence, sentAt: now, wallNow: now) == .replay)
        }
    }

    @Test func sequencesFallingBehindTheWindowAreDropped() {
        var window = ReplayWindow()
        #expect(window.admit(sender: sender, bootID: 7, sequence: 10, sentAt: now, wallNow: now) == .accept)
        #expect(window.admit(sender: sender, bootID: 7, sequence: 5000, sentAt: now, wallNow: now) == .accept)
        #expect(window.admit(sender: sender, bootID: 7, sequence: 11, sentAt: now, wallNow: now) == .replay)
        // A slot reused by the sliding window is free again for its new sequence.
        #expect(window.admit(sender: sender, bootID: 7, sequence: 5000 - 1, sentAt: now, wallNow: now) == .accept)
    }

    @Test func datagramsSentTooLongAgoAreStale() {
        var window = ReplayWindow(maxClockDistance: .seconds(60))
        let old = now - 61 * 1_000_000_000
        #expect(window.admit(sender: sender, bootID: 7, sequence: 1, sentAt: old, wallNow: now) == .stale)
        let future = now + 61 * 1_000_000_000
        #expect(window.admit(sender: sender, bootID: 7, sequence: 1, sentAt: future, wallNow: now) == .stale)
    }

    @Test func aNewerBootOpensAFreshWindowButAnOlderBootIsStale() {
        var window = ReplayWindow()
        #expect(window.admit(sender: sender, bootID: 1, sequence: 100, sentAt: now, wallNow: now) == .accept)
        #expect(window.admit(sender: sender, bootID: 2, sequence: 1, sentAt: now + 10, wallNow: now + 10) == .accept)
        // A datagram captured from the previous boot is not accepted again.
        #expect(window.admit(sender: sender, bootID: 1, sequence: 101, sentAt: now + 5, wallNow: now + 20) == .stale)
        #expect(window.admit(sender: sender, bootID: 2, sequence: 1, sentAt: now + 10, wallNow: now + 20) == .replay)
    }

    @Test func sendersBeyondTheBoundEvictTheLeastRecentlyHeard() {
        var window = ReplayWindow(maxSenders: 2)
        let a = NodeID(high: 0, low: 1)
        let b = NodeID(high: 0, low: 2)
        let c = NodeID(high: 0, low: 3)
        #expect(window.admit(sender: a, bootID: 1, sequence: 1, sentAt: now, wallNow: now) == .accept)
        #expect(window.admit(sender: b, bootID: 1, sequence: 1, sentAt: now + 1, wallNow: now + 1) == .accept)
        #expect(window.admit(sender: c, bootID: 1, sequence: 1, sentAt: now + 2, wallNow: now + 2) == .accept)
        // `a` was forgotten, so its repeat is accepted as new; `b` is still tracked.
        #expect(window.admit(sender: b, bootID: 1, sequence: 1, sentAt: now + 1, wallNow: now + 3) == .replay)
    }
}
