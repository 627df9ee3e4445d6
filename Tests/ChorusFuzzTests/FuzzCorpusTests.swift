import Foundation
import Testing

/// Every fuzz target over its committed corpus (`Tests/Fuzz/corpus/<target>/`: valid
/// encodings from the encoders plus the minimised crashers found so far), then over a
/// bounded number of seeded mutations of it. Deterministic: a failure prints the
/// iteration and the input in hex, and reruns the same way.
///
/// `CHORUS_FUZZ_ITERATIONS` changes the mutation count per target (default 50,000:
/// the suite stays well under a minute in a debug build). `CHORUS_FUZZ_WRITE_SEEDS=1`
/// rewrites the `seed-*.bin` files from the encoders (crashers are kept).
@Suite struct FuzzCorpusTests {
    static let corpusRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static var iterations: Int {
        ProcessInfo.processInfo.environment["CHORUS_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 50_000
    }

    static func corpus(of target: FuzzTarget) throws -> [(name: String, bytes: [UInt8])] {
        let folder = corpusRoot.appendingPathComponent(target.name)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: folder.appendingPathComponent(name))))
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.prefix(512).map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func corpusAndMutationsNeverBreakTheDecoder(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        if ProcessInfo.processInfo.environment["CHORUS_FUZZ_WRITE_SEEDS"] == "1" {
            try writeSeeds(target)
        }
        let corpus = try Self.corpus(of: target)
        #expect(!corpus.isEmpty, "no corpus in Tests/Fuzz/corpus/\(name); run with CHORUS_FUZZ_WRITE_SEEDS=1")
        let inputs = corpus.map(\.bytes) + target.seeds()
        for (file, bytes) in corpus {
            let problem = target.run(bytes)
            #expect(problem == nil, "\(name)/\(file): \(problem ?? "")")
        }
        // The seed differs per target so targets do not all see the same byte patterns.
        var mutator = FuzzMutator(
            seed: name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
        var failures = 0
        for iteration in 0..<Self.iterations {
            let input = mutator.mutate(inputs[mutator.below(inputs.count)], corpus: inputs)
            if let problem = target.run(input) {
                failures += 1
                Issue.record("\(name) iteration \(iteration): \(problem)\ninput: \(Self.hex(input))")
                if failures >= 5 { break }
            }
        }
    }

    /// Pure random bytes of every length from 0 to 300: the short, truncated inputs
    /// every decoder must refuse without reading past the end.
    @Test(arguments: FuzzTargets.all.map(\.name))
    func randomBytesNeverBreakTheDecoder(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        var mutator = FuzzMutator(seed: 0xC0FFEE)
        for length in 0...300 {
            let input = mutator.randomBytes(length)
            let problem = target.run(input)
            #expect(problem == nil, "\(name) random input: \(problem ?? "")\ninput: \(Self.hex(input))")
        }
    }

    private func writeSeeds(_ target: FuzzTarget) throws {
        let folder = Self.corpusRoot.appendingPathComponent(target.name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (index, seed) in target.seeds().enumerated() {
            try Data(seed).write(to: folder.appendingPathComponent(String(format: "seed-%02d.bin", index)))
        }
    }
}
