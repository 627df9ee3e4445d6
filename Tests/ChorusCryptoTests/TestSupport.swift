import ChorusCrypto
import Foundation

/// SplitMix64: a tiny seeded generator so "random" test inputs are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The cluster name the tests seal under.
let clusterName = Array("chorus-test".utf8)

func freshKey() throws -> ClusterKey { try ClusterKey.generate() }

func keyring(_ primary: ClusterKey, _ others: ClusterKey...) throws -> Keyring {
    try Keyring(primary: primary, others: others)
}

/// A fresh private directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("chorus-crypto-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}
