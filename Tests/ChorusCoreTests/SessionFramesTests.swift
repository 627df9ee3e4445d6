import Testing

@testable import ChorusCore

@Suite struct SessionFramesTests {
    let node = NodeID(high: 7, low: 9)

    @Test func helloRoundTrips() throws {
        let hello = SessionHello(role: .initiator, node: node, publicKey: Array(repeating: 5, count: 32), sentAt: 42)
        #expect(try SessionHello(decoding: hello.encoded()) == hello)
    }

    @Test func framesRoundTripEveryMessageKind() throws {
        let keyring = KeyringSnapshot(version: 3, primary: "a", keys: ["a", "b"])
        let parameters = ClusterParameters(partitions: 1024, bucketsDigest: 77)
        let update = MemberUpdate(
            id: node, name: "n1", address: Endpoint(host: "127.0.0.1", port: 7400), incarnation: 2, status: .alive,
            tags: ["http": "127.0.0.1:7480"], source: node)
        let messages: [ClusterMessage] = [
            .pushPull(joining: true, state: [update], keyring: keyring, parameters: parameters),
            .pushPullReply(state: [update, update], keyring: keyring, parameters: parameters),
            .replicaWrite(ReplicaWrite(bucket: "b", key: String(repeating: "k", count: 1000), object: [1, 2, 3])),
            .replicaWrite(ReplicaWrite(bucket: "b", key: "k", object: [1], hintFor: node)),
            .replicaWriteReply(error: nil),
            .replicaWriteReply(error: "disk full"),
            .replicaRead(bucket: "b", key: "k"),
            .replicaReadReply(object: nil, error: nil),
            .replicaReadReply(object: [9, 9], error: nil),
            .forward(
                KVRequest(
                    operation: .put, bucket: "b", key: "k", value: [0, 1], context: "ctx", r: "", w: "all",
                    sloppy: "false",
                    timeoutMilliseconds: 5000, forwarded: true)),
            .forwardReply(KVResponse(status: 300, context: "c", contentType: "application/json", body: [7])),
            .refused(reason: "name taken"),
            .ping(target: node),
            .pong,
            .keyOperation(KeyOperation(kind: .use, key: "k", version: 9)),
            .keyOperationReply(KeyOperationReply(error: "nope", keyring: keyring)),
            .keyOperationReply(KeyOperationReply(error: nil, keyring: keyring)),
        ]
        for (index, message) in messages.enumerated() {
            let frame = SessionFrame(kind: .request, id: UInt64(index), message: message)
            #expect(try SessionFrame(decoding: frame.encoded()) == frame)
        }
    }

    @Test func truncatedOrGarbageInputIsRefusedWithoutTrapping() {
        let frame = SessionFrame(
            kind: .response, id: 1,
            message: .pushPullReply(
                state: [], keyring: KeyringSnapshot(version: 1, primary: "p", keys: ["p"]),
                parameters: ClusterParameters(partitions: 8, bucketsDigest: 1)))
        let bytes = frame.encoded()
        for length in 0..<bytes.count {
            #expect(throws: WireError.self) { try SessionFrame(decoding: Array(bytes.prefix(length))) }
        }
        let hello = SessionHello(role: .responder, node: node, publicKey: Array(repeating: 1, count: 32), sentAt: 1)
            .encoded()
        for length in 0..<hello.count {
            #expect(throws: WireError.self) { try SessionHello(decoding: Array(hello.prefix(length))) }
        }
        var random = SeededRandom(seed: 11)
        for _ in 0..<2000 {
            let garbage = (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? SessionFrame(decoding: garbage)
            _ = try? SessionHello(decoding: garbage)
        }
    }

    /// A message type added after this version (a newer peer in a rolling upgrade) decodes as
    /// `.unsupported` with the frame's kind and id, so the session can refuse that request
    /// and stay open; a known type still decodes, and damage inside a known message throws.
    @Test func unknownMessageTypeDecodesAsUnsupportedWithItsKindAndID() throws {
        let unknown = UInt8(ClusterCodec.FrameType.allCases.map(\.rawValue).max()! + 1)
        for kind in [SessionFrame.Kind.request, .response, .oneWay] {
            var bytes = SessionFrame(kind: kind, id: 77, message: .pong).encoded()
            bytes[9] = unknown
            bytes += [1, 2, 3]  // a body this version cannot parse
            #expect(try SessionFrame.decode(bytes) == .unsupported(kind: kind, id: 77, messageType: unknown))
            #expect(throws: WireError.unknownType(unknown)) { try SessionFrame(decoding: bytes) }
        }
        let known = SessionFrame(kind: .request, id: 5, message: .replicaRead(bucket: "b", key: "k"))
        #expect(try SessionFrame.decode(known.encoded()) == .frame(known))
        let damaged = Array(known.encoded().dropLast())
        #expect(throws: WireError.self) { try SessionFrame.decode(damaged) }
        // No message type at all is a truncation, not an unknown type.
        #expect(throws: WireError.self) { try SessionFrame.decode(Array(known.encoded().prefix(9))) }
    }
}
