/// The byte stream under the protocol framer. A plain socket today; TLS and Unix sockets plug in
/// here without the framer or the proxy knowing.
public protocol Transport: AnyObject {
    var fd: Int32 { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult
    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult
    func close()
}

/// A connected non-blocking socket with nothing in between.
public final class SocketTransport: Transport {
    public let fd: Int32
    private var closed = false

    public init(fd: Int32) {
        self.fd = fd
    }

    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        try Syscall.read(fd, buffer)
    }

    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult {
        try Syscall.write(fd, bytes)
    }

    /// Gives the socket to whoever wraps it next (a TLS session): this transport no longer closes it.
    public func handOver() -> Int32 {
        closed = true
        return fd
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Syscall.close(fd)
    }

    deinit { close() }
}
