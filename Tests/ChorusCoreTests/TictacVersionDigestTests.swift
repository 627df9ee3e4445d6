import Testing

@testable import ChorusCore

@Suite struct TictacVersionDigestTests {
    /// Three replicas' copies of one key after concurrent writes.
    func replicas() -> [StoredObject] {
        var a = StoredObject()
        a.put(Array("a".utf8), context: VersionVector(), replica: aeNode(1), stamp: aeStamp(10, node: 1))
        var b = StoredObject()
        b.put(Array("b".utf8), context: VersionVector(), replica: aeNode(2), stamp: aeStamp(11, node: 2))
        var c = a
        c.delete(context: a.join, replica: aeNode(3), stamp: aeStamp(12, node: 3))
        return [a, b, c]
    }

    @Test func causallyEqualObjectsHaveEqualDigestsWhateverTheMergeOrder() {
        let copies = replicas()
        let orders = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]]
        let merged = orders.map { order in order.reduce(StoredObject()) { $0.merged(copies[$1]) } }
        for object in merged {
            #expect(object == merged[0])
            #expect(TictacTree.versionDigest(of: object) == TictacTree.versionDigest(of: merged[0]))
        }
    }

    @Test func anonymousValuesInAnyOrderGiveTheSameDigest() {
        let x = StoredValue(data: [1], stamp: aeStamp(1))
        let y = StoredValue(data: [2], stamp: aeStamp(2))
        let left = StoredObject(entries: [], anonymous: [x, y])!
        let right = StoredObject(entries: [], anonymous: [y, x])!
        #expect(left == right)
        #expect(VersionDigest.of(left) == VersionDigest.of(right))
    }

    @Test func differentVersionsHaveDifferentDigests() {
        let copies = replicas()
        let digests = copies.map(VersionDigest.of)
        #expect(Set(digests).count == 3)
        var rewritten = copies[0]
        rewritten.put(Array("a2".utf8), context: rewritten.join, replica: aeNode(1), stamp: aeStamp(20))
        #expect(VersionDigest.of(rewritten) != digests[0])
        // Same dot, other bytes (never minted, but must not collide).
        let forged = StoredObject(
            entries: [StoredObject.entry(aeNode(1), counter: 1, values: [StoredValue(data: [9], stamp: aeStamp(10))])])!
        #expect(VersionDigest.of(forged) != digests[0])
        #expect(VersionDigest.of(StoredObject()) != digests[0])
    }

    @Test func digestSurvivesTheObjectCodec() throws {
        for object in replicas() {
            let decoded = try ObjectCodec.decode(ObjectCodec.encode(object))
            #expect(VersionDigest.of(decoded) == VersionDigest.of(object))
        }
    }
}
