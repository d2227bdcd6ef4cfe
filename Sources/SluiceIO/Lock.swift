import Glibc

/// A recursive pthread mutex. Recursive because the pool registry's entry points call one another
/// (failing a waiting client closes it, which updates the registry it was failed from). A pthread mutex
/// rather than `Synchronization.Mutex` because ThreadSanitizer understands it, so a race report from
/// the sanitizer run means a real race.
public final class RecursiveLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Starts `body` on a new thread with the default stack; `join` waits for it, `detach` lets it go.
public final class NativeThread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    public init(_ body: @escaping () -> Void) throws(SystemError) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &handle, nil,
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
