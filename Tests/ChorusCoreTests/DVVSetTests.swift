import Testing

@testable import ChorusCore

@Suite struct DVVSetTests {
    typealias Clock = DVVSet<String>
    let a = causalNode(1)
    let b = causalNode(2)
    let c = causalNode(3)

    @Test func blindWriteToAnEmptyKeyMintsTheCoordinatorsFirstDot() {
        let stored = Clock().updated(.new("v1"), replica: a)
        #expect(stored.values == ["v1"])
        #expect(stored.join == VersionVector([a: 1]))
        #expect(stored.anonymous.isEmpty)
        #expect(stored.entries == [Clock.entry(a, counter: 1, values: ["v1"])])
    }

    @Test func writeWithTheReadContextReplacesWhatWasRead() {
        var stored = Clock().updated(.new("v1"), replica: a)
        let context = stored.join
        stored.update(.new("v2", context: context), replica: a)
        #expect(stored.values == ["v2"])
        #expect(stored.join == VersionVector([a: 2]))
    }

    @Test func twoBlindConcurrentWritesBecomeSiblingsAndAWriteWithTheJoinedContextResolvesThem() {
        var stored = Clock().updated(.new("left"), replica: a)
        stored.update(.new("right"), replica: a)
        #expect(Set(stored.values) == ["left", "right"])
        #expect(stored.size == 2)

        // The same at two coordinators, then merged.
        let atA = Clock().updated(.new("left"), replica: a)
        let atB = Clock().updated(.new("right"), replica: b)
        var merged = atA.sync(atB)
        #expect(Set(merged.values) == ["left", "right"])
        #expect(merged.join == VersionVector([a: 1, b: 1]))

        merged.update(.new("resolved", context: merged.join), replica: b)
        #expect(merged.values == ["resolved"])
        // Replicas still holding only one sibling accept the resolution.
        #expect(atA.sync(merged).values == ["resolved"])
        #expect(merged.sync(atB).values == ["resolved"])
    }

    @Test func updateWithAnOldContextKeepsNewerConcurrentValues() {
        var stored = Clock().updated(.new("v1"), replica: a)
        let oldContext = stored.join
        stored.update(.new("v2", context: oldContext), replica: a)
        stored.update(.new("v3", context: stored.join), replica: a)
        // A client that read v1 writes now: v1 is gone already, v3 is concurrent with it.
        stored.update(.new("late", context: oldContext), replica: a)
        #expect(Set(stored.values) == ["v3", "late"])
        #expect(stored.join == VersionVector([a: 4]))
    }

    @Test func siblingsTheReaderDidNotSeeSurviveItsWrite() {
        var atA = Clock().updated(.new("x"), replica: a)
        let atB = Clock().updated(.new("y"), replica: b)
        let context = atA.join  // the reader saw only x
        atA.formSync(atB)
        atA.update(.new("x2", context: context), replica: a)
        #expect(Set(atA.values) == ["x2", "y"])
    }

    @Test func aContextAheadOfTheCoordinatorDiscardsTheReadDotsWhenTheyArrive() {
        // The client read y from replica b; coordinator a has not received it yet.
        let atB = Clock().updated(.new("y"), replica: b)
        var atA = Clock().updated(.new("x"), replica: a)
        atA.update(.new("z", context: atB.join), replica: a)
        #expect(Set(atA.values) == ["x", "z"])
        #expect(atA.join == VersionVector([a: 2, b: 1]))
        // When y arrives it is recognised as seen and superseded.
        #expect(Set(atA.sync(atB).values) == ["x", "z"])
        #expect(Set(atB.sync(atA).values) == ["x", "z"])
    }

    @Test func lessDescendsAndEqualCompareHistories() {
        let one = Clock().updated(.new("v1"), replica: a)
        let two = one.updated(.new("v2", context: one.join), replica: a)
        let other = Clock().updated(.new("w"), replica: b)
        #expect(one.less(two))
        #expect(!two.less(one))
        #expect(!one.less(one))
        #expect(two.descends(one) && two.descends(two) && !one.descends(two))
        #expect(one.concurrent(with: other))
        #expect(!one.concurrent(with: two))
        #expect(one.equal(one) && !one.equal(two))
        // equal compares histories and value counts, not the values themselves.
        let sameShape = Clock().updated(.new("another"), replica: a)
        #expect(one.equal(sameShape))
        #expect(Clock().less(one))
        #expect(one.sync(other).descends(one) && one.sync(other).descends(other))
    }

    @Test func idsCountersAndSizeDescribeTheClock() {
        var stored = Clock().updated(.new("x"), replica: c)
        stored.update(.new("y"), replica: a)
        stored.update(.new("z"), replica: a)
        #expect(stored.ids == [a, c])
        #expect(stored.counter(for: a) == 2)
        #expect(stored.counter(for: c) == 1)
        #expect(stored.counter(for: b) == 0)
        #expect(stored.size == 3)
        #expect(stored.values == ["z", "y", "x"])
    }

    @Test func lwwKeepsTheNewestValueWithTheWholeHistory() {
        // Values are "<rank>"; a larger rank is newer.
        var stored = Clock().updated(.new("3"), replica: a)
        stored.update(.new("1"), replica: a)
        stored.update(.new("2"), replica: b)
        let resolved = stored.lww { Int($0)! > Int($1)! }
        #expect(resolved.values == ["3"])
        #expect(resolved.join == stored.join)
        #expect(resolved.descends(stored) && stored.descends(resolved))
        // A replica holding the old siblings accepts the resolution in either order of
        // an lww merge; it is the same clock either way.
        let newer = { (x: String, y: String) in Int(x)! > Int(y)! }
        #expect(resolved.lwwMerged(stored, newer).values == ["3"])
        #expect(stored.lwwMerged(resolved, newer) == resolved.lwwMerged(stored, newer))
        // A winner at the head of its entry keeps its own dot: plain sync agrees too.
        let headWinner = stored.lww { Int($0)! < Int($1)! }
        #expect(headWinner.values == ["1"])
        #expect(stored.sync(headWinner).values == ["1"] && headWinner.sync(stored).values == ["1"])

        // An anonymous winner stays anonymous over the joined history.
        let client = Clock.new("9", context: stored.join).sync(stored)
        let anonymousWinner = client.lww { Int($0)! > Int($1)! }
        #expect(anonymousWinner.values == ["9"])
        #expect(anonymousWinner.anonymous == ["9"])
        #expect(Clock().lww { $0 > $1 } == Clock())
    }

    @Test func reconcileMakesAClientWriteThatSupersedesEverySibling() {
        var stored = Clock().updated(.new("b"), replica: a)
        stored.update(.new("a"), replica: b)
        let client = stored.reconcile { $0.sorted().joined(separator: "+") }
        #expect(client.values == ["a+b"])
        #expect(client.join == stored.join)
        stored.update(client, replica: b)
        #expect(stored.values == ["a+b"])
    }

    @Test func aClientClockWithSeveralOrNoValuesNeverTraps() {
        let base = Clock().updated(.new("x"), replica: a)
        let several = Clock.new("p", context: base.join).sync(Clock.new("q", context: base.join))
        let stored = base.updated(several, replica: a)
        #expect(Set(stored.values) == ["p", "q"])
        #expect(stored.counter(for: a) == 3)
        let contextOnly = Clock(entries: [Clock.entry(b, counter: 4, values: [])])!
        #expect(base.updated(contextOnly, replica: a) == base.sync(contextOnly))
    }

    @Test func checkedInitRejectsBrokenInvariants() {
        #expect(Clock(entries: [Clock.entry(a, counter: 0, values: [])]) == nil)
        #expect(Clock(entries: [Clock.entry(a, counter: 1, values: ["x", "y"])]) == nil)
        #expect(
            Clock(entries: [Clock.entry(b, counter: 1, values: []), Clock.entry(a, counter: 1, values: [])]) == nil)
        #expect(
            Clock(entries: [Clock.entry(a, counter: 1, values: []), Clock.entry(a, counter: 2, values: [])]) == nil)
        #expect(Clock(entries: [Clock.entry(a, counter: 2, values: ["x"])], anonymous: ["y", "y"])?.anonymous == ["y"])
    }

    @Test func aSaturatedCounterDoesNotTrap() {
        var stored = Clock(entries: [Clock.entry(a, counter: .max, values: ["x"])])!
        stored.update(.new("y"), replica: a)
        #expect(stored.counter(for: a) == .max)
        #expect(stored.values.count <= 2)
        #expect(stored.values.first == "y")
    }

    @Test func anonymousValuesAreDroppedOnlyWhenTheContextCoversThem() {
        let stored = Clock().updated(.new("x"), replica: a)
        let reconciled = stored.reconcile { _ in "merged" }  // anonymous over {a:1}
        // Stored without update (not what the shell does, but allowed): a write that saw
        // it supersedes it, a blind write does not.
        #expect(reconciled.updated(.new("seen", context: reconciled.join), replica: a).values == ["seen"])
        #expect(Set(reconciled.updated(.new("blind"), replica: b).values) == ["merged", "blind"])
    }
}
