import Glibc

/// A failed system call: keeps the call's name and errno so logs say exactly what the kernel refused.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Int32
    /// Said instead of errno's text when the failure is not the kernel's (a TLS error).
    public var detail: String?

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public init(_ call: String, detail: String) {
        self.call = call
        self.errno = EPROTO
        self.detail = detail
    }

    public var description: String {
        if let detail { return detail }
        return "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking read or write.
public enum IOResult: Equatable, Sendable {
    case bytes(Int)
    case wouldBlock
    /// The peer closed its side (reads) or the connection is gone (writes).
    case closed
}

/// The one place system calls are wrapped: EINTR is retried here, EAGAIN becomes `.wouldBlock`, and
/// every other failure throws with errno and the call's name.
public enum Syscall {
    @inline(__always)
    public static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            if e == ECONNRESET || e == ETIMEDOUT || e == EPIPE || e == ENOTCONN { return .closed }
            throw SystemError("read", errno: e)
        }
    }

    @inline(__always)
    public static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        while true {
            let n = Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .bytes(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            if e == ECONNRESET || e == EPIPE || e == ETIMEDOUT || e == ENOTCONN { return .closed }
            throw SystemError("send", errno: e)
        }
    }

    public static func close(_ fd: Int32) {
        // close() must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(fd)
    }

    /// Monotonic seconds, for timeouts: never jumps with the wall clock.
    public static func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Wall-clock seconds since the epoch, for display only.
    public static func wallClockNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
