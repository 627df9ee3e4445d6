import Foundation
import Testing

/// Anti-entropy summary datagrams sealed with a key the cluster does not hold (DESIGN
/// §6 and §7): dropped by the channel before anti-entropy sees them, counted by reason,
/// and they change no tree and no anti-entropy counter.
///
/// The datagrams are built here, byte for byte as an agent builds them (envelope with one
/// `antiEntropy` message carrying an exchange `summary`), and sealed with libsodium's
/// XChaCha20-Poly1305 (loaded with `dlopen`, as this target links nothing of Chorus). A
/// control copy sealed with the cluster key is answered, which shows the wrong-key copies
/// are real exchange messages, refused only for their key.
///
/// The tests own `127.0.35.x`.
@Suite("Anti-entropy wrong key, real agents", .serialized)
struct AntiEntropyWrongKeyProcessTests {
    /// Background exchanges off, so anti-entropy counters move only when this test sends
    /// something that gets through.
    static let flags = ["--partitions", "64", "--anti-entropy-interval", "200ms", "--anti-entropy-concurrency", "0"]

    struct EntropyStatus: Decodable {
        struct Figures: Decodable, Equatable {
            var exchanges: UInt64
            var answered: UInt64
            var malformed: UInt64
            var keysRepaired: UInt64
            var udpBytes: UInt64

            enum CodingKeys: String, CodingKey {
                case exchanges, answered, malformed
                case keysRepaired = "keys_repaired"
                case udpBytes = "udp_bytes"
            }
        }
        var datagrams: AgentStatus.Datagrams
        var antiEntropy: Figures

        enum CodingKeys: String, CodingKey {
            case datagrams
            case antiEntropy = "anti_entropy"
        }
    }

    @Test func exchangeDatagramsSealedWithAWrongKeyAreDroppedAndCounted() async throws {
        try await AgentCluster.run(subnet: 35, label: "anti-entropy-wrong-key") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 1, extraArguments: Self.flags)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let target = agents[0]
            for index in 0..<200 {
                let put = try await target.kvPut("wk-\(index)", "value \(index)", w: "3")
                try #require(put.status == 204, "PUT wk-\(index): \(put)")
            }
            let sodium = try Sodium()
            let clusterKey = try #require(Data(base64Encoded: cluster.key).map { [UInt8]($0) })
            let otherKey = try #require(Data(base64Encoded: try await cluster.keygen()).map { [UInt8]($0) })
            #expect(otherKey != clusterKey)

            let rootsBefore = try await AntiEntropyProcessTests.roots(of: target)
            // 200 keys over 64 partitions: most, not necessarily all, have a tree.
            #expect(rootsBefore.count > 32, "\(target.name) has trees for \(rootsBefore.count) partitions")
            let before = try await Self.status(of: target, in: cluster)

            let socket = try UDPSocket(bindingTo: cluster.host(9), port: AgentCluster.gossipPort)
            var forger = Forger(sodium: sodium)
            // Sealed with another cluster's key, under that key's own id: unknown_key.
            // Sealed with that key under the cluster key's id: auth_failed.
            let count = 100
            for index in 0..<count {
                let plaintext = forger.summaryEnvelope(partition: index % 64)
                let foreign = sodium.seal(plaintext, key: otherKey, keyID: sodium.keyID(of: otherKey))
                let forged = sodium.seal(plaintext, key: otherKey, keyID: sodium.keyID(of: clusterKey))
                _ = try socket.send(foreign, to: target.host, port: AgentCluster.gossipPort)
                _ = try socket.send(forged, to: target.host, port: AgentCluster.gossipPort)
                if index % 20 == 19 { try await Task.sleep(for: .milliseconds(5)) }
            }

            var after = before
            try await cluster.waitUntil("\(target.name) counts the wrong-key exchange datagrams as dropped") {
                after = try await Self.status(of: target, in: cluster)
                return Self.dropped(after, "unknown_key") >= Self.dropped(before, "unknown_key") + UInt64(count) / 2
                    && Self.dropped(after, "auth_failed") >= Self.dropped(before, "auth_failed") + UInt64(count) / 2
            }
            print(
                "anti-entropy wrong key: \(target.name) dropped \(after.datagrams.dropped), before \(before.datagrams.dropped)"
            )
            #expect(
                after.antiEntropy == before.antiEntropy,
                "wrong-key datagrams reached anti-entropy: \(after.antiEntropy) vs \(before.antiEntropy)")
            #expect(socket.receiveNow() == nil, "\(target.name) answered a wrong-key exchange datagram")
            let rootsAfter = try await AntiEntropyProcessTests.roots(of: target)
            #expect(rootsAfter == rootsBefore, "\(target.name)'s trees changed")
            #expect(target.isRunning)

            // Control: the same message sealed with the cluster key is answered.
            let genuine = sodium.seal(
                forger.summaryEnvelope(partition: 3), key: clusterKey, keyID: sodium.keyID(of: clusterKey))
            var answered = false
            for _ in 0..<3 where !answered {
                _ = try socket.send(genuine, to: target.host, port: AgentCluster.gossipPort)
                let end = ContinuousClock.now + .seconds(2)
                while ContinuousClock.now < end, !answered {
                    if let reply = socket.receiveNow(), reply.starts(with: [0x43, 0x48]) {
                        answered = true
                    } else {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
            #expect(answered, "\(target.name) did not answer the control exchange datagram sealed with the cluster key")
            let control = try await Self.status(of: target, in: cluster)
            #expect(
                control.antiEntropy.answered > before.antiEntropy.answered,
                "the control summary was not answered: \(control.antiEntropy)")
        }
    }

    static func status(of agent: Agent, in cluster: AgentCluster) async throws -> EntropyStatus {
        let result = try await cluster.command(["status", "--format", "json", "--http-addr", agent.httpAddress])
        try result.requireSuccess("chorus status on \(agent.name)")
        return try result.decode(EntropyStatus.self)
    }

    static func dropped(_ status: EntropyStatus, _ reason: String) -> UInt64 {
        status.datagrams.dropped[reason] ?? 0
    }

    /// Builds datagram plaintexts as an agent would: a fresh sender id and boot, a rising
    /// sequence, the wall-clock send time, one `antiEntropy` message carrying a `summary`
    /// (standard shape: 1,024 segments, 32 top-level hashes).
    struct Forger {
        let sodium: Sodium
        let sender: [UInt8]
        let bootID: UInt64
        var sequence: UInt64 = 0

        init(sodium: Sodium) {
            self.sodium = sodium
            sender = sodium.random(16)
            bootID = UInt64.random(in: 1...UInt64.max)
        }

        mutating func summaryEnvelope(partition: Int) -> [UInt8] {
            sequence += 1
            var summary: [UInt8] = [1]  // ExchangeCodec summary
            summary += Self.u64(UInt64.random(in: 1...UInt64.max))  // exchange id
            summary += Self.u32(UInt32(partition))
            summary += Self.u32(1024)  // segment count
            summary += Self.u64(UInt64.random(in: 0...UInt64.max))  // root
            summary.append(32)
            for _ in 0..<32 { summary += Self.u64(UInt64.random(in: 0...UInt64.max)) }
            let sentAt = UInt64(Date().timeIntervalSince1970 * 1e9)
            var envelope = sender + Self.u64(bootID) + Self.u64(sequence) + Self.u64(sentAt) + Self.u16(1)
            envelope += [6] + Self.u16(UInt16(summary.count)) + summary  // SWIM antiEntropy message
            return envelope
        }

        static func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
        static func u32(_ value: UInt32) -> [UInt8] {
            (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        }
        static func u64(_ value: UInt64) -> [UInt8] {
            (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
        }
    }

    /// The three libsodium calls the forger needs, from the system's libsodium.
    struct Sodium: @unchecked Sendable {
        typealias Encrypt =
            @convention(c) (
                UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt64>?, UnsafePointer<UInt8>?, UInt64,
                UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?
            ) -> Int32
        typealias GenericHash =
            @convention(c) (
                UnsafeMutablePointer<UInt8>?, Int, UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?, Int
            ) -> Int32
        typealias RandomBytes = @convention(c) (UnsafeMutableRawPointer?, Int) -> Void

        let encrypt: Encrypt
        let genericHash: GenericHash
        let randomBytes: RandomBytes

        init() throws {
            guard let handle = dlopen("libsodium.so.23", RTLD_NOW) ?? dlopen("libsodium.so", RTLD_NOW) else {
                throw HarnessError("cannot load libsodium: \(String(cString: dlerror()))")
            }
            func symbol<T>(_ name: String, as type: T.Type) throws -> T {
                guard let pointer = dlsym(handle, name) else { throw HarnessError("libsodium lacks \(name)") }
                return unsafeBitCast(pointer, to: type)
            }
            let initialise = try symbol("sodium_init", as: (@convention(c) () -> Int32).self)
            guard initialise() >= 0 else { throw HarnessError("sodium_init failed") }
            encrypt = try symbol("crypto_aead_xchacha20poly1305_ietf_encrypt", as: Encrypt.self)
            genericHash = try symbol("crypto_generichash", as: GenericHash.self)
            randomBytes = try symbol("randombytes_buf", as: RandomBytes.self)
        }

        func random(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            bytes.withUnsafeMutableBytes { randomBytes($0.baseAddress, count) }
            return bytes
        }

        /// A key's id on the wire: the first 4 bytes of its 32-byte BLAKE2b, big-endian.
        func keyID(of key: [UInt8]) -> UInt32 {
            var digest = [UInt8](repeating: 0, count: 32)
            _ = digest.withUnsafeMutableBufferPointer { out in
                key.withUnsafeBufferPointer {
                    genericHash(out.baseAddress, 32, $0.baseAddress, UInt64(key.count), nil, 0)
                }
            }
            return digest.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
        }

        /// `"CH" | 1 | key id | nonce(24) | ciphertext | tag(16)`, associated data the
        /// 7-byte prefix and the cluster name ("chorus", the default).
        func seal(_ plaintext: [UInt8], key: [UInt8], keyID: UInt32, clusterName: String = "chorus") -> [UInt8] {
            let prefix: [UInt8] = [0x43, 0x48, 1] + Forger.u32(keyID)
            let nonce = random(24)
            let ad = prefix + Array(clusterName.utf8)
            var cipher = [UInt8](repeating: 0, count: plaintext.count + 16)
            var length: UInt64 = 0
            let result = cipher.withUnsafeMutableBufferPointer { out in
                plaintext.withUnsafeBufferPointer { message in
                    ad.withUnsafeBufferPointer { adBuffer in
                        nonce.withUnsafeBufferPointer { nonceBuffer in
                            key.withUnsafeBufferPointer { keyBuffer in
                                encrypt(
                                    out.baseAddress, &length, message.baseAddress, UInt64(message.count),
                                    adBuffer.baseAddress, UInt64(adBuffer.count), nil, nonceBuffer.baseAddress,
                                    keyBuffer.baseAddress)
                            }
                        }
                    }
                }
            }
            precondition(result == 0 && length == UInt64(cipher.count))
            return prefix + nonce + cipher
        }
    }
}
