import Testing

@testable import ChorusCore

@Suite struct HLCTests {
    let second: UInt64 = 1_000_000_000
    let epoch: UInt64 = 1_700_000_000_000_000_000

    @Test func readingsAreMonotonicWhenTheWallClockGoesBackwards() {
        var rng = CausalRNG(seed: 0x4C_C001)
        for _ in 0..<200 {
            var clock = HybridLogicalClock()
            var wall = epoch
            var previous = HLCTimestamp.zero
            var highestWall: UInt64 = 0
            for _ in 0..<50 {
                // Steps forward and backward, some large (NTP steps, VM migration).
                let step = UInt64(rng.below(5)) * (rng.chance(20) ? second : 1)
                wall = rng.chance(40) ? wall - step : wall + step
                highestWall = max(highestWall, wall)
                let now = clock.now(wall: wall)
                #expect(now > previous)
                #expect(now.wallNanos == highestWall)
                previous = now
            }
        }
    }

    @Test func witnessMovesPastTheRemoteAndThePreviousReading() {
        var rng = CausalRNG(seed: 0x4C_C002)
        for _ in 0..<300 {
            var clock = HybridLogicalClock(
                last: HLCTimestamp(wallNanos: epoch + UInt64(rng.below(100)), logical: UInt32(rng.below(4))))
            let before = clock.last
            let wall = epoch + UInt64(rng.below(100))
            let remote = HLCTimestamp(wallNanos: epoch + UInt64(rng.below(100)), logical: UInt32(rng.below(4)))
            let outcome = clock.witness(remote, wall: wall)
            #expect(!outcome.wasClamped)
            #expect(outcome.timestamp > remote && outcome.timestamp > before)
            #expect(outcome.timestamp.wallNanos == max(before.wallNanos, remote.wallNanos, wall))
            #expect(clock.last == outcome.timestamp)
            // Local events keep ordering after what was witnessed.
            #expect(clock.now(wall: wall) > outcome.timestamp)
        }
    }

    @Test func followsThePapersRules() {
        var clock = HybridLogicalClock()
        #expect(clock.now(wall: 10) == HLCTimestamp(wallNanos: 10, logical: 0))
        #expect(clock.now(wall: 10) == HLCTimestamp(wallNanos: 10, logical: 1))
        #expect(clock.now(wall: 5) == HLCTimestamp(wallNanos: 10, logical: 2))
        #expect(clock.now(wall: 11) == HLCTimestamp(wallNanos: 11, logical: 0))
        // Remote ahead: take its time, one past its logical.
        #expect(
            clock.witness(HLCTimestamp(wallNanos: 20, logical: 7), wall: 12).timestamp
                == HLCTimestamp(wallNanos: 20, logical: 8))
        // Same physical on both sides: one past the larger logical.
        #expect(
            clock.witness(HLCTimestamp(wallNanos: 20, logical: 3), wall: 12).timestamp
                == HLCTimestamp(wallNanos: 20, logical: 9))
        // Wall clock ahead of both: logical resets.
        #expect(
            clock.witness(HLCTimestamp(wallNanos: 21, logical: 3), wall: 30).timestamp
                == HLCTimestamp(wallNanos: 30, logical: 0))
    }

    @Test func aRemoteBeyondTheDriftBoundIsClampedAndReported() {
        var clock = HybridLogicalClock(maxDriftNanos: 60 * second)
        let wall = epoch
        let farAhead = HLCTimestamp(wallNanos: wall + 3600 * second, logical: 5)
        let outcome = clock.witness(farAhead, wall: wall)
        #expect(outcome.wasClamped)
        #expect(outcome.clampedNanos == 3540 * second)
        #expect(outcome.timestamp == HLCTimestamp(wallNanos: wall + 60 * second, logical: 1))
        #expect(clock.now(wall: wall) > outcome.timestamp)
        // Exactly at the bound is not clamped.
        var other = HybridLogicalClock()
        let atBound = other.witness(HLCTimestamp(wallNanos: wall + 60 * second, logical: 0), wall: wall)
        #expect(!atBound.wasClamped)
        #expect(atBound.timestamp == HLCTimestamp(wallNanos: wall + 60 * second, logical: 1))
        #expect(HybridLogicalClock().maxDriftNanos == 60 * second)
        // A huge bound near UInt64.max does not overflow.
        var lax = HybridLogicalClock(maxDriftNanos: .max)
        #expect(!lax.witness(HLCTimestamp(wallNanos: .max - 1), wall: wall).wasClamped)
    }

    @Test func anExhaustedLogicalCounterRollsIntoTheNextNanosecond() {
        var clock = HybridLogicalClock(last: HLCTimestamp(wallNanos: 100, logical: .max))
        #expect(clock.now(wall: 50) == HLCTimestamp(wallNanos: 101, logical: 0))
        var remoteCase = HybridLogicalClock()
        let outcome = remoteCase.witness(HLCTimestamp(wallNanos: 100, logical: .max), wall: 100)
        #expect(outcome.timestamp == HLCTimestamp(wallNanos: 101, logical: 0))
        var end = HybridLogicalClock(last: HLCTimestamp(wallNanos: .max, logical: .max))
        #expect(end.now(wall: 0) == HLCTimestamp(wallNanos: .max, logical: .max))
    }

    @Test func lwwStampsAreTotallyOrderedWithTheNodeBreakingTies() {
        let t = HLCTimestamp(wallNanos: 5, logical: 1)
        let low = LWWStamp(timestamp: t, node: causalNode(1))
        let high = LWWStamp(timestamp: t, node: causalNode(2))
        #expect(low < high && !(high < low) && low != high)
        #expect(LWWStamp(timestamp: HLCTimestamp(wallNanos: 5, logical: 2), node: causalNode(1)) > high)
        #expect(LWWStamp(timestamp: HLCTimestamp(wallNanos: 6, logical: 0), node: causalNode(0)) > high)
        var rng = CausalRNG(seed: 0x4C_C003)
        let stamps = (0..<200).map { _ in
            LWWStamp(
                timestamp: HLCTimestamp(wallNanos: UInt64(rng.below(4)), logical: UInt32(rng.below(3))),
                node: causalNode(UInt64(rng.below(3))))
        }
        for x in stamps.prefix(60) {
            for y in stamps.prefix(60) {
                #expect([x < y, y < x, x == y].filter { $0 }.count == 1)
            }
        }
    }
}
