import CSluiceLinux
import Glibc
import Synchronization

/// A recursive lock over an adaptive pthread mutex. Recursive because the pool registry's entry points
/// call one another (failing a waiting client closes it, which updates the registry it was failed
/// from). Adaptive because the sections it guards last a microsecond or two: a thread that finds it
/// taken spins briefly before sleeping, where a plain mutex would make a futex call on both sides. A
/// pthread mutex rather than `Synchronization.Mutex` because ThreadSanitizer understands it, so a race
/// report from the sanitizer run means a real race.
public final class RecursiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The thread holding the mutex, or 0. Only the holder writes its own id here, so a thread that
    /// reads its own id holds the lock.
    private let owner = Atomic<UInt>(0)
    /// How often the holder has taken the lock; touched only by the holder.
    private var depth = 0

    public init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, sluice_PTHREAD_MUTEX_ADAPTIVE_NP)
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() {
        let me = UInt(pthread_self())
        if owner.load(ordering: .relaxed) == me {
            depth += 1
            return
        }
        pthread_mutex_lock(mutex)
        owner.store(me, ordering: .relaxed)
        depth = 1
    }

    /// Whether the calling thread holds the lock.
    public var isHeldByCurrentThread: Bool { owner.load(ordering: .relaxed) == UInt(pthread_self()) }

    public func unlock() {
        depth -= 1
        guard depth == 0 else { return }
        owner.store(0, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
    }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Starts `body` on a new thread with an 8 MiB stack; `join` waits for it, `detach` lets it go.
///
/// The stack size is set rather than inherited from `RLIMIT_STACK`, which a container or a unit file may set
/// low: PostgreSQL's parser, run on every loop to classify statements, recurses once per nesting level of a
/// statement and has no depth check of its own in the library build.
public final class NativeThread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    public init(_ body: @escaping () -> Void) throws(SystemError) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 8 << 20)
        let rc = pthread_create(
            &handle, &attributes,
            { raw in
                let thread = Unmanaged<NativeThread>.fromOpaque(raw!).takeRetainedValue()
                thread.body()
                return nil
            }, context)
        guard rc == 0 else {
            Unmanaged<NativeThread>.fromOpaque(context).release()
            throw SystemError("pthread_create", errno: rc)
        }
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }

    /// Lets the thread run on its own: nobody will join it.
    public func detach() {
        pthread_detach(handle)
    }
}
