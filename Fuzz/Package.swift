// swift-tools-version:6.0
// Coverage-guided fuzzing of Chorus's decoders with libFuzzer (issue 8). Not part of
// the main build: tools/fuzz builds it with `-sanitize=fuzzer,address`. The sources
// are symlinks into the main package, so the targets fuzzed here are the ones the
// tests in Tests/ChorusFuzzTests run over the committed corpus.
import PackageDescription

let package = Package(
    name: "chorus-fuzz",
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium"),
        .target(name: "ChorusCore"),
        .target(name: "ChorusCrypto", dependencies: ["CSodium"]),
        .executableTarget(name: "ChorusFuzz", dependencies: ["ChorusCore", "ChorusCrypto"]),
    ],
    swiftLanguageModes: [.v6]
)
