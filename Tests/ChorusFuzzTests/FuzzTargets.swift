import ChorusCore
import ChorusCrypto

/// The decoders that read bytes from the network or the disk, as fuzz targets (issue 8).
///
/// This file uses only public API and no XCTest, so the same targets run in two
/// drivers: `FuzzCorpusTests` (seeded mutations over the committed corpus, every CI
/// run) and the libFuzzer executable in `Fuzz/` (coverage-guided, run by hand with
/// `tools/fuzz`), which links this file through a symlink.
///
/// A target's `run` must never trap, whatever the bytes: a decoder either returns a
/// value or throws. When it returns one, `run` checks that encoding the value and
/// decoding it again gives the same value (a decoder that accepts something its own
/// encoder cannot reproduce is reading a different format), and returns a description
/// of any broken invariant (nil when all hold).
struct FuzzTarget: Sendable {
    /// Also the corpus folder's name: `Tests/Fuzz/corpus/<name>/`.
    let name: String
    let run: @Sendable ([UInt8]) -> String?
    /// Valid encodings made by the encoders: the starting corpus.
    let seeds: @Sendable () -> [[UInt8]]
}

enum FuzzTargets {
    static let all: [FuzzTarget] = [
        sealedDatagram, swimEnvelope, swimUpdates, exchange, clusterMessage, sessionFrame, sessionHello, object,
        causalContext, replayWindow,
    ]

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    // MARK: - Shared fixtures

    static let clusterName = "fuzz"
    static let keyring: Keyring = {
        // A fixed key: the fuzzer's seeds are sealed with it, and so are the corpus files.
        guard let key = try? ClusterKey(bytes: (0..<32).map { UInt8($0) &* 7 &+ 1 }),
            let keyring = try? Keyring(primary: key)
        else { fatalError("fixed fuzz key rejected") }
        return keyring
    }()

    static let alice = NodeID(high: 0x0123_4567_89AB_CDEF, low: 0x0FED_CBA9_8765_4321)
    static let bob = NodeID(high: 2, low: 3)

    static let update = MemberUpdate(
        id: alice, name: "agent-1", address: Endpoint(host: "127.0.60.1", port: 7946), incarnation: 4,
        status: .alive, tags: ["dc": "a", "role": "kv"], source: bob)

    static let envelopes: [SWIMEnvelope] = [
        SWIMEnvelope(sender: alice, bootID: 9, sequence: 1, sentAt: 1_700_000_000_000_000_000, messages: []),
        SWIMEnvelope(
            sender: alice, bootID: 9, sequence: 2, sentAt: 1_700_000_000_000_000_001,
            messages: [
                .ping(sequence: 7, target: bob), .ack(sequence: 6), .nack(sequence: 5), .update(update),
                .pingRequest(
                    sequence: 8, target: bob, targetAddress: Endpoint(host: "::1", port: 1), wantsNack: true),
            ]),
        SWIMEnvelope(
            sender: bob, bootID: 1, sequence: 3, sentAt: 0,
            messages: [.antiEntropy(ExchangeCodec.encode(exchanges[0])), .update(update)]),
    ]

    static let exchanges: [ExchangeMessage] = [
        ExchangeMessage(exchangeID: 1, partition: 3, body: .summary(segmentCount: 1024, root: 42, topLevel: [1, 2])),
        ExchangeMessage(
            exchangeID: 2, partition: 0,
            body: .summaryReply(differing: [0, 5], branches: [BranchHashes(index: 0, children: [9, 8, 7])])),
        ExchangeMessage(exchangeID: 3, partition: 1, body: .branchRequest(request: 4, level: 2, indices: [3, 1])),
        ExchangeMessage(
            exchangeID: 4, partition: 1,
            body: .branchReply(request: 4, level: 2, branches: [BranchHashes(index: 1, children: [5])])),
        ExchangeMessage(exchangeID: 5, partition: 2, body: .segments(differing: [1, 900])),
        ExchangeMessage(exchangeID: 6, partition: 2, body: .segments(differing: Array(0..<40))),
        ExchangeMessage(exchangeID: 7, partition: 9, body: .refused(.busy)),
    ]

    static let objects: [StoredObject] = {
        let stamp = LWWStamp(timestamp: HLCTimestamp(wallNanos: 1_000, logical: 2), node: alice)
        var one = StoredObject()
        one.put(Array("hello".utf8), context: VersionVector(), replica: alice, stamp: stamp)
        var siblings = one
        siblings.put(Array("world".utf8), context: VersionVector(), replica: bob, stamp: stamp)
        var deleted = one
        deleted.delete(context: one.join, replica: bob, stamp: stamp)
        return [one, siblings, deleted, StoredObject()]
    }()

    static let clusterMessages: [ClusterMessage] = {
        let keyringSnapshot = KeyringSnapshot(version: 3, primary: "AAAA", keys: ["AAAA", "BBBB"])
        let parameters = ClusterParameters(partitions: 64, bucketsDigest: 77)
        let request = KVRequest(
            operation: .put, bucket: "default", key: "k/1", value: Array("v".utf8),
            context: CausalContext.encode(objects[1].join, clusterName: clusterName), r: "2", w: "quorum",
            sloppy: "true", timeoutMilliseconds: 1500)
        return [
            .pushPull(joining: true, state: [update], keyring: keyringSnapshot, parameters: parameters),
            .pushPullReply(state: [update, update], keyring: keyringSnapshot, parameters: parameters),
            .refused(reason: "no"), .ping(target: bob), .pong,
            .keyOperation(KeyOperation(kind: .install, key: "AAAA", version: 4)),
            .keyOperationReply(KeyOperationReply(error: "bad key", keyring: keyringSnapshot)),
            .replicaWrite(ReplicaWrite(bucket: "b", key: "k", object: ObjectCodec.encode(objects[1]), hintFor: bob)),
            .replicaWriteReply(error: nil), .replicaWriteReply(error: "disk full"),
            .replicaRead(bucket: "b", key: "k"),
            .replicaReadReply(object: ObjectCodec.encode(objects[0]), error: nil),
            .forward(request), .forwardReply(KVResponse(status: 200, context: "x", body: Array("{}".utf8))),
            .repairKeys(partition: 3, segmentCount: 1024, segments: [1, 2, 3]),
            .repairKeysReply(entries: [RepairEntry(bucket: "b", key: "k", digest: 5)], error: nil),
            .reapTombstone(bucket: "b", key: "k", digest: 6), .reapTombstoneReply(reaped: true, error: nil),
        ]
    }()

    // MARK: - Targets

    /// The membership shell's datagram path: open the seal, then decode the envelope.
    /// Random bytes almost never authenticate, so this mostly exercises the header
    /// checks; `swimEnvelope` fuzzes the plaintext.
    static let sealedDatagram = FuzzTarget(
        name: "sealed-datagram",
        run: { bytes in
            let plaintext: [UInt8]
            do {
                plaintext = try Sealer.open(bytes, associatedData: Array(clusterName.utf8), keyring: keyring)
            } catch {
                return nil
            }
            return swimEnvelope.run(plaintext)
        },
        seeds: {
            envelopes.map {
                Sealer.seal(SWIMCodec.encode($0), associatedData: Array(clusterName.utf8), keyring: keyring)
            }
        })

    static let swimEnvelope = FuzzTarget(
        name: "swim-envelope",
        run: { bytes in
            guard let envelope = try? SWIMCodec.decode(bytes) else { return nil }
            for case .antiEntropy(let payload) in envelope.messages {
                if let problem = exchange.run(payload) { return problem }
            }
            return roundTrip(envelope, SWIMCodec.encode, SWIMCodec.decode)
        },
        seeds: { envelopes.map(SWIMCodec.encode) })

    static let swimUpdates = FuzzTarget(
        name: "swim-updates",
        run: { bytes in
            guard let updates = try? SWIMCodec.decodeUpdates(bytes) else { return nil }
            return roundTrip(updates, SWIMCodec.encodeUpdates, SWIMCodec.decodeUpdates)
        },
        seeds: { [SWIMCodec.encodeUpdates([]), SWIMCodec.encodeUpdates([update, update])] })

    static let exchange = FuzzTarget(
        name: "exchange",
        run: { bytes in
            guard let message = try? ExchangeCodec.decode(bytes) else { return nil }
            return roundTrip(message, ExchangeCodec.encode, ExchangeCodec.decode)
        },
        seeds: { exchanges.map(ExchangeCodec.encode) })

    /// A message inside an established TCP session; objects it carries are decoded too,
    /// as the receiving replica would.
    static let clusterMessage = FuzzTarget(
        name: "cluster-message",
        run: { bytes in
            guard let message = try? ClusterCodec.decodeMessage(bytes) else { return nil }
            if let problem = checkCarried(message) { return problem }
            return roundTrip(message, ClusterCodec.encode, ClusterCodec.decodeMessage)
        },
        seeds: { clusterMessages.map(ClusterCodec.encode) })

    static let sessionFrame = FuzzTarget(
        name: "session-frame",
        run: { bytes in
            guard let frame = try? SessionFrame(decoding: bytes) else { return nil }
            if let problem = checkCarried(frame.message) { return problem }
            return roundTrip(frame, { $0.encoded() }, { bytes throws(WireError) in try SessionFrame(decoding: bytes) })
        },
        seeds: {
            clusterMessages.enumerated().map { index, message in
                SessionFrame(kind: [.request, .response, .oneWay][index % 3], id: UInt64(index), message: message)
                    .encoded()
            }
        })

    static let sessionHello = FuzzTarget(
        name: "session-hello",
        run: { bytes in
            guard let hello = try? SessionHello(decoding: bytes) else { return nil }
            return roundTrip(hello, { $0.encoded() }, { bytes throws(WireError) in try SessionHello(decoding: bytes) })
        },
        seeds: {
            [
                SessionHello(role: .initiator, node: alice, publicKey: Array(repeating: 9, count: 32), sentAt: 1)
                    .encoded()
            ]
        })

    /// Stored objects: read back from disk, and carried by replica writes, read replies
    /// and hints.
    static let object = FuzzTarget(
        name: "object",
        run: { bytes in
            guard let object = try? ObjectCodec.decode(bytes) else { return nil }
            _ = object.visibleValues
            _ = object.isDeleted
            _ = object.merged(object)
            return roundTrip(object, ObjectCodec.encode, { bytes throws(WireError) in try ObjectCodec.decode(bytes) })
        },
        seeds: { objects.map(ObjectCodec.encode) })

    /// The `X-Chorus-Context` header. The bytes are tried two ways: as the header text
    /// itself, and as the decoded context with its checksum recomputed and base64
    /// applied, so mutations get past the CRC and reach the entry parser.
    static let causalContext = FuzzTarget(
        name: "causal-context",
        run: { bytes in
            let texts = [String(decoding: bytes, as: UTF8.self), base64(withChecksum(bytes))]
            for text in texts {
                guard let context = try? CausalContext.decode(text, clusterName: clusterName) else { continue }
                let again = try? CausalContext.decode(
                    CausalContext.encode(context, clusterName: clusterName), clusterName: clusterName)
                if again != context { return "context \(context) does not survive encode/decode" }
            }
            return nil
        },
        seeds: {
            // Stored as the raw context bytes without their checksum: the run appends it.
            objects.map { object in
                let text = CausalContext.encode(object.join, clusterName: clusterName)
                let bytes = base64Decode(text)
                return Array(bytes.dropLast(4))
            }
        })

    /// The replay window every opened datagram passes (sender, boot, sequence and send
    /// time come from the envelope, so from whoever holds a key). Each 12-byte record is
    /// one datagram: sender (1 of 4), boot (1 of 2), sequence (u64, so the edges are
    /// reachable), and the send time's distance from now (signed, in 2^24 ns steps). A
    /// datagram the window accepted must be refused when it comes again at once.
    static let replayWindow = FuzzTarget(
        name: "replay-window",
        run: { bytes in
            var window = ReplayWindow(maxClockDistance: .seconds(600), maxSenders: 3)
            let now: UInt64 = 1_700_000_000_000_000_000
            var offset = 0
            while offset + 12 <= bytes.count {
                let record = bytes[offset..<offset + 12]
                offset += 12
                let sender = NodeID(high: 0, low: UInt64(record.first! & 3))
                let boot = UInt64(record[record.startIndex + 1] & 1)
                let sequence = record.dropFirst(2).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let skew = Int64(Int16(bitPattern: UInt16(record.suffix(2).reduce(0) { $0 << 8 | UInt16($1) })))
                let sentAt = UInt64(Int64(bitPattern: now) &+ skew &* (1 << 24))
                let first = window.admit(sender: sender, bootID: boot, sequence: sequence, sentAt: sentAt, wallNow: now)
                if first == .accept {
                    let again = window.admit(
                        sender: sender, bootID: boot, sequence: sequence, sentAt: sentAt, wallNow: now)
                    if again == .accept { return "datagram \(sender)/\(boot)/\(sequence) accepted twice" }
                }
            }
            return nil
        },
        seeds: {
            [
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0],
                [1, 1, 255, 255, 255, 255, 255, 255, 255, 255, 0, 5, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 250],
            ]
        })

    // MARK: - Helpers

    /// Nil when `value` survives encode then decode unchanged.
    static func roundTrip<T: Equatable>(
        _ value: T, _ encode: (T) -> [UInt8], _ decode: ([UInt8]) throws(WireError) -> T
    ) -> String? {
        let encoded = encode(value)
        do {
            let again = try decode(encoded)
            return again == value ? nil : "\(T.self) changed on encode/decode: \(value) became \(again)"
        } catch {
            return "\(T.self) decoded, but its re-encoding does not (\(error)): \(value)"
        }
    }

    /// Objects inside replica writes and read replies are decoded by the receiver.
    static func checkCarried(_ message: ClusterMessage) -> String? {
        switch message {
        case .replicaWrite(let write): object.run(write.object)
        case .replicaReadReply(let bytes?, _): object.run(bytes)
        case .forward(let request):
            causalContext.run(Array(request.context.utf8))
        default: nil
        }
    }

    /// `bytes` followed by their CRC-32 (IEEE, as the context format uses).
    static func withChecksum(_ bytes: [UInt8]) -> [UInt8] {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        return bytes + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: crc >> UInt32($0)) }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let group = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(16 - 8 * $1.offset) }
            for position in 0..<4 {
                out.append(position <= chunk.count ? alphabet[Int(group >> UInt32(18 - 6 * position) & 63)] : 61)
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func base64Decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        for symbol in text.utf8 {
            guard let value = alphabet.firstIndex(of: symbol) else { continue }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }
}
