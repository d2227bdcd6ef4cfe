import CSluiceLinux
import Glibc

/// Delivers signals through a `signalfd` read by the event loop, so handlers run as ordinary loop code
/// instead of in async-signal context.
public final class SignalSource: EventHandler {
    private let fd: Int32
    private let onSignal: (Int32) -> Void

    /// Blocks `signals` for the calling thread and every thread it starts later. Call from `main` first.
    public static func block(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // Writes to a closed peer must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
    }

    public init(signals: [Int32], loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws(SystemError) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        let fd = signalfd(-1, &set, Int32(SFD_NONBLOCK) | Int32(SFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("signalfd", errno: errno) }
        self.fd = fd
        self.onSignal = onSignal
        try loop.registerLevelTriggered(fd, handler: self)
    }

    public func handleEvent(_ events: UInt32) {
        var info = signalfd_siginfo()
        while Glibc.read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            onSignal(Int32(info.ssi_signo))
        }
    }
}
