// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // libsodium, from Debian's libsodium-dev.
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // SQLite, from Debian's libsqlite3-dev (DESIGN §8).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // jemalloc, from Debian's libjemalloc-dev: the agent's allocator. Swift's runtime,
        // NIO's futures and buffers allocate many small objects per request; against glibc's
        // malloc it cut the agents' CPU per write by a fifth (README, "Key-value store").
        .systemLibrary(
            name: "CJemalloc",
            pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        // Pure protocol cores: no I/O, no clocks, no randomness of their own.
        .target(name: "ChorusCore"),
        .target(name: "ChorusCrypto", dependencies: ["CSodium"]),
        // Durable object store: SQLite in WAL mode, group commit (DESIGN §8).
        .target(name: "ChorusStorage", dependencies: ["CSQLite"]),
        // Deterministic many-node simulator over the pure cores (DESIGN §1).
        .target(name: "ChorusSim", dependencies: ["ChorusCore"]),
        // The I/O shell: SwiftNIO channels, timers, persistence, HTTP API.
        .target(
            name: "ChorusNode",
            dependencies: [
                "ChorusCore",
                "ChorusCrypto",
                "ChorusStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "chorus",
            dependencies: [
                "ChorusNode",
                "ChorusCore",
                "ChorusCrypto",
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "ChorusSim",
                "CJemalloc",
            ]
        ),
        .testTarget(name: "ChorusCoreTests", dependencies: ["ChorusCore"]),
        .testTarget(name: "ChorusSimTests", dependencies: ["ChorusSim"]),
        .testTarget(name: "ChorusCryptoTests", dependencies: ["ChorusCrypto"]),
        .testTarget(name: "ChorusNodeTests", dependencies: ["ChorusNode"]),
        .testTarget(name: "ChorusStorageTests", dependencies: ["ChorusStorage", "CSQLite", "ChorusCore"]),
        // Seeded mutation of the wire and storage decoders over Tests/Fuzz/corpus; the
        // same targets build for libFuzzer in Fuzz/ (tools/fuzz).
        .testTarget(name: "ChorusFuzzTests", dependencies: ["ChorusCore", "ChorusCrypto"]),
        // Real agent processes on loopback; needs the built `chorus` binary.
        // CSQLite only to copy a stopped agent's WAL into its database file before damaging it.
        .testTarget(name: "ChorusProcessTests", dependencies: ["CSQLite"]),
    ],
    swiftLanguageModes: [.v6]
)
