import Foundation
import Testing

/// The replicated key-value store as clients see it: real `chorus agent` processes on
/// loopback, driven through `/v1/kv` (raw HTTP, to see status codes, headers and
/// bodies) and the `chorus` CLI.
///
/// Serialized: each test runs three or four agents and the machine may have two cores;
/// several key-value clusters at once would test the scheduler, not the store. Each
/// test owns a subnet or a host range in one (`127.0.24.x` ... `127.0.30.x`).
@Suite("Key-value store, real agents", .serialized)
struct KVProcessTests {
    // MARK: Reads and writes

    @Test func everyReadAndWriteQuorumCombinationReadsBackTheWrite() async throws {
        try await AgentCluster.run(subnet: 24, label: "kv-rw") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let n = 3

            for w in 1...n {
                for r in 1...n {
                    let key = "rw-r\(r)-w\(w)"
                    let writer = agents[(r + w) % n]
                    let overwriter = agents[(r + w + 1) % n]
                    let reader = agents[(r + w + 2) % n]

                    let first = try await writer.kvPut(key, "first r\(r) w\(w)", w: "\(w)")
                    #expect(first.status == 204, "PUT \(key) w=\(w) via \(writer.name): \(first)")
                    let context = try #require(first.context, "PUT \(key) returned no X-Chorus-Context: \(first)")

                    // Overwrite through another coordinator with the first write's context.
                    let latest = "latest r\(r) w\(w)"
                    let second = try await overwriter.kvPut(key, latest, w: "\(w)", context: context)
                    #expect(second.status == 204, "PUT \(key) w=\(w) via \(overwriter.name): \(second)")

                    if r + w > n {
                        // Read and write quorums overlap: the latest write is seen at once.
                        let read = try await reader.kvGet(key, r: "\(r)")
                        #expect(
                            read.status == 200 && read.text == latest,
                            "GET \(key) r=\(r) via \(reader.name) right after the w=\(w) write: \(read)")
                        #expect(read.context != nil, "GET \(key) returned no context: \(read)")
                    } else {
                        // No overlap: the write becomes visible eventually.
                        try await cluster.waitUntil("GET \(key) r=\(r) via \(reader.name) shows \(latest)") {
                            let read = try await reader.kvGet(key, r: "\(r)")
                            return read.status == 200 && read.text == latest
                        }
                    }
                }
            }

            // The named quorums too, through the CLI.
            for (w, r) in [("one", "all"), ("quorum", "quorum"), ("all", "one")] {
                let key = "cli-\(w)-\(r)"
                let put = try await cluster.command(
                    ["put", "--w", w, key, "value-\(w)", "--http-addr", agents[0].httpAddress])
                try put.requireSuccess("chorus put --w \(w)")
                let get = try await cluster.command(["get", "--r", r, key, "--http-addr", agents[1].httpAddress])
                try get.requireSuccess("chorus get --r \(r)")
                #expect(
                    get.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "value-\(w)",
                    "chorus get --r \(r) after put --w \(w): \(get)")
            }
        }
    }

    @Test func writeThroughANodeOutsideTheKeysReplicasIsForwarded() async throws {
        try await AgentCluster.run(subnet: 25, label: "kv-forward") { cluster in
            let agents = try cluster.startNodes(4)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)

            for index in 0..<6 {
                let key = "forwarded-\(index)"
                let ring = try await cluster.ring(of: agents[0], key: key)
                let placement = try #require(ring.key, "ring --key \(key) shows no key: \(ring)")
                #expect(placement.replicas.count == 3, "\(key) should have n=3 home replicas: \(placement)")
                let outsider = try #require(
                    agents.first { !placement.replicas.contains($0.name) },
                    "with 4 nodes and n=3 one node is not home to \(key): \(placement)")

                let value = "via \(outsider.name) #\(index)"
                let put = try await outsider.kvPut(key, value, w: "all")
                #expect(put.status == 204, "PUT \(key) w=all via non-replica \(outsider.name): \(put)")
                #expect(put.context != nil, "forwarded PUT returned no context: \(put)")

                let read = try await outsider.kvGet(key, r: "all")
                #expect(read.status == 200 && read.text == value, "GET \(key) r=all via \(outsider.name): \(read)")

                // The write went to the home replicas, not to the node that took it.
                let local = try await outsider.kvGet(key, local: true)
                #expect(local.status == 404, "\(outsider.name) is no replica of \(key) but stores it: \(local)")
                for home in agents where placement.replicas.contains(home.name) {
                    let copy = try await home.kvGet(key, local: true)
                    #expect(copy.status == 200 && copy.text == value, "\(home.name)'s copy of \(key): \(copy)")
                }

                // A delete through the outsider is forwarded as well.
                let delete = try await outsider.kvDelete(key, w: "all", context: read.context)
                #expect(delete.status == 204, "DELETE \(key) via \(outsider.name): \(delete)")
                let gone = try await agents[0].kvGet(key, r: "all")
                #expect(gone.status == 404, "GET \(key) after forwarded delete: \(gone)")
            }
        }
    }

    // MARK: Siblings and deletes

    @Test func concurrentBlindWritesBecomeSiblingsAndAWriteWithTheirContextResolvesThem() async throws {
        try await AgentCluster.run(subnet: 26, label: "kv-siblings") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 1)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let key = "contended"

            // Two blind writes (no context), sent at once to two coordinators.
            let target = Agent.kvTarget(bucket: "default", key: key, query: [])
            let (leftAddress, rightAddress) = (agents[0].httpAddress, agents[1].httpAddress)
            async let left = KVHTTP.request("PUT", leftAddress, target, body: Array("left".utf8))
            async let right = KVHTTP.request("PUT", rightAddress, target, body: Array("right".utf8))
            let (leftResponse, rightResponse) = try await (left, right)
            #expect(leftResponse.status == 204, "blind PUT left: \(leftResponse)")
            #expect(rightResponse.status == 204, "blind PUT right: \(rightResponse)")

            // Every node's r=all read shows both values as siblings.
            var mergedContext = ""
            for agent in agents {
                let read = try await agent.kvGet(key, r: "all")
                #expect(read.status == 300, "GET \(key) r=all via \(agent.name) after concurrent blind writes: \(read)")
                guard read.status == 300 else { continue }
                #expect(read.header("content-type")?.contains("json") == true, "300 should be JSON: \(read)")
                let body = try read.decode(KVHTTPResponse.SiblingsBody.self)
                #expect(body.values.sorted() == ["left", "right"], "siblings via \(agent.name): \(read)")
                #expect(body.siblings.allSatisfy { !$0.node.isEmpty && !$0.timestamp.isEmpty }, "\(read)")
                #expect(body.context == read.context, "the 300 body's context should match its header: \(read)")
                mergedContext = body.context
            }
            try #require(!mergedContext.isEmpty, "no sibling read succeeded")

            // The CLI prints both too.
            let cli = try await cluster.command(["get", key, "--r", "all", "--http-addr", agents[2].httpAddress])
            try cli.requireSuccess("chorus get of a key with siblings")
            #expect(cli.stdout.contains("left") && cli.stdout.contains("right"), "chorus get shows siblings: \(cli)")

            // A write with only one sibling's context supersedes that one alone. A write's
            // response context is the stored object's: it covers only "first" when nothing
            // else was there yet, so these are written one after the other. (One of two
            // blind writes made at once may well return a context that covers both: the
            // other's replica write reached its coordinator first. Seen in CI.)
            let partialKey = key + "-partial"
            let first = try await agents[0].kvPut(partialKey, "first", w: "all")
            #expect(first.status == 204, "PUT first: \(first)")
            let firstContext = try #require(first.context, "PUT returned no context: \(first)")
            let second = try await agents[1].kvPut(partialKey, "second", w: "all")
            #expect(second.status == 204, "blind PUT second: \(second)")
            let partial = try await agents[2].kvPut(partialKey, "after-first", w: "all", context: firstContext)
            #expect(partial.status == 204, "PUT with the first write's context: \(partial)")
            let afterPartial = try await agents[0].kvGet(partialKey, r: "all")
            #expect(afterPartial.status == 300, "a write that saw only 'first' must keep 'second': \(afterPartial)")
            if afterPartial.status == 300 {
                let body = try afterPartial.decode(KVHTTPResponse.SiblingsBody.self)
                #expect(
                    body.values.sorted() == ["after-first", "second"],
                    "siblings after the partial write: \(afterPartial)")
                let resolvePartial = try await agents[1].kvPut(
                    partialKey, "resolved", w: "all", context: body.context)
                #expect(resolvePartial.status == 204, "PUT with the merged context: \(resolvePartial)")
                let read = try await agents[2].kvGet(partialKey, r: "all")
                #expect(read.status == 200 && read.text == "resolved", "after resolving: \(read)")
            }

            // A write with the merged context supersedes every sibling.
            let resolve = try await agents[2].kvPut(key, "resolved", w: "all", context: mergedContext)
            #expect(resolve.status == 204, "PUT with the merged context: \(resolve)")
            for agent in agents {
                let read = try await agent.kvGet(key, r: "all")
                #expect(
                    read.status == 200 && read.text == "resolved",
                    "GET \(key) via \(agent.name) after resolving: \(read)")
            }
        }
    }

    /// A quorum read asks R replicas, the coordinator's own copy first: a paused replica
    /// among them (SIGSTOP: no error, no answer, not yet dead in anyone's view) is covered
    /// by asking the third one after `store.read_speculation_delay`. Without that, every
    /// read that asked the paused node first would wait out its timeout and fail.
    @Test func aQuorumReadAsksAnotherReplicaWhenOneItAskedIsPaused() async throws {
        try await AgentCluster.run(subnet: 37, label: "kv-speculative-read") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            let keys = (0..<30).map { "speculative-\($0)" }
            for key in keys {
                let put = try await agents[0].kvPut(key, "v-\(key)", w: "all")
                try #require(put.status == 204, "PUT \(key) w=all: \(put)")
            }
            let speculationsBefore = try await agents[0].metric("chorus_read_speculations_total")
            agents[2].signal(SIGSTOP)
            var failures: [String] = []
            for key in keys {
                let read = try await agents[0].kvGet(key, r: "2", query: [("timeout", "3000ms")])
                if read.status != 200 || read.text != "v-\(key)" { failures.append("\(key): \(read)") }
            }
            agents[2].signal(SIGCONT)
            #expect(failures.isEmpty, "r=2 reads with node3 paused:\n\(failures.joined(separator: "\n"))")
            // The reads that asked node3 first went on by speculation (about half of them).
            let speculations = try await agents[0].metric("chorus_read_speculations_total") - speculationsBefore
            #expect(speculations > 0, "no speculative read counted")
        }
    }

    @Test func siblingsAreCappedAndAWriteWithTheirContextCollapsesThem() async throws {
        try await AgentCluster.run(subnet: 26, label: "kv-sibling-cap") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 21)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let key = "hot"
            let limit = 100

            for index in 0..<limit {
                let put = try await agents[index % 3].kvPut(key, "blind-\(index)", w: "all")
                try #require(put.status == 204, "blind PUT #\(index) (of \(limit) allowed siblings): \(put)")
            }
            let crowded = try await agents[0].kvGet(key, r: "all")
            #expect(crowded.status == 300, "GET with \(limit) siblings: \(crowded.status)")
            let body = try crowded.decode(KVHTTPResponse.SiblingsBody.self)
            #expect(Set(body.values) == Set((0..<limit).map { "blind-\($0)" }), "\(body.values.count) siblings")

            // One more concurrent value is refused with a clear error, and stores nothing.
            let refused = try await agents[1].kvPut(key, "one too many", w: "all")
            #expect((400..<500).contains(refused.status), "blind PUT #\(limit + 1): \(refused)")
            if let error = try? refused.decode(KVHTTPResponse.ErrorBody.self) {
                #expect(error.error.contains("siblings"), "the refusal should name the sibling limit: \(error.error)")
            } else {
                Issue.record("the refusal has no JSON error: \(refused)")
            }
            let still = try await agents[2].kvGet(key, r: "all")
            if still.status == 300 {
                let values = try still.decode(KVHTTPResponse.SiblingsBody.self).values
                #expect(
                    values.count == limit && !values.contains("one too many"),
                    "\(values.count) siblings after the refusal")
            } else {
                Issue.record("GET after the refused write: \(still)")
            }

            // Writing back with the context resolves them all.
            let resolve = try await agents[1].kvPut(key, "calm", w: "all", context: body.context)
            #expect(resolve.status == 204, "PUT with the context of \(limit) siblings: \(resolve)")
            for agent in agents {
                let read = try await agent.kvGet(key, r: "all")
                #expect(
                    read.status == 200 && read.text == "calm", "GET \(key) via \(agent.name) after resolving: \(read)")
            }
            #expect(
                agents.contains { $0.log.contains("many siblings") },
                "crossing 25 siblings should log a warning")
        }
    }

    @Test func deleteWithContextIsNotFoundEverywhereAndAWriteWithTheTombstoneContextWins() async throws {
        try await AgentCluster.run(subnet: 26, label: "kv-delete") { cluster in
            let agents = try cluster.startNodes(3, firstHost: 11)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let key = "doomed"

            let put = try await agents[0].kvPut(key, "alive", w: "all")
            #expect(put.status == 204, "PUT \(key): \(put)")
            let read = try await agents[1].kvGet(key, r: "all")
            #expect(read.status == 200 && read.text == "alive", "GET \(key): \(read)")
            let context = try #require(read.context, "GET returned no context: \(read)")

            let delete = try await agents[1].kvDelete(key, w: "all", context: context)
            #expect(delete.status == 204, "DELETE \(key) with context: \(delete)")

            var tombstoneContext: String?
            for agent in agents {
                let gone = try await agent.kvGet(key, r: "all")
                #expect(gone.status == 404, "GET \(key) r=all via \(agent.name) after delete: \(gone)")
                tombstoneContext = tombstoneContext ?? gone.context
                let local = try await agent.kvGet(key, local: true)
                #expect(local.status == 404, "\(agent.name)'s own copy of \(key) after a w=all delete: \(local)")
            }
            let afterDelete = try #require(
                tombstoneContext, "a 404 of a deleted key should carry the tombstone's context")

            let rewrite = try await agents[2].kvPut(key, "reborn", w: "all", context: afterDelete)
            #expect(rewrite.status == 204, "PUT \(key) with the 404's context: \(rewrite)")
            for agent in agents {
                let again = try await agent.kvGet(key, r: "all")
                #expect(
                    again.status == 200 && again.text == "reborn",
                    "GET \(key) via \(agent.name) after rewrite: \(again)")
            }

            // The CLI's delete reads the context itself.
            let cliDelete = try await cluster.command([
                "delete", key, "--w", "all", "--http-addr", agents[0].httpAddress,
            ])
            try cliDelete.requireSuccess("chorus delete")
            let gone = try await agents[1].kvGet(key, r: "all")
            #expect(gone.status == 404, "GET \(key) after chorus delete: \(gone)")
        }
    }

    // MARK: Failures

    @Test func withOneAgentKilledQuorumsStillWorkAllFailsAndTheRestartedNodeServesReads() async throws {
        try await AgentCluster.run(subnet: 27, label: "kv-kill") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let victim = agents[2]
            let survivors = Array(agents.prefix(2))

            let before = try await agents[0].kvPut("before-kill", "written by all", w: "all")
            #expect(before.status == 204, "PUT before the kill: \(before)")

            try await cluster.kill9(victim)

            // w=2 and r=2 still succeed, through either survivor, at once.
            let count = 50
            for index in 0..<count {
                let key = "during-\(index)"
                let put = try await survivors[index % 2].kvPut(key, "value \(index)", w: "2")
                #expect(put.status == 204, "PUT \(key) w=2 via \(survivors[index % 2].name) with node3 dead: \(put)")
            }
            for index in 0..<count {
                let key = "during-\(index)"
                let read = try await survivors[(index + 1) % 2].kvGet(key, r: "2")
                #expect(
                    read.status == 200 && read.text == "value \(index)",
                    "GET \(key) r=2 via \(survivors[(index + 1) % 2].name) with node3 dead: \(read)")
            }

            // w=all cannot be met: 503 naming how many acknowledged. With 3 nodes and
            // n=3 every key has node3 among its home replicas.
            for index in 0..<5 {
                let key = "all-\(index)"
                let put = try await survivors[index % 2].kvPut(key, "needs everyone", w: "all")
                #expect(put.status == 503, "PUT \(key) w=all with node3 dead: \(put)")
                guard put.status == 503 else { continue }
                let body = try put.decode(KVHTTPResponse.ErrorBody.self)
                #expect(body.acknowledged == 2 && body.required == 3, "503 body of PUT \(key) w=all: \(put)")
                #expect(body.replicas == 3, "503 body of PUT \(key) w=all: \(put)")
                #expect(!body.error.isEmpty, "503 body of PUT \(key) w=all: \(put)")
            }
            // r=all fails the same way.
            let readAll = try await survivors[0].kvGet("during-0", r: "all")
            #expect(readAll.status == 503, "GET r=all with node3 dead: \(readAll)")
            if readAll.status == 503 {
                let body = try readAll.decode(KVHTTPResponse.ErrorBody.self)
                #expect(body.acknowledged == 2 && body.required == 3, "503 body of GET r=all: \(readAll)")
            }

            try cluster.restart(victim)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing([victim])

            // Its own copy of a key written before the kill survived.
            let local = try await victim.kvGet("before-kill", local: true)
            #expect(local.status == 200 && local.text == "written by all", "restarted node3's copy: \(local)")
            // Quorum reads through it work, for keys written while it was down too.
            try await cluster.waitUntil("a quorum read through the restarted node3 succeeds") {
                try await victim.kvGet("before-kill", r: "quorum").status == 200
            }
            let quorum = try await victim.kvGet("before-kill", r: "quorum")
            #expect(quorum.status == 200 && quorum.text == "written by all", "GET r=quorum via node3: \(quorum)")
            for index in stride(from: 0, to: count, by: 7) {
                let key = "during-\(index)"
                let read = try await victim.kvGet(key, r: "2")
                #expect(
                    read.status == 200 && read.text == "value \(index)", "GET \(key) r=2 via restarted node3: \(read)")
            }
            // And w=all works again.
            let all = try await victim.kvPut("after-restart", "everyone again", w: "all")
            #expect(all.status == 204, "PUT w=all after node3 restarted: \(all)")
        }
    }

    /// `batch` fsyncs before acknowledging; `periodic` hands commits to the OS at once,
    /// which is enough to survive `kill -9` of the agent (not a power loss).
    @Test(arguments: ["batch", "periodic"])
    func acknowledgedWritesSurviveKillNineOfEveryAgent(sync: String) async throws {
        try await AgentCluster.run(subnet: 28, label: "kv-durable-\(sync)") { cluster in
            let agents = try cluster.startNodes(
                3, firstHost: sync == "batch" ? 1 : 11, extraArguments: ["--sync", sync, "--sync-interval", "30s"])
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)

            let count = 200
            func value(_ index: Int) -> String { "durable value \(index) " + String(repeating: "x", count: index % 50) }
            for index in 0..<count {
                let put = try await agents[index % 3].kvPut("durable-\(index)", value(index), w: "3")
                try #require(put.status == 204, "PUT durable-\(index) w=3: \(put)")
            }

            for agent in agents { try await cluster.kill9(agent) }
            for agent in agents { try cluster.restart(agent) }
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)

            var missing: [String] = []
            for index in 0..<count {
                let key = "durable-\(index)"
                for agent in agents {
                    let local = try await agent.kvGet(key, local: true)
                    if local.status != 200 || local.text != value(index) {
                        missing.append("\(agent.name) local \(key): \(local)")
                    }
                }
                let read = try await agents[(index + 1) % 3].kvGet(key, r: "all")
                if read.status != 200 || read.text != value(index) {
                    missing.append("r=all \(key) via \(agents[(index + 1) % 3].name): \(read)")
                }
            }
            #expect(
                missing.isEmpty,
                "sync=\(sync): \(missing.count) lost reads after kill -9 of all agents, first: \(missing.prefix(5))")
        }
    }

    // MARK: Bad input

    @Test func badParametersPathsAndContextsAreRefusedNamingTheProblem() async throws {
        try await AgentCluster.run(subnet: 29, label: "kv-bad-input") { cluster in
            let agents = try cluster.startNodes(3)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)
            let node = agents[0]
            let put = try await node.kvPut("good", "value", w: "all")
            #expect(put.status == 204, "PUT good: \(put)")
            let context = try #require(put.context)

            func expectRefused(
                _ what: String, _ response: KVHTTPResponse, status: Int = 400, mentions words: [String],
                sourceLocation: SourceLocation = #_sourceLocation
            ) {
                #expect(response.status == status, "\(what): \(response)", sourceLocation: sourceLocation)
                guard let body = try? response.decode(KVHTTPResponse.ErrorBody.self) else {
                    Issue.record("\(what): no JSON {\"error\"} body: \(response)", sourceLocation: sourceLocation)
                    return
                }
                let message = body.error.lowercased()
                for word in words {
                    #expect(
                        message.contains(word.lowercased()), "\(what): error should mention '\(word)': \(body.error)",
                        sourceLocation: sourceLocation)
                }
            }
            func raw(_ method: String, _ target: String, headers: [String: String] = [:], body: [UInt8] = [])
                async throws -> KVHTTPResponse
            {
                try await KVHTTP.request(method, node.httpAddress, target, headers: headers, body: body)
            }

            expectRefused(
                "PUT w=0", try await raw("PUT", "/v1/kv/default/good?w=0", body: Array("x".utf8)), mentions: ["w", "0"])
            expectRefused("DELETE w=0", try await raw("DELETE", "/v1/kv/default/good?w=0"), mentions: ["w", "0"])
            expectRefused("GET r=7", try await raw("GET", "/v1/kv/default/good?r=7"), mentions: ["r", "7"])
            expectRefused(
                "PUT w=7", try await raw("PUT", "/v1/kv/default/good?w=7", body: Array("x".utf8)), mentions: ["w", "7"])
            expectRefused(
                "PUT w=banana", try await raw("PUT", "/v1/kv/default/good?w=banana", body: Array("x".utf8)),
                mentions: ["w", "banana"])
            expectRefused(
                "GET r=banana", try await raw("GET", "/v1/kv/default/good?r=banana"), mentions: ["r", "banana"])
            expectRefused(
                "GET timeout=soon", try await raw("GET", "/v1/kv/default/good?timeout=soon"), mentions: ["timeout"])
            expectRefused(
                "GET timeout=0s", try await raw("GET", "/v1/kv/default/good?timeout=0s"), mentions: ["timeout"])
            expectRefused(
                "GET timeout=10m", try await raw("GET", "/v1/kv/default/good?timeout=10m"), mentions: ["timeout"])
            expectRefused("bucket with a space", try await raw("GET", "/v1/kv/my%20bucket/good"), mentions: ["bucket"])
            expectRefused(
                "bucket with an encoded slash", try await raw("GET", "/v1/kv/a%2Fb/good"), mentions: ["bucket"])
            expectRefused(
                "PUT into a bucket with an encoded slash",
                try await raw("PUT", "/v1/kv/a%2Fb/good", body: Array("x".utf8)), mentions: ["bucket"])
            expectRefused("empty key", try await raw("GET", "/v1/kv/default/"), mentions: ["key"])
            expectRefused(
                "PUT empty key", try await raw("PUT", "/v1/kv/default/", body: Array("x".utf8)), mentions: ["key"])
            expectRefused(
                "unknown parameter", try await raw("GET", "/v1/kv/default/good?colour=red"), mentions: ["colour"])
            expectRefused(
                "unknown parameter on PUT", try await raw("PUT", "/v1/kv/default/good?ww=2", body: Array("x".utf8)),
                mentions: ["ww"])
            expectRefused(
                "replica=local on PUT", try await raw("PUT", "/v1/kv/default/good?replica=local", body: [1]),
                mentions: ["replica"])

            // Keys: any bytes up to 1024 of them round-trip, percent-encoded; longer is refused.
            for odd in ["a/b", "with space", "per%cent", "ünï©ødé", "q?x=1&y", String(repeating: "k", count: 1024)] {
                let put = try await node.kvPut(odd, "odd:\(odd.prefix(20))", w: "all")
                #expect(put.status == 204, "PUT key '\(odd.prefix(40))': \(put)")
                let read = try await agents[1].kvGet(odd, r: "all")
                #expect(
                    read.status == 200 && read.text == "odd:\(odd.prefix(20))", "GET key '\(odd.prefix(40))': \(read)")
            }
            expectRefused(
                "PUT of a 1025-byte key", try await node.kvPut(String(repeating: "k", count: 1025), "x"),
                mentions: ["key"])

            // A context with one character changed.
            var characters = Array(context)
            let middle = characters.count / 2
            characters[middle] = characters[middle] == "A" ? "B" : "A"
            let corrupted = String(characters)
            #expect(corrupted != context)
            expectRefused(
                "PUT with a corrupted context", try await node.kvPut("good", "x", w: "all", context: corrupted),
                mentions: ["context"])
            expectRefused(
                "DELETE with a corrupted context", try await node.kvDelete("good", w: "all", context: corrupted),
                mentions: ["context"])
            expectRefused(
                "PUT with a truncated context",
                try await node.kvPut("good", "x", w: "all", context: String(context.dropLast(6))), mentions: ["context"]
            )
            expectRefused(
                "PUT with a non-base64 context", try await node.kvPut("good", "x", context: "not base64 !!"),
                mentions: ["context"])

            // A context minted by another cluster (same key, other cluster name).
            let stranger = try cluster.start(
                name: "stranger", hostIndex: 9, join: [], extraArguments: ["--cluster-name", "elsewhere"])
            try await cluster.waitUntilServing([stranger])
            let foreignWrite = try await stranger.kvPut("good", "foreign", w: "1")
            #expect(foreignWrite.status == 204, "PUT on the lone other-cluster agent: \(foreignWrite)")
            let foreign = try #require(foreignWrite.context, "other cluster's PUT returned no context")
            expectRefused(
                "PUT with another cluster's context", try await node.kvPut("good", "x", w: "all", context: foreign),
                mentions: ["context", "cluster"])

            // Nothing above changed the stored value.
            let unchanged = try await agents[1].kvGet("good", r: "all")
            #expect(
                unchanged.status == 200 && unchanged.text == "value",
                "GET good after the refused requests: \(unchanged)")

            // Values: exactly max_value_bytes is fine, one byte more is 413.
            let limit = 1 << 20
            let atLimit = try await node.kvPut("big", bytes: [UInt8](repeating: 0x61, count: limit), w: "all")
            #expect(atLimit.status == 204, "PUT of exactly 1 MiB: \(atLimit)")
            let over = try await node.kvPut("big-over", bytes: [UInt8](repeating: 0x62, count: limit + 1), w: "all")
            expectRefused("PUT of 1 MiB + 1 byte", over, status: 413, mentions: ["max_value_bytes"])
            let big = try await agents[2].kvGet("big", r: "all")
            #expect(
                big.status == 200 && big.body.count == limit,
                "GET of the 1 MiB value: \(big.status), \(big.body.count) bytes")
            let absent = try await agents[2].kvGet("big-over", r: "all")
            #expect(absent.status == 404, "the refused oversized value must not be stored: \(absent)")

            // The agents survived all of it.
            for agent in agents { #expect(agent.isRunning, "\(agent.name) exited") }
        }
    }

    // MARK: Buckets and placement

    @Test func lastWriterWinsBucketNeverShowsSiblings() async throws {
        try await AgentCluster.run(subnet: 30, label: "kv-lww") { cluster in
            let config = cluster.root.appendingPathComponent("chorus.toml")
            try """
            [buckets.lww]
            n = 3
            r = "quorum"
            w = "quorum"
            conflicts = "lww"
            """.write(to: config, atomically: true, encoding: .utf8)
            let agents = try cluster.startNodes(3, firstHost: 1, extraArguments: ["--config", config.path])
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)

            for index in 0..<5 {
                let key = "lww-\(index)"
                let target = Agent.kvTarget(bucket: "lww", key: key, query: [])
                let values = ["first-\(index)", "second-\(index)"]
                let (addressA, addressB) = (agents[index % 3].httpAddress, agents[(index + 1) % 3].httpAddress)
                let (valueA, valueB) = (Array(values[0].utf8), Array(values[1].utf8))
                async let a = KVHTTP.request("PUT", addressA, target, body: valueA)
                async let b = KVHTTP.request("PUT", addressB, target, body: valueB)
                let (responseA, responseB) = try await (a, b)
                #expect(
                    responseA.status == 204 && responseB.status == 204,
                    "blind PUTs to lww/\(key): \(responseA) \(responseB)")

                var seen: Set<String> = []
                for agent in agents {
                    let read = try await agent.kvGet(key, bucket: "lww", r: "all")
                    #expect(read.status == 200, "GET lww/\(key) r=all via \(agent.name) must be one value: \(read)")
                    #expect(values.contains(read.text), "GET lww/\(key) via \(agent.name): \(read)")
                    seen.insert(read.text)
                }
                #expect(seen.count == 1, "nodes disagree on the winner of lww/\(key): \(seen)")
            }

            // The same race in the default (siblings) bucket of the same cluster keeps both.
            let target = Agent.kvTarget(bucket: "default", key: "not-lww", query: [])
            let (addressA, addressB) = (agents[0].httpAddress, agents[1].httpAddress)
            async let a = KVHTTP.request("PUT", addressA, target, body: Array("one".utf8))
            async let b = KVHTTP.request("PUT", addressB, target, body: Array("two".utf8))
            _ = try await (a, b)
            let siblings = try await agents[2].kvGet("not-lww", r: "all")
            #expect(siblings.status == 300, "the default bucket keeps concurrent writes as siblings: \(siblings)")
        }
    }

    @Test func everyNodeComputesTheSamePlacementAndSharesSumToPartitionsTimesN() async throws {
        try await AgentCluster.run(subnet: 25, label: "kv-ring") { cluster in
            let agents = try cluster.startNodes(4, firstHost: 11)
            try await cluster.waitAllAlive(agents)
            try await cluster.waitUntilServing(agents)

            var overall: [String: RingView] = [:]
            for agent in agents {
                let ring = try await cluster.ring(of: agent)
                overall[agent.name] = ring
                #expect(ring.n == 3 && ring.bucket == "default", "ring of \(agent.name): \(ring)")
                #expect(Set(ring.nodes.map(\.name)) == Set(agents.map(\.name)), "ring nodes of \(agent.name): \(ring)")
                #expect(
                    ring.nodes.map(\.replica).reduce(0, +) == ring.partitions * ring.n,
                    "replica shares on \(agent.name) should sum to partitions x n: \(ring.nodes)")
                #expect(
                    ring.nodes.map(\.primary).reduce(0, +) == ring.partitions,
                    "primary shares on \(agent.name) should sum to partitions: \(ring.nodes)")
                #expect(ring.nodes.allSatisfy { $0.replica > 0 && $0.replica <= ring.partitions }, "\(ring.nodes)")
            }
            let reference = try #require(overall["node1"])
            #expect(reference.partitions == 1024, "default Q")
            for agent in agents {
                let ring = try #require(overall[agent.name])
                #expect(
                    ring.nodes.sorted { $0.name < $1.name } == reference.nodes.sorted { $0.name < $1.name },
                    "\(agent.name) and node1 disagree on shares")
            }

            for index in 0..<12 {
                let key = "placed-\(index)"
                var placements: [String: RingView.Key] = [:]
                for agent in agents {
                    let ring = try await cluster.ring(of: agent, key: key)
                    let placement = try #require(ring.key, "ring --key \(key) via \(agent.name): \(ring)")
                    placements[agent.name] = placement
                }
                let first = try #require(placements["node1"])
                #expect(first.replicas.count == 3 && Set(first.replicas).count == 3, "\(key): \(first)")
                #expect((0..<reference.partitions).contains(first.partition), "\(key): \(first)")
                for agent in agents {
                    let placement = try #require(placements[agent.name])
                    #expect(
                        placement.partition == first.partition && placement.replicas == first.replicas,
                        "\(agent.name) places \(key) at \(placement.partition) \(placement.replicas), node1 at \(first.partition) \(first.replicas)"
                    )
                }
            }

            // Q is fixed at cluster creation: a node with another partition count is
            // refused at join, says why, and never enters the ring.
            let odd = try cluster.start(
                name: "node5", hostIndex: 15, join: [cluster.gossipAddress(11)],
                extraArguments: ["--partitions", "512"])
            let exit = try await cluster.waitForExit(odd, deadline: AgentCluster.defaultDeadline)
            #expect(!exit.isCleanExit, "an agent refused at join should exit with an error, got \(exit)")
            #expect(
                odd.log.contains("512") && odd.log.contains("1024"),
                "the refused agent should name both partition counts; log tail:\n\(odd.logTail(lines: 15))")
            let after = try await cluster.ring(of: agents[0])
            #expect(
                Set(after.nodes.map(\.name)) == Set(agents.map(\.name)), "ring after the refused join: \(after.nodes)")
        }
    }
}
