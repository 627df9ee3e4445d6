import Testing

@testable import ChorusCore

@Suite struct CausalityStoredObjectTests {
    let a = causalNode(1)
    let b = causalNode(2)

    @Test func deleteWithTheReadContextRemovesExactlyWhatWasSeenAndLeavesATombstone() {
        var object = StoredObject()
        object.put(Array("x".utf8), context: VersionVector(), replica: a, stamp: causalStamp(1))
        let context = object.join
        // A concurrent write the deleting client has not seen.
        var atB = StoredObject()
        atB.put(Array("y".utf8), context: VersionVector(), replica: b, stamp: causalStamp(2, node: 2))
        object.merge(atB)
        object.delete(context: context, replica: a, stamp: causalStamp(3))
        #expect(object.visibleValues.map(\.data) == [Array("y".utf8)])
        #expect(!object.isDeleted)
        #expect(object.siblingCount == 2)
        #expect(object.values.filter(\.isTombstone).count == 1)

        // Deleting with the full context leaves only the tombstone.
        object.delete(context: object.join, replica: b, stamp: causalStamp(4))
        #expect(object.isDeleted)
        #expect(object.visibleValues.isEmpty)
        #expect(object.siblingCount == 1)
        #expect(object.values.first?.isTombstone == true)
    }

    @Test func aReplicaThatMissedTheDeleteCannotResurrectTheData() {
        var object = StoredObject()
        object.put(Array("x".utf8), context: VersionVector(), replica: a, stamp: causalStamp(1))
        let stale = object
        object.delete(context: object.join, replica: a, stamp: causalStamp(2))
        #expect(object.merged(stale).isDeleted)
        #expect(stale.merged(object).isDeleted)
        #expect(object.merged(stale) == object)
        // A write after reading the tombstone's context replaces it.
        object.put(Array("back".utf8), context: object.join, replica: b, stamp: causalStamp(3))
        #expect(object.visibleValues.map(\.data) == [Array("back".utf8)])
        #expect(object.siblingCount == 1)
    }

    @Test func anAbsentKeyIsNotDeleted() {
        #expect(!StoredObject().isDeleted)
        #expect(StoredObject().visibleValues.isEmpty)
        #expect(StoredObject().siblingCount == 0)
    }

    @Test func lwwPicksTheNewestStampTombstoneOrNot() {
        var object = StoredObject()
        object.put(Array("old".utf8), context: VersionVector(), replica: a, stamp: causalStamp(5))
        object.put(Array("new".utf8), context: VersionVector(), replica: a, stamp: causalStamp(9))
        object.put(Array("mid".utf8), context: VersionVector(), replica: b, stamp: causalStamp(7, node: 2))
        let resolved = object.lwwResolved()
        #expect(resolved.values.map(\.data) == [Array("new".utf8)])
        #expect(resolved.join == object.join)

        object.delete(context: VersionVector(), replica: b, stamp: causalStamp(10, node: 2))
        #expect(object.lwwResolved().isDeleted)
        // Equal timestamps: the node id decides, the same way everywhere.
        var tie = StoredObject()
        tie.put(Array("from-a".utf8), context: VersionVector(), replica: a, stamp: causalStamp(1, node: 1))
        tie.put(Array("from-b".utf8), context: VersionVector(), replica: b, stamp: causalStamp(1, node: 2))
        #expect(tie.lwwResolved().values.map(\.data) == [Array("from-b".utf8)])
    }

    @Test func lwwWritesKeepTheNewestStampEvenAgainstTheirContext() {
        var object = StoredObject()
        object.lwwPut(Array("future".utf8), context: VersionVector(), replica: a, stamp: causalStamp(100))
        // A write that read "future" but carries an older stamp (an unsynchronised clock)
        // does not win in an lww bucket; one with a newer stamp does.
        object.lwwPut(Array("older".utf8), context: object.join, replica: b, stamp: causalStamp(50, node: 2))
        #expect(object.values.map(\.data) == [Array("future".utf8)])
        object.lwwDelete(context: object.join, replica: b, stamp: causalStamp(101, node: 2))
        #expect(object.isDeleted && object.siblingCount == 1)
        #expect(object.join == VersionVector([a: 1, b: 2]))
    }

    @Test func storedValueLwwOrderIsStrictAndTotal() {
        let stamp = causalStamp(1)
        let x = StoredValue(data: [1], stamp: stamp)
        let y = StoredValue(data: [2], stamp: stamp)
        let t = StoredValue.tombstone(stamp: stamp)
        #expect(StoredValue.lwwWins(y, over: x) && !StoredValue.lwwWins(x, over: y))
        #expect(StoredValue.lwwWins(t, over: y) && !StoredValue.lwwWins(y, over: t))
        #expect(!StoredValue.lwwWins(x, over: x))
        #expect(StoredValue.lwwWins(StoredValue(data: [0], stamp: causalStamp(2)), over: t))
    }
}
