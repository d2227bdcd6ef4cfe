import CSluiceLinux
import Glibc
import Synchronization

/// Resolves host names on a thread of its own and hands the answers back to the event loop, so a slow
/// DNS server never stalls clients. Answers are cached: addresses for `maxTTL` seconds (PgBouncer's
/// `dns_max_ttl`, which ignores the record's own TTL), failures for `failureTTL` seconds
/// (`dns_nxdomain_ttl`). Everything but the worker is confined to the loop's thread.
public final class Resolver: EventHandler {
    public typealias Completion = (Result<[SocketAddress], ResolverError>) -> Void

    private struct Entry {
        var result: Result<[SocketAddress], ResolverError>
        var expires: Double
    }

    private let worker: ResolverWorker
    private var cache: [String: Entry] = [:]
    private var waiting: [String: [Completion]] = [:]
    /// Seconds a successful answer is reused.
    public var maxTTL: Double = 15
    /// Seconds a failed lookup is remembered, so a missing name does not cost a lookup per client.
    public var failureTTL: Double = 15
    private let now: () -> Double

    public init(loop: EventLoop, now: @escaping () -> Double = Syscall.monotonicNow) throws(SystemError) {
        worker = try ResolverWorker()
        self.now = now
        try loop.registerLevelTriggered(worker.doneFD, handler: self)
        try worker.start()
    }

    /// Lookups that have been asked for and not answered yet.
    public var pendingCount: Int { waiting.count }

    /// Calls `completion` with the addresses of `host` (port 0; set it with `withPort`). A literal
    /// address, or a cached answer, completes before this returns; a name needing a lookup completes
    /// later on the loop.
    public func resolve(_ host: String, _ completion: @escaping Completion) {
        if let literal = SocketAddress.numeric(host, port: 0) { return completion(.success(literal)) }
        let time = now()
        if let entry = cache[host], entry.expires > time { return completion(entry.result) }
        if waiting[host] != nil {
            waiting[host]!.append(completion)
            return
        }
        waiting[host] = [completion]
        worker.submit(host)
    }

    public func handleEvent(_ events: UInt32) {
        var count: UInt64 = 0
        _ = Glibc.read(worker.doneFD, &count, 8)
        let time = now()
        for (host, result) in worker.takeAnswers() {
            let ttl: Double
            switch result {
            case .success: ttl = maxTTL
            case .failure: ttl = failureTTL
            }
            if ttl > 0 { cache[host] = Entry(result: result, expires: time + ttl) } else { cache[host] = nil }
            for completion in waiting.removeValue(forKey: host) ?? [] { completion(result) }
        }
        if cache.count > 1024 { cache = cache.filter { $0.value.expires > time } }
    }
}

/// The part of the resolver other threads touch: a request queue, an answer queue, and two eventfds
/// (one the worker sleeps on, one that wakes the loop).
final class ResolverWorker: Sendable {
    let wakeFD: Int32
    let doneFD: Int32
    private let requests = Mutex<[String]>([])
    private let answers = Mutex<[(String, Result<[SocketAddress], ResolverError>)]>([])

    init() throws(SystemError) {
        // Blocking on purpose: the worker sleeps in read() until there is something to resolve.
        let wake = eventfd(0, Int32(EFD_CLOEXEC))
        guard wake >= 0 else { throw SystemError("eventfd", errno: errno) }
        let done = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard done >= 0 else {
            let e = errno
            Syscall.close(wake)
            throw SystemError("eventfd", errno: e)
        }
        wakeFD = wake
        doneFD = done
    }

    func start() throws(SystemError) {
        try NativeThread { [self] in run() }.detach()
    }

    func submit(_ host: String) {
        requests.withLock { $0.append(host) }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    func takeAnswers() -> [(String, Result<[SocketAddress], ResolverError>)] {
        answers.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
    }

    // TODO: one thread resolves one name at a time, so a name whose DNS server does not answer delays
    // the lookups queued behind it (up to the resolver's own timeout, several seconds per attempt).
    private func run() {
        while true {
            var count: UInt64 = 0
            let n = Glibc.read(wakeFD, &count, 8)
            if n < 0 && errno == EINTR { continue }
            while let host = requests.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                let result: Result<[SocketAddress], ResolverError>
                do {
                    result = .success(try SocketAddress.lookup(host, port: 0))
                } catch {
                    result = .failure(error)
                }
                answers.withLock { $0.append((host, result)) }
                var one: UInt64 = 1
                _ = Glibc.write(doneFD, &one, 8)
            }
        }
    }
}
