import SluiceCore
import SluiceIO

/// Sluice's event loops: one `Proxy` per thread, sharing one registry of pools. Loop 0 runs on the
/// caller's thread and owns the listeners and the signals; accepted clients are spread over all loops.
public final class ProxyGroup {
    let shared: ProxyShared
    let workers: [Proxy]
    let logger: Logger

    /// `config.workers` loops, or as many as there are CPUs this process may use when it is 0.
    public init(config: SluiceConfig, logger: Logger) throws {
        shared = ProxyShared(config: config)
        shared.tls = try TLSContexts(config)
        let count = config.workers > 0 ? config.workers : CPUBudget.available()
        var workers: [Proxy] = []
        for index in 0..<count {
            workers.append(try Proxy(shared: shared, index: index, logger: logger))
        }
        shared.workers = workers
        shared.lock.withLock { workers[0].updateRoutes(config) }
        self.workers = workers
        self.logger = logger
    }

    /// Builds the TLS contexts `config` asks for and throws what OpenSSL refuses (`sluice --check`).
    public static func checkTLS(_ config: SluiceConfig) throws {
        _ = try TLSContexts(config)
    }

    /// How many event loops run.
    public var loopCount: Int { workers.count }

    /// Binds the listeners. Separate from `run` so startup errors surface before any loop starts.
    public func bind() throws {
        try workers[0].bind()
    }

    /// Runs every loop until shutdown. Signals must already be blocked (`SignalSource.block`).
    /// `reload` reads the configuration again (SIGHUP, the console's RELOAD); what it throws is reported and
    /// the running configuration kept.
    public func run(signals: [Int32], reload: @escaping () throws -> SluiceConfig) throws {
        shared.reload = reload
        var threads: [NativeThread] = []
        for worker in workers.dropFirst() {
            threads.append(
                try NativeThread {
                    do {
                        try worker.run(signals: nil)
                    } catch {
                        worker.logger.error("event loop failed", [("error", "\(error)")])
                    }
                })
        }
        defer {
            workers[0].stopAll()
            for thread in threads { thread.join() }
        }
        try workers[0].run(signals: signals)
    }
}
