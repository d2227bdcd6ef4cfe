import CSluiceLinux
import Glibc

/// A one-shot timer on a `timerfd`, for the few deadlines that must fire on time without waiting for
/// the loop's tick to look (a server connect that is still resolving or connecting).
public final class DeadlineTimer: EventHandler {
    private let fd: Int32
    private unowned let loop: EventLoop
    private var action: (() -> Void)?

    /// Fires `action` once, on the loop, after `seconds`.
    public init(loop: EventLoop, seconds: Double, _ action: @escaping () -> Void) throws(SystemError) {
        let fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("timerfd_create", errno: errno) }
        self.fd = fd
        self.loop = loop
        self.action = action
        let whole = max(0, seconds)
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(whole)
        spec.it_value.tv_nsec = Int((whole - Double(Int(whole))) * 1e9)
        // A zero it_value would disarm the timer instead of firing at once.
        if spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0 { spec.it_value.tv_nsec = 1 }
        guard timerfd_settime(fd, 0, &spec, nil) == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError("timerfd_settime", errno: e)
        }
        do {
            try loop.registerLevelTriggered(fd, handler: self)
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    public func handleEvent(_ events: UInt32) {
        // Only an expiry the timer itself counted fires the action, never a readiness report alone.
        var expirations: UInt64 = 0
        guard Glibc.read(fd, &expirations, 8) == 8, expirations > 0 else { return }
        let action = self.action
        cancel()
        action?()
    }

    /// Stops the timer; the action never runs. Safe to call twice.
    public func cancel() {
        guard action != nil else { return }
        action = nil
        loop.unregister(fd)
        Syscall.close(fd)
    }
}
