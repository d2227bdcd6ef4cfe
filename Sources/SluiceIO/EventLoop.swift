import CSluiceLinux
import Glibc

/// Something that owns a descriptor registered with an event loop.
public protocol EventHandler: AnyObject {
    /// Called with the epoll event bits (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, …) that fired.
    func handleEvent(_ events: UInt32)
}

/// One epoll instance driven by one thread. Descriptors are registered edge-triggered for both
/// directions once, so the data path never calls `epoll_ctl`: handlers remember readiness themselves
/// and read until the kernel says "would block".
///
/// The loop is confined to the thread that runs it; other threads reach it only through `post`.
public final class EventLoop: @unchecked Sendable {
    private let epollFD: Int32
    private let wakeFD: Int32
    private var handlers: [EventHandler?] = []
    /// How many times each descriptor number has been registered, carried in every event's data next
    /// to the number. A handler may close a descriptor and a new one may get the same number while a
    /// batch of events is being handled; an event the kernel reported for the old descriptor then
    /// carries an older count and is dropped instead of reaching the new descriptor's handler.
    private var registrations: [UInt32] = []
    private var running = false
    private var deferred: [() -> Void] = []
    private var runningBatch: [() -> Void] = []
    private var events: UnsafeMutablePointer<epoll_event>
    private let maxEvents = 256
    /// How often `onTick` runs: the resolution of every timeout Sluice enforces.
    public var tickInterval: Double = 0.1
    public var onTick: (Double) -> Void = { _ in }
    private var nextTick: Double = 0
    /// Work other threads handed to this loop, run on its thread after the current batch.
    private let inboxLock = RecursiveLock()
    private var inbox: [() -> Void] = []

    public init() throws(SystemError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError("epoll_create1", errno: errno) }
        epollFD = fd
        let efd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard efd >= 0 else { throw SystemError("eventfd", errno: errno) }
        wakeFD = efd
        events = .allocate(capacity: maxEvents)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = efd
        _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, efd, &event)
    }

    deinit {
        events.deallocate()
        Syscall.close(wakeFD)
        Syscall.close(epollFD)
    }

    /// Watches `fd` for both directions, edge-triggered.
    public func register(_ fd: Int32, handler: EventHandler) throws(SystemError) {
        try register(
            fd, handler: handler, events: EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue)
    }

    /// Watches `fd` level-triggered for reading only: listeners and signal descriptors.
    public func registerLevelTriggered(_ fd: Int32, handler: EventHandler) throws(SystemError) {
        try register(fd, handler: handler, events: EPOLLIN.rawValue)
    }

    private func register(_ fd: Int32, handler: EventHandler, events bits: UInt32) throws(SystemError) {
        let index = Int(fd)
        if index >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: index + 1 - handlers.count))
            registrations.append(contentsOf: repeatElement(0, count: index + 1 - registrations.count))
        }
        let registration = registrations[index] &+ 1
        var event = epoll_event()
        event.events = bits
        event.data.u64 = Self.eventData(fd: fd, registration: registration)
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { throw SystemError("epoll_ctl", errno: errno) }
        registrations[index] = registration
        handlers[index] = handler
    }

    private static func eventData(fd: Int32, registration: UInt32) -> UInt64 {
        UInt64(registration) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    /// Stops watching `fd`. Call before closing it.
    public func unregister(_ fd: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, &event)
        if Int(fd) < handlers.count { handlers[Int(fd)] = nil }
    }

    /// Runs `work` after the handlers of the current batch of events, on this loop.
    public func defer_(_ work: @escaping () -> Void) {
        deferred.append(work)
    }

    /// Runs `work` on this loop's thread soon. The only member other threads may call (with `stop`
    /// through it); `work` must touch only what this loop owns or what is locked.
    public func post(_ work: @escaping () -> Void) {
        let wasEmpty = inboxLock.withLock {
            inbox.append(work)
            return inbox.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    public func stop() {
        running = false
    }

    public func run() {
        running = true
        nextTick = Syscall.monotonicNow() + tickInterval
        while running {
            let now = Syscall.monotonicNow()
            let timeoutMS = deferred.isEmpty ? max(0, Int32(((nextTick - now) * 1000).rounded(.up))) : 0
            let n = epoll_wait(epollFD, events, Int32(maxEvents), timeoutMS)
            if n < 0 && errno != EINTR { fatalError("epoll_wait failed: \(SystemError("epoll_wait", errno: errno))") }
            if n > 0 {
                for i in 0..<Int(n) {
                    let data = events[i].data.u64
                    let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
                    if fd == wakeFD {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, 8)
                        runInbox()
                        continue
                    }
                    // A handler earlier in this batch may have closed the descriptor, and a new one may
                    // have been registered under the same number since.
                    guard Int(fd) < handlers.count, let handler = handlers[Int(fd)],
                        UInt32(truncatingIfNeeded: data >> 32) == registrations[Int(fd)]
                    else { continue }
                    handler.handleEvent(events[i].events)
                }
            }
            runDeferred()
            let after = Syscall.monotonicNow()
            if after >= nextTick {
                nextTick = after + tickInterval
                onTick(after)
                runDeferred()
            }
        }
    }

    private func runInbox() {
        let batch = inboxLock.withLock {
            defer { inbox.removeAll() }
            return inbox
        }
        for work in batch { work() }
    }

    private func runDeferred() {
        while !deferred.isEmpty {
            // Two buffers taking turns: work deferred while a batch runs goes to the other one, and
            // neither is reallocated once both have grown.
            swap(&deferred, &runningBatch)
            for work in runningBatch { work() }
            runningBatch.removeAll(keepingCapacity: true)
        }
    }
}
