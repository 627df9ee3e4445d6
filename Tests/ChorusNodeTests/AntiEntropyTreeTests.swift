import ChorusCore
import ChorusStorage
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import ChorusNode

/// The trees anti-entropy keeps through `ReplicaStore`'s change hook are the trees a
/// rebuild from storage finds: every write path (coordinator writes, replica merges,
/// overwrites of a key) reports the right old and new digests.
@Suite struct AntiEntropyTreeTests {
    static func stamp(_ n: Int, _ node: NodeID) -> LWWStamp {
        LWWStamp(timestamp: HLCTimestamp(wallNanos: UInt64(n) + 1), node: node)
    }

    static let partitions = 16

    @Test func hookMaintainedTreesEqualARebuildFromStorage() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-ae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LocalStore(
            path: folder.appendingPathComponent("store.db").path, sync: .periodic(.seconds(5)))
        defer { store.close() }
        let replicas = ReplicaStore(
            store: store, buckets: BucketTable(), partitioner: Partitioner(partitionCount: Self.partitions))
        let trees = NIOLockedValueBox<[Int: TictacTree]>([:])
        replicas.onChange { change in
            trees.withLockedValue {
                change.apply(to: &$0[change.partition, default: TictacTree()])
            }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let loop = group.next()
        let a = NodeID(high: 0, low: 1)
        let b = NodeID(high: 0, low: 2)
        let count = 2000
        for chunk in stride(from: 0, to: count, by: 200) {
            var writes: [EventLoopFuture<StoredObject>] = []
            for n in chunk..<min(chunk + 200, count) {
                let key = "key-\(n)"
                // Coordinator writes, some twice (an overwrite moves the key's digest).
                writes.append(
                    replicas.coordinate(
                        bucket: "default", key: key, value: Array("v\(n)".utf8), context: VersionVector(), replica: a,
                        mintStamp: { _ in Self.stamp(n, a) }, on: loop))
            }
            _ = try await EventLoopFuture.whenAllSucceed(writes, on: loop).get()
            writes = []
            for n in chunk..<min(chunk + 200, count) where n % 3 == 0 {
                writes.append(
                    replicas.coordinate(
                        bucket: "default", key: "key-\(n)", value: Array("w\(n)".utf8), context: VersionVector(),
                        replica: a, mintStamp: { _ in Self.stamp(n + count, a) }, on: loop))
            }
            // Replica merges of concurrent versions from another node (siblings).
            for n in chunk..<min(chunk + 200, count) where n % 5 == 0 {
                var incoming = StoredObject()
                incoming.put(Array("x\(n)".utf8), context: VersionVector(), replica: b, stamp: Self.stamp(n, b))
                writes.append(replicas.merge(bucket: "default", key: "key-\(n)", incoming: incoming, on: loop))
            }
            _ = try await EventLoopFuture.whenAllSucceed(writes, on: loop).get()
        }

        let started = ContinuousClock.now
        let rebuilt = try AntiEntropy.buildTrees(from: store, partitions: Self.partitions, shape: .standard)
        let took = ContinuousClock.now - started
        print("anti-entropy: rebuilt \(rebuilt.trees.count) trees over \(rebuilt.keys) keys in \(took)")
        #expect(rebuilt.keys == count)
        let maintained = trees.withLockedValue { $0 }
        #expect(maintained.count == rebuilt.trees.count)
        for (partition, tree) in rebuilt.trees {
            #expect(maintained[partition] == tree, "partition \(partition): hook-maintained tree differs from rebuild")
        }
    }

    /// `ReplicaStore.reap`: the conditional delete of tombstone reaping. Only this
    /// replica's own copy, only a tombstone, only at the digest the primary checked;
    /// the key leaves the tree.
    @Test func reapDeletesOnlyTheCheckedTombstone() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-reap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LocalStore(path: folder.appendingPathComponent("store.db").path, sync: .batch)
        defer { store.close() }
        let replicas = ReplicaStore(
            store: store, buckets: BucketTable(), partitioner: Partitioner(partitionCount: Self.partitions))
        let trees = NIOLockedValueBox<[Int: TictacTree]>([:])
        replicas.onChange { change in
            trees.withLockedValue { change.apply(to: &$0[change.partition, default: TictacTree()]) }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        let loop = group.next()
        let a = NodeID(high: 0, low: 1)
        let written = try await replicas.coordinate(
            bucket: "default", key: "k", value: [1], context: VersionVector(), replica: a,
            mintStamp: { _ in Self.stamp(1, a) }, on: loop
        ).get()
        // A live value is never reaped, whatever digest is asked for.
        #expect(
            try await !replicas.reap(bucket: "default", key: "k", digest: VersionDigest.of(written), on: loop).get())
        let tombstone = try await replicas.coordinate(
            bucket: "default", key: "k", value: nil, context: written.join, replica: a,
            mintStamp: { _ in Self.stamp(2, a) }, on: loop
        ).get()
        #expect(tombstone.isDeleted)
        // Another version than the one checked (a write raced in): kept.
        #expect(
            try await !replicas.reap(bucket: "default", key: "k", digest: VersionDigest.of(written), on: loop).get())
        #expect(
            try store.get(
                partition: replicas.partitioner.partition(bucket: "default", key: "k"), bucket: "default", key: "k")
                != nil)
        #expect(
            try await replicas.reap(bucket: "default", key: "k", digest: VersionDigest.of(tombstone), on: loop).get())
        #expect(
            try store.get(
                partition: replicas.partitioner.partition(bucket: "default", key: "k"), bucket: "default", key: "k")
                == nil)
        #expect(
            try await !replicas.reap(bucket: "default", key: "k", digest: VersionDigest.of(tombstone), on: loop).get())
        // The hook-maintained tree no longer holds the key: equal to an empty rebuild.
        let partition = Partitioner(partitionCount: Self.partitions).partition(bucket: "default", key: "k")
        #expect(trees.withLockedValue { $0[partition] } == TictacTree())
        #expect(try AntiEntropy.buildTrees(from: store, partitions: Self.partitions, shape: .standard).keys == 0)
    }
}
