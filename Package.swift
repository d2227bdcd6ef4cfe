// swift-tools-version:6.0
import PackageDescription

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

        // Pure logic: wire protocol, auth math, config, pool and session state machines. No sockets.
        .target(name: "SluiceCore", dependencies: ["COpenSSL"]),
        // Linux I/O: epoll loop, non-blocking sockets, timers, signals.
        .target(name: "SluiceIO", dependencies: ["CSluiceLinux"]),
        // The proxy: listeners, client and server connections, the pool registry.
        .target(name: "SluiceServer", dependencies: ["SluiceCore", "SluiceIO"]),
        // Argument parsing, config loading, signal wiring, logging setup.
        .executableTarget(name: "sluice", dependencies: ["SluiceServer", "SluiceCore"]),

        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore"]),
        .testTarget(name: "SluiceIntegrationTests", dependencies: ["CLibPQ", "SluiceCore"]),
    ]
)
