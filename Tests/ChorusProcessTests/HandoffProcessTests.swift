import Foundation
import Testing

/// Sloppy quorums, hinted handoff and read repair as clients and operators see them:
/// real `chorus agent` processes on loopback, nodes stopped with SIGTERM (`stopped` in
/// SWIM) or killed with SIGKILL, observed through `/v1/kv` (`?replica=local` shows one
/// node's own copy), `chorus hints`, `chorus ring` and `/metrics`.
///
/// Serialized: each test runs four or five agents and the machine may have two cores.
/// The tests own `127.0.31.x` (hosts 1-5 and 11-14), `127.0.32.x` and `127.0.33.x`.
@Suite("Sloppy quorums, hinted handoff and read repair, real agents", .serialized)
struct HandoffProcessTests {
    static func value(of key: String) -> String { "value of \(key)" }

    // MARK: Sloppy quorum and handoff

    @Test func withTwoOfFiveNodesStoppedEveryWriteSucceedsAndTheirHintsAreHandedOffWhenTheyReturn() async throws {
        try await AgentCluster.run(subnet: 31, label: "handoff-two-stopped") { cluster in
            let agents = try cluster.startNodes(5)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let live = Array(agents.prefix(3))
            let stopped = Array(agents.suffix(2))
            let stoppedNames = Set(stopped.map(\.name))
            try await cluster.stopGracefully(stopped, seenBy: live)

            // 1,000 writes with w=2 through the three live nodes, all acknowledged.
            let keys = (0..<1000).map { "handoff-\($0)" }
            let liveAddresses = live.map(\.httpAddress)
            let puts = try await HandoffRequests.parallelMap(Array(keys.enumerated())) { pair in
                let (index, key) = pair
                let address = liveAddresses[index % liveAddresses.count]
                let response = try await HandoffRequests.put(key, Self.value(of: key), w: "2", via: address)
                return (
                    key: key, ok: (200..<300).contains(response.status),
                    report: "PUT \(key) w=2 via \(address): \(response)"
                )
            }
            let refused = puts.filter { !$0.ok }
            #expect(
                refused.isEmpty,
                "\(refused.count) of \(keys.count) w=2 writes with node4 and node5 stopped failed, first: \(refused.prefix(5).map(\.report))"
            )
            let written = puts.filter(\.ok).map(\.key)

            // Where each key lives (placement does not change while nodes are stopped).
            let placements = try await HandoffRequests.parallelMap(written) { key in
                try await HandoffRequests.placement(of: key, via: liveAddresses[0])
            }
            #expect(placements.allSatisfy { $0.replicas.count == 3 }, "n=3: every key has three home replicas")
            var missed: [String: Int] = [:]  // writes each stopped node missed
            for placement in placements {
                for name in placement.replicas where stoppedNames.contains(name) { missed[name, default: 0] += 1 }
            }
            try #require(
                stoppedNames.allSatisfy { missed[$0, default: 0] > 0 }, "writes missed per stopped node: \(missed)")

            // The live nodes hold a hint for every write a stopped home replica missed.
            var held: [String: Int] = [:]
            do {
                try await cluster.waitUntil("the live nodes hold hints for every write node4 and node5 missed") {
                    held = try await cluster.hintCounts(on: live).byTarget
                    return stoppedNames.allSatisfy { held[$0, default: 0] >= missed[$0, default: 0] }
                }
            } catch {
                Issue.record("\(error); hints held \(held), writes missed \(missed)")
            }
            let (byTarget, listings) = try await cluster.hintCounts(on: live)
            // Only node4 and node5 are down. (A live replica slower than replica_timeout may
            // get a hint too, legitimately; it is handed off at once and not checked here.)
            #expect(
                Set(byTarget.keys.filter { !live.map(\.name).contains($0) }) == stoppedNames,
                "hint targets on the live nodes: \(live.map { "\($0.name): \(HintView.summary(listings[$0.name] ?? []))" })"
            )
            for holder in live {
                for hint in listings[holder.name] ?? [] where stoppedNames.contains(hint.target) {
                    #expect(
                        hint.status == "stopped" && hint.count > 0 && hint.bytes > 0 && !hint.id.isEmpty
                            && !hint.oldest.isEmpty && hint.oldestAgeSeconds >= 0,
                        "\(holder.name) lists \(hint)")
                }
            }

            // /metrics shows the same pending counts by target.
            for holder in live {
                var shown = ""
                try await cluster.waitUntil("\(holder.name)'s chorus_hints_pending matches chorus hints") {
                    let metrics = try await cluster.metricsText(of: holder)
                    let listing = try await cluster.hints(of: holder)
                    shown = listing.map {
                        "\($0.target): listed \($0.count), metric \(Metrics.value(metrics, "chorus_hints_pending", labels: ["target": $0.target]))"
                    }
                    .joined(separator: ", ")
                    return listing.allSatisfy {
                        Metrics.value(metrics, "chorus_hints_pending", labels: ["target": $0.target])
                            == Double($0.count)
                    }
                }
                #expect(!shown.isEmpty, "\(holder.name) holds no hints at all")
            }
            let storedBefore = try await cluster.metricSum("chorus_hints_stored_total", over: live)
            let heldTotal = byTarget.values.reduce(0, +)
            #expect(
                storedBefore >= Double(heldTotal),
                "chorus_hints_stored_total \(storedBefore), hints listed \(heldTotal)")

            // Back with the same data dirs: every hint is handed off and deleted.
            for agent in stopped { try cluster.restart(agent) }
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(stopped)
            try await cluster.waitUntilNoHints(on: agents)
            let delivered = try await cluster.metricSum("chorus_hints_delivered_total", over: live)
            #expect(
                delivered >= Double(heldTotal),
                "chorus_hints_delivered_total \(delivered) on the holders, \(heldTotal) hints were held")

            // Every home replica of every key has its own copy now.
            let addressByName = Dictionary(uniqueKeysWithValues: agents.map { ($0.name, $0.httpAddress) })
            let copies = zip(written, placements).flatMap { key, placement in placement.replicas.map { (key, $0) } }
            let problems = try await HandoffRequests.parallelMap(copies) { pair -> String? in
                let (key, home) = pair
                guard let address = addressByName[home] else { return "\(key): home replica \(home) is no agent" }
                let local = try await HandoffRequests.localGet(key, via: address)
                return local.status == 200 && local.text == Self.value(of: key)
                    ? nil : "\(home)'s copy of \(key): \(local)"
            }.compactMap { $0 }
            #expect(
                problems.isEmpty,
                "\(problems.count) of \(copies.count) home copies wrong after handoff (node4 missed \(missed["node4", default: 0]), node5 \(missed["node5", default: 0])), first: \(problems.prefix(5))"
            )
        }
    }

    @Test func aStrictWriteWithTwoHomeReplicasDownFailsWith503SayingTheHintsDoNotCount() async throws {
        try await AgentCluster.run(subnet: 32, label: "handoff-strict") { cluster in
            let config = cluster.root.appendingPathComponent("chorus.toml")
            try """
            [buckets.strict]
            n = 3
            r = "quorum"
            w = "quorum"
            sloppy = false
            """.write(to: config, atomically: true, encoding: .utf8)
            let agents = try cluster.startNodes(5, firstHost: 1, extraArguments: ["--config", config.path])
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let live = Array(agents.prefix(3))
            let stoppedNames = Set(agents.suffix(2).map(\.name))
            try await cluster.stopGracefully(Array(agents.suffix(2)), seenBy: live)

            /// The first `prefix-i` key of `bucket` whose home replicas include exactly
            /// `down` of the stopped nodes, from `chorus ring --key`.
            func key(_ prefix: String, bucket: String, down: Int) async throws -> String {
                for index in 0..<200 {
                    let key = "\(prefix)-\(index)"
                    let ring = try await cluster.ring(of: live[0], key: key, bucket: bucket)
                    let placement = try #require(ring.key, "ring --key \(key) shows no key: \(ring)")
                    if placement.replicas.filter(stoppedNames.contains).count == down { return key }
                }
                throw HarnessError("no key \(prefix)-0..199 has \(down) of \(stoppedNames) among its home replicas")
            }
            func expectStrictFailure(
                _ what: String, _ response: KVHTTPResponse, sourceLocation: SourceLocation = #_sourceLocation
            ) {
                #expect(response.status == 503, "\(what): \(response)", sourceLocation: sourceLocation)
                guard let body = try? response.decode(QuorumFailureBody.self) else {
                    Issue.record("\(what): no JSON quorum error: \(response)", sourceLocation: sourceLocation)
                    return
                }
                #expect(
                    body.error.contains("strict quorum")
                        && body.error.contains("2 fallback nodes took hints that do not count"),
                    "\(what): error should say the hints do not count: \(body.error)", sourceLocation: sourceLocation)
                #expect(
                    body.acknowledged == 1 && body.required == 2 && body.replicas == 3 && body.hinted == 2,
                    "\(what): counts: \(response)", sourceLocation: sourceLocation)
                #expect(
                    body.failures.count == 2
                        && stoppedNames.allSatisfy { name in body.failures.contains { $0.contains(name) } },
                    "\(what): failures should name \(stoppedNames.sorted()): \(body.failures)",
                    sourceLocation: sourceLocation)
            }

            // sloppy=false on the request.
            let bothDown = try await key("strict", bucket: "default", down: 2)
            for (index, coordinator) in live.enumerated() {
                let strict = try await coordinator.kvPut(
                    bothDown, bytes: Array("strict \(index)".utf8), query: [("sloppy", "false")])
                expectStrictFailure("PUT \(bothDown)?sloppy=false via \(coordinator.name)", strict)
            }
            let explicit = try await live[1].kvPut(
                bothDown, bytes: Array("strict w=2".utf8), w: "2", query: [("sloppy", "false")])
            expectStrictFailure("PUT \(bothDown)?w=2&sloppy=false", explicit)
            // The same write with a sloppy quorum (the default) succeeds.
            let sloppy = try await live[2].kvPut(bothDown, "sloppy", w: "2")
            #expect(sloppy.status == 204, "PUT \(bothDown) w=2 with the default sloppy quorum: \(sloppy)")
            // A strict write with one home replica down still has its two home replicas.
            let oneDown = try await key("strict-one", bucket: "default", down: 1)
            let strictOne = try await live[0].kvPut(
                oneDown, bytes: Array("strict".utf8), w: "2", query: [("sloppy", "false")])
            #expect(strictOne.status == 204, "PUT \(oneDown)?sloppy=false with one home replica down: \(strictOne)")

            // sloppy = false as the bucket's default; the request may still ask for sloppy.
            let bucketKey = try await key("bucket", bucket: "strict", down: 2)
            let byBucket = try await live[0].kvPut(bucketKey, bytes: Array("strict bucket".utf8), bucket: "strict")
            expectStrictFailure("PUT strict/\(bucketKey) (bucket sloppy = false)", byBucket)
            let overridden = try await live[1].kvPut(
                bucketKey, bytes: Array("sloppy anyway".utf8), bucket: "strict", query: [("sloppy", "true")])
            #expect(overridden.status == 204, "PUT strict/\(bucketKey)?sloppy=true: \(overridden)")
        }
    }

    @Test func hintsSurviveKillNineOfTheirHolderAndAreDeliveredAfterItsRestart() async throws {
        // A slow handoff rate keeps the holder's hints listed for a while after its restart.
        try await AgentCluster.run(subnet: 33, label: "handoff-holder-kill9") { cluster in
            let agents = try cluster.startNodes(5, firstHost: 1, extraArguments: ["--handoff-rate", "3"])
            let views = try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let target = agents[4]
            let targetID = try #require(views["node1"]?.named(target.name)?.id)
            let others = Array(agents.prefix(4))
            try await cluster.stopGracefully([target], seenBy: others)

            let keys = (0..<200).map { "holder-kill9-\($0)" }
            let addresses = others.map(\.httpAddress)
            let puts = try await HandoffRequests.parallelMap(Array(keys.enumerated())) { pair in
                let (index, key) = pair
                let address = addresses[index % addresses.count]
                return try await HandoffRequests.put(key, Self.value(of: key), w: "2", via: address)
            }
            let refused = zip(keys, puts).filter { !(200..<300).contains($0.1.status) }
            try #require(refused.isEmpty, "w=2 writes with \(target.name) stopped failed: \(refused.prefix(5))")
            let placements = try await HandoffRequests.parallelMap(keys) { key in
                try await HandoffRequests.placement(of: key, via: addresses[0])
            }
            let homed = zip(keys, placements).filter { $0.1.replicas.contains(target.name) }.map(\.0)
            try #require(!homed.isEmpty, "no key has \(target.name) as a home replica")

            var held: [String: Int] = [:]  // by holder
            try await cluster.waitUntil("the other nodes hold \(homed.count) hints for \(target.name)") {
                held = [:]
                for holder in others {
                    held[holder.name] = try await cluster.hints(of: holder).filter { $0.id == targetID }.map(\.count)
                        .reduce(0, +)
                }
                return held.values.reduce(0, +) >= homed.count
            }
            // The holder with the most hints (not the seed node1, which the others join through).
            let holder = try #require(
                others.dropFirst().max { held[$0.name, default: 0] < held[$1.name, default: 0] }, "hints held: \(held)")
            let heldBefore = held[holder.name, default: 0]
            try #require(heldBefore >= 10, "too few hints on \(holder.name) to watch them after a restart: \(held)")

            // The holder crashes before it could hand anything off; the target comes back.
            try await cluster.kill9(holder)
            let survivors = others.filter { $0 !== holder }
            try cluster.restart(target)
            try await cluster.waitForViews("\(target.name) is alive again", of: survivors) { _, members in
                members.named(target.name)?.status == "alive"
            }
            try await cluster.waitUntilServing([target])

            // The holder restarts with the same data dir: its hints are still there...
            try cluster.restart(holder)
            try await cluster.waitUntilServing([holder])
            let afterRestart = try await cluster.hints(of: holder)
            let kept = afterRestart.filter { $0.id == targetID }.map(\.count).reduce(0, +)
            #expect(
                kept > 0 && kept <= heldBefore,
                "\(holder.name) held \(heldBefore) hints for \(target.name) before kill -9; after its restart it lists: \(HintView.summary(afterRestart))"
            )

            // ...and are then delivered.
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilNoHints(on: agents)
            let delivered = Metrics.value(try await cluster.metricsText(of: holder), "chorus_hints_delivered_total")
            #expect(
                delivered >= Double(kept),
                "\(holder.name) listed \(kept) hints after its restart but counts \(delivered) delivered since")

            let homedAddress = target.httpAddress
            let problems = try await HandoffRequests.parallelMap(homed) { key -> String? in
                let local = try await HandoffRequests.localGet(key, via: homedAddress)
                return local.status == 200 && local.text == Self.value(of: key) ? nil : "\(key): \(local)"
            }.compactMap { $0 }
            #expect(
                problems.isEmpty,
                "\(problems.count) of \(homed.count) keys missing on \(target.name) after handoff, first: \(problems.prefix(5))"
            )
        }
    }

    // MARK: Read repair

    @Test func withHandoffOffAnAllReplicaReadRepairsTheReplicaThatMissedTheWrites() async throws {
        try await AgentCluster.run(subnet: 31, label: "handoff-read-repair") { cluster in
            let config = cluster.root.appendingPathComponent("chorus.toml")
            // Only read repair may heal the stale replica here: no hints, no anti-entropy.
            try "hinted_handoff = false\n\n[store]\nanti_entropy_concurrency = 0\n".write(
                to: config, atomically: true, encoding: .utf8)
            let agents = try cluster.startNodes(4, firstHost: 11, extraArguments: ["--config", config.path])
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let stale = agents[3]
            let live = Array(agents.prefix(3))
            try await cluster.stopGracefully([stale], seenBy: live)

            // Keys the stopped node is a home replica of, written with w=2.
            var keys: [String] = []
            for index in 0..<100 where keys.count < 20 {
                let key = "repair-\(index)"
                let placement = try await HandoffRequests.placement(of: key, via: live[0].httpAddress)
                if placement.replicas.contains(stale.name) { keys.append(key) }
            }
            try #require(keys.count == 20, "keys homed on \(stale.name): \(keys)")
            for (index, key) in keys.enumerated() {
                let put = try await live[index % 3].kvPut(key, Self.value(of: key), w: "2")
                #expect(
                    put.status == 204, "PUT \(key) w=2 via \(live[index % 3].name) with \(stale.name) stopped: \(put)")
            }
            for agent in live {
                let hints = try await cluster.hints(of: agent)
                #expect(
                    hints.isEmpty, "with hinted_handoff = false \(agent.name) took hints: \(HintView.summary(hints))")
            }

            try cluster.restart(stale)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing([stale])
            for key in keys {
                let local = try await stale.kvGet(key, local: true)
                #expect(local.status == 404, "\(stale.name) missed \(key) and nothing handed it off, yet: \(local)")
            }

            let repairsBefore = try await cluster.metricSum("chorus_read_repairs_total", over: agents)
            for (index, key) in keys.enumerated() {
                let reader = live[(index + 1) % 3]
                let read = try await reader.kvGet(key, r: "3")
                #expect(
                    read.status == 200 && read.text == Self.value(of: key), "GET \(key) r=3 via \(reader.name): \(read)"
                )
                // Repair follows the reply.
                try await cluster.waitUntil(
                    "read repair gives \(stale.name) its copy of \(key)", deadline: .seconds(15)
                ) {
                    let local = try await stale.kvGet(key, local: true)
                    return local.status == 200 && local.text == Self.value(of: key)
                }
            }
            let repairsAfter = try await cluster.metricSum("chorus_read_repairs_total", over: agents)
            #expect(
                repairsAfter - repairsBefore >= Double(keys.count),
                "chorus_read_repairs_total summed over the nodes went from \(repairsBefore) to \(repairsAfter) for \(keys.count) repaired keys"
            )
        }
    }
}
