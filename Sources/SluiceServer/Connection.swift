import SluiceCore
import SluiceIO

/// What a connection does with the bytes of a message it does not need to understand.
enum Passthrough {
    case none
    /// This many bytes of the current message still go to the peer as they arrive.
    case forward(Int)
    /// This many bytes of the current message are still to be discarded.
    case drop(Int)
}

/// Buffers, readiness and the read/write primitives shared by client and server connections.
///
/// Sockets are registered edge-triggered, so `readable`/`writable` remember what epoll last said until
/// a read or write shows otherwise.
class Connection: EventHandler {
    let id: Int
    /// A plain socket, replaced by a TLS session when either side agrees to encrypt (Connection+TLS.swift).
    var transport: any Transport
    /// The loop that drives this connection. A server connection changes loops when it is lent to a
    /// client of another loop; that happens with the registry's lock held, and only while it is idle.
    unowned var proxy: Proxy
    var input: ByteBuffer
    var output = ByteBuffer()
    // Stored properties are laid out in the order declared: the one-byte flags follow the nine bytes of
    // `passthrough` so that they fill its padding rather than adding their own.
    var passthrough = Passthrough.none
    var readable = false
    var writable = false
    var isClosed = false
    private var driveScheduled = false
    /// Stopped reading because the peer's output is full; the peer resumes this side once it drains.
    var stalledByPeer = false
    /// The kernel reported that the peer closed or reset the connection. Input already buffered is still
    /// processed, but a side that cannot make progress any more is closed at once instead of waiting on a
    /// peer that will never read.
    var peerHungUp = false
    /// Bytes read and written since the pool's totals last took them (`PoolStats`).
    var bytesRead: UInt64 = 0
    var bytesWritten: UInt64 = 0
    /// Lines about this connection. A client keeps its loop's logger here and adds its own keys per line.
    var logger: Logger

    /// Output above this stops the peer from reading more: back-pressure instead of unbounded buffering.
    static let outputHighWater = 256 * 1024
    /// Below this the peer may read again.
    static let outputLowWater = 64 * 1024
    /// Read size: large enough to take a burst of result rows in one system call.
    static let readChunk = 16 * 1024

    init(id: Int, transport: any Transport, proxy: Proxy, logger: Logger) {
        self.id = id
        self.transport = transport
        self.proxy = proxy
        self.logger = logger
        self.input = ByteBuffer(capacity: 0)
    }

    var fd: Int32 { transport.fd }

    func handleEvent(_ events: UInt32) {
        if events & (EventBits.input | EventBits.hangup | EventBits.error | EventBits.readHangup) != 0 {
            readable = true
        }
        if events & (EventBits.hangup | EventBits.error | EventBits.readHangup) != 0 { peerHungUp = true }
        if events & EventBits.output != 0 { writable = true }
        drive()
    }

    /// Reacts to whatever changed. Subclasses override.
    func drive() {}

    /// Runs `drive()` once at the end of the current batch of events, however often it is asked for.
    func scheduleDrive() {
        guard !driveScheduled, !isClosed else { return }
        driveScheduled = true
        proxy.loop.defer_ { [self] in
            driveScheduled = false
            if !isClosed { drive() }
        }
    }

    enum ReadOutcome {
        case data
        case nothing
        case closed
    }

    /// One read into the input buffer. Returns `.nothing` and clears `readable` when the kernel has no more.
    func readOnce() -> ReadOutcome {
        guard readable else { return .nothing }
        if input.capacity == 0, let spare = proxy.spareBuffers.popLast() { input = ByteBuffer(recycling: spare) }
        do {
            let chunk = Self.readChunk
            let result = try input.withWritableTail(minimum: chunk) { raw -> (filled: Int, result: IOResult) in
                let r = try transport.read(into: raw)
                if case .bytes(let n) = r { return (n, r) }
                return (0, r)
            }
            switch result {
            case .bytes(let n):
                bytesRead &+= UInt64(n)
                // A short read means the socket is drained: with edge triggering, new data brings a new event.
                if n < chunk { readable = false }
                return .data
            case .wouldBlock:
                readable = false
                return .nothing
            case .closed:
                readable = false
                return .closed
            }
        } catch {
            logger.debug("read failed", [("error", "\(error)")])
            readable = false
            return .closed
        }
    }

    /// Writes as much buffered output as the socket takes. Returns false when the connection failed.
    @discardableResult
    func flushOutput() -> Bool {
        while !output.isEmpty && writable {
            let result: IOResult
            do {
                result = try output.withReadableBytes { try transport.write($0) }
            } catch {
                logger.debug("write failed", [("error", "\(error)")])
                return false
            }
            switch result {
            case .bytes(let n):
                bytesWritten &+= UInt64(n)
                output.moveReaderIndex(forwardBy: n)
                if !output.isEmpty { writable = false }
            case .wouldBlock:
                writable = false
            case .closed:
                return false
            }
        }
        if output.isEmpty { output.clear(keepCapacity: 64 * 1024) }
        return true
    }

    var outputIsCongested: Bool { output.readableBytes >= Self.outputHighWater }

    /// Moves the front `count` bytes of the input to `destination`, for messages forwarded unread.
    func moveInput(_ count: Int, to destination: inout ByteBuffer) {
        input.withReadableBytes { raw in
            destination.write(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<count]))
        }
        input.moveReaderIndex(forwardBy: count)
    }

    /// Moves on the forwarded message in progress, as far as input allows.
    func continuePassthrough(into destination: inout ByteBuffer) {
        guard case .forward(let remaining) = passthrough else { return skipPassthrough() }
        let n = min(remaining, input.readableBytes)
        moveInput(n, to: &destination)
        passthrough = remaining == n ? .none : .forward(remaining - n)
    }

    /// Moves on the discarded message in progress, as far as input allows.
    func skipPassthrough() {
        guard case .drop(let remaining) = passthrough else { return }
        let n = min(remaining, input.readableBytes)
        input.moveReaderIndex(forwardBy: n)
        passthrough = remaining == n ? .none : .drop(remaining - n)
    }

    /// Forwards the message at the front of the input, all of it or what has arrived so far.
    func forwardMessage(totalLength: Int, into destination: inout ByteBuffer) {
        let n = min(totalLength, input.readableBytes)
        moveInput(n, to: &destination)
        if n < totalLength { passthrough = .forward(totalLength - n) }
    }

    /// Discards the message at the front of the input, all of it or what has arrived so far.
    func dropMessage(totalLength: Int) {
        let n = min(totalLength, input.readableBytes)
        input.moveReaderIndex(forwardBy: n)
        if n < totalLength { passthrough = .drop(totalLength - n) }
    }

    /// Reads and discards what the peer already sent. Closing a socket with unread input makes the kernel
    /// answer with a reset, which can destroy an error message still on its way to the peer.
    func discardPendingInput() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<16 {
            let result = scratch.withUnsafeMutableBytes { try? transport.read(into: $0) }
            guard case .bytes = result else { return }
        }
    }

    /// Unregisters and closes the socket. Subclasses clean up their links first.
    func closeSocket() {
        guard !isClosed else { return }
        isClosed = true
        proxy.loop.unregister(fd)
        transport.close()
        input.clear(keepCapacity: 0)
        output.clear(keepCapacity: 0)
    }
}

/// epoll bits as plain integers, so connection code does not import the C module.
enum EventBits {
    static let input: UInt32 = 0x001
    static let output: UInt32 = 0x004
    static let error: UInt32 = 0x008
    static let hangup: UInt32 = 0x010
    static let readHangup: UInt32 = 0x2000
}
