// swift-tools-version:6.0
import PackageDescription

// Release builds skip Swift's dynamic exclusivity checks: on the forwarding path they cost about a fifth
// of Sluice's own instructions (callgrind, pgbench -S). Debug builds, which every test runs, keep them,
// so an overlapping access still fails the tests.
let releaseSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))
]

let package = Package(
    name: "Sluice",
    products: [
        .executable(name: "sluice", targets: ["sluice"])
    ],
    targets: [
        // Thin shims over C headers that Swift cannot import on its own.
        .systemLibrary(name: "CSluiceLinux", path: "Sources/CSluiceLinux"),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            path: "Sources/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // libpg_query ships no pkg-config file; its header and library sit on the default search paths.
        .systemLibrary(
            name: "CPgQuery",
            path: "Sources/CPgQuery",
            providers: [.apt(["libpg-query-dev"])]
        ),

        // Pure logic: wire protocol, auth math, config, pool and session state machines, SQL classification.
        // No sockets.
        .target(name: "SluiceCore", dependencies: ["COpenSSL", "CPgQuery"], swiftSettings: releaseSettings),
        // Linux I/O: epoll loop, non-blocking sockets, TLS, timers, signals.
        .target(name: "SluiceIO", dependencies: ["CSluiceLinux", "COpenSSL"], swiftSettings: releaseSettings),
        // The proxy: listeners, client and server connections, the pool registry.
        .target(name: "SluiceServer", dependencies: ["SluiceCore", "SluiceIO"], swiftSettings: releaseSettings),
        // Argument parsing, config loading, signal wiring, logging setup.
        .executableTarget(name: "sluice", dependencies: ["SluiceServer", "SluiceCore"]),
        // Not a product: bench/classifier builds and runs it to measure the statement classifier.
        .executableTarget(
            name: "ClassifierBench", dependencies: ["SluiceCore", "CPgQuery"], path: "Benchmarks/ClassifierBench",
            swiftSettings: releaseSettings),

        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore"]),
        .testTarget(name: "SluiceIOTests", dependencies: ["SluiceIO"]),
        .testTarget(name: "SluiceIntegrationTests", dependencies: ["CLibPQ", "SluiceCore"]),
    ]
)
