import Testing

@testable import ChorusCore

@Suite struct ObjectCodecTests {
    /// A random object reached by puts, deletes and merges at three replicas.
    static func randomObject(_ rng: inout CausalRNG) -> StoredObject {
        let nodes = (1...3).map { causalNode($0) }
        var replicas = [StoredObject](repeating: StoredObject(), count: 3)
        for step in 0..<rng.below(12) {
            let here = rng.below(3)
            let stamp = LWWStamp(
                timestamp: HLCTimestamp(wallNanos: rng.next(), logical: UInt32(truncatingIfNeeded: rng.next())),
                node: nodes[here])
            let context = rng.chance(50) ? replicas[rng.below(3)].join : VersionVector()
            switch rng.below(4) {
            case 0: replicas[here].delete(context: context, replica: nodes[here], stamp: stamp)
            case 1: replicas[here].merge(replicas[rng.below(3)])
            default:
                replicas[here].put(
                    rng.bytes(rng.below(step * 7 + 1)), context: context, replica: nodes[here], stamp: stamp)
            }
        }
        var object = replicas[rng.below(3)]
        if rng.chance(15) { object = object.sync(.new(causalValue("anonymous", wall: 7), context: object.join)) }
        return object
    }

    static func decodes(_ bytes: [UInt8]) -> StoredObject? {
        try? ObjectCodec.decode(bytes)
    }

    @Test func objectsRoundTrip() throws {
        var rng = CausalRNG(seed: 0x0B_0001)
        for _ in 0..<300 {
            let object = Self.randomObject(&rng)
            let bytes = ObjectCodec.encode(object)
            #expect(try ObjectCodec.decode(bytes) == object)
        }
        #expect(try ObjectCodec.decode(ObjectCodec.encode(StoredObject())) == StoredObject())
    }

    @Test func layoutIsVersionedAndBigEndian() {
        var object = StoredObject()
        object.put(
            [0xAB], context: VersionVector(), replica: NodeID(high: 0, low: 1),
            stamp: LWWStamp(timestamp: HLCTimestamp(wallNanos: 2, logical: 3), node: NodeID(high: 0, low: 4)))
        let expected: [UInt8] =
            [1, 0, 1]  // version, one entry
            + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 1] + [0, 1]
            + [0] + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 3] + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]
            + [0, 0, 0, 1, 0xAB]
            + [0, 0]  // no anonymous values
        #expect(ObjectCodec.encode(object) == expected)
    }

    @Test func truncationAtEveryPositionIsRejected() {
        var rng = CausalRNG(seed: 0x0B_0002)
        for _ in 0..<40 {
            let bytes = ObjectCodec.encode(Self.randomObject(&rng))
            for cut in 0..<bytes.count {
                #expect(throws: WireError.self) { try ObjectCodec.decode(Array(bytes.prefix(cut))) }
            }
            #expect(throws: WireError.self) { try ObjectCodec.decode(bytes + [0]) }
        }
    }

    @Test func seededGarbageNeverTrapsAndWhatDecodesIsCanonical() {
        var rng = CausalRNG(seed: 0x0B_0003)
        for round in 0..<2000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = rng.bytes(rng.below(120))
                if rng.chance(50), !bytes.isEmpty { bytes[0] = ObjectCodec.version }
            } else {
                bytes = ObjectCodec.encode(Self.randomObject(&rng))
                for _ in 0..<(1 + rng.below(3)) where !bytes.isEmpty {
                    bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            // Whatever decodes re-encodes to the same bytes: one encoding per object.
            if let object = Self.decodes(bytes) {
                #expect(ObjectCodec.encode(object) == bytes)
            }
        }
    }

    @Test func invalidObjectsAreRejected() {
        func object(_ body: (inout SWIMCodec.Writer) -> Void) -> [UInt8] {
            var writer = SWIMCodec.Writer()
            writer.u8(ObjectCodec.version)
            body(&writer)
            return writer.bytes
        }
        func value(_ writer: inout SWIMCodec.Writer, flags: UInt8 = 0, data: [UInt8] = []) {
            writer.u8(flags)
            writer.u64(1)
            writer.u32(0)
            writer.nodeID(causalNode(1))
            writer.blob(data)
        }
        let cases: [(String, [UInt8])] = [
            ("version", [2, 0, 0, 0, 0]),
            (
                "zero counter",
                object {
                    $0.u16(1)
                    $0.nodeID(causalNode(1))
                    $0.u64(0)
                    $0.u16(0)
                    $0.u16(0)
                }
            ),
            (
                "more values than events",
                object { w in
                    w.u16(1)
                    w.nodeID(causalNode(1))
                    w.u64(1)
                    w.u16(2)
                    value(&w)
                    value(&w, data: [1])
                    w.u16(0)
                }
            ),
            (
                "entries out of order",
                object { w in
                    w.u16(2)
                    w.nodeID(causalNode(2))
                    w.u64(1)
                    w.u16(0)
                    w.nodeID(causalNode(1))
                    w.u64(1)
                    w.u16(0)
                    w.u16(0)
                }
            ),
            (
                "duplicate replica",
                object { w in
                    w.u16(2)
                    w.nodeID(causalNode(1))
                    w.u64(1)
                    w.u16(0)
                    w.nodeID(causalNode(1))
                    w.u64(2)
                    w.u16(0)
                    w.u16(0)
                }
            ),
            (
                "unknown flags",
                object { w in
                    w.u16(0)
                    w.u16(1)
                    value(&w, flags: 2)
                }
            ),
            (
                "tombstone with data",
                object { w in
                    w.u16(0)
                    w.u16(1)
                    value(&w, flags: 1, data: [9])
                }
            ),
            (
                "duplicate anonymous values",
                object { w in
                    w.u16(0)
                    w.u16(2)
                    value(&w)
                    value(&w)
                }
            ),
            ("too many entries", object { $0.u16(UInt16(ObjectCodec.maxEntries + 1)) }),
            (
                "too many values",
                object {
                    $0.u16(0)
                    $0.u16(UInt16(ObjectCodec.maxValues + 1))
                }
            ),
            (
                "huge announced value",
                object { w in
                    w.u16(0)
                    w.u16(1)
                    w.u8(0)
                    w.u64(1)
                    w.u32(0)
                    w.nodeID(causalNode(1))
                    w.u32(.max)
                }
            ),
        ]
        for (name, bytes) in cases {
            #expect(throws: WireError.self, "\(name)") { try ObjectCodec.decode(bytes) }
        }
        let big = object { w in
            w.u16(0)
            w.u16(1)
            value(&w, data: [UInt8](repeating: 7, count: 100))
        }
        #expect(throws: WireError.tooLarge) { try ObjectCodec.decode(big, maxValueBytes: 99) }
        #expect((try? ObjectCodec.decode(big, maxValueBytes: 100))?.values.first?.data.count == 100)
    }
}
