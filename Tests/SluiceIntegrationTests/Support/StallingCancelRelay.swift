import Foundation
import Glibc
import Synchronization

/// A TCP relay on 127.0.0.1 in front of a PostgreSQL port that passes ordinary connections through
/// byte for byte but never lets a CancelRequest reach the server: it keeps such a connection open,
/// reading and discarding, and never closes it, like a server that never gets round to the cancel.
/// Only the sender closing it, or `stop()`, ends it.
///
/// Sluice sends a cancel to the exact address its server connection is connected to, so a pool whose
/// `host`/`port` name the relay has every cancel it forwards stall here.
///
/// Threads and blocking sockets with short `poll` timeouts keep it independent of the code under
/// test; call `stop()` at the end of the test (it waits for every thread to finish).
final class StallingCancelRelay: Sendable {
    /// One CancelRequest as the relay saw it.
    struct Cancel: Sendable {
        /// When its 16 bytes had arrived.
        var arrived: ContinuousClock.Instant
        /// When the sender closed the connection; nil while it is open.
        var closedBySender: ContinuousClock.Instant?
        /// The process id the cancel names.
        var processID: Int32
    }

    /// The relay's port on 127.0.0.1.
    let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let state = Mutex(State())

    private struct State {
        var stopping = false
        var threads = 0
        var cancels: [Cancel] = []
        var relayed = 0
    }

    /// The request code of a CancelRequest (1234 << 16 | 5678).
    private static let cancelRequestCode: UInt32 = 80_877_102

    /// Starts relaying 127.0.0.1:`port` (a free one) to 127.0.0.1:`upstreamPort`.
    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        var attempt = 0
        while true {
            attempt += 1
            let candidate = try LoopbackPort.free()
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("relay: socket failed, errno \(errno)") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = Self.loopback(candidate)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound == 0 && listen(fd, 64) == 0 {
                port = candidate
                listener = fd
                break
            }
            let code = errno
            close(fd)
            // Another process took the port between the check and the bind: try another one.
            if attempt >= 5 { throw HarnessError("relay: cannot listen on 127.0.0.1:\(candidate), errno \(code)") }
        }
        let started = spawn { [self] in acceptLoop() }
        if !started {
            close(listener)
            throw HarnessError("relay: could not start its accept thread")
        }
    }

    /// Every CancelRequest that has arrived so far, oldest first.
    var cancels: [Cancel] { state.withLock { $0.cancels } }

    /// How many ordinary connections were relayed to the server.
    var relayedConnections: Int { state.withLock { $0.relayed } }

    /// Waits until at least `count` cancels have arrived; returns them, or nil after `timeout`.
    func waitForCancels(_ count: Int, timeout: Duration) -> [Cancel]? {
        var seen: [Cancel] = []
        let arrived = waitUntil(timeout: timeout) {
            seen = cancels
            return seen.count >= count
        }
        return arrived ? seen : nil
    }

    /// Closes every connection and the listener, and waits for the threads to end.
    func stop() {
        state.withLock { $0.stopping = true }
        // Every thread polls with a 100 ms timeout and checks `stopping`, so this is quick.
        waitUntil(timeout: .seconds(10)) { state.withLock { $0.threads == 0 } }
    }

    // MARK: - Threads

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Runs `body` on a new thread unless the relay is stopping; the thread is counted until it ends.
    private func spawn(_ body: @escaping @Sendable () -> Void) -> Bool {
        let admitted = state.withLock { state in
            if state.stopping { return false }
            state.threads += 1
            return true
        }
        guard admitted else { return false }
        let thread = Thread { [self] in
            body()
            state.withLock { $0.threads -= 1 }
        }
        thread.start()
        return true
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !isStopping {
            guard waitReadable(listener) else { continue }
            let fd = accept(listener, nil, nil)
            if fd < 0 { continue }
            if !spawn({ [self] in serve(fd) }) { close(fd) }
        }
    }

    /// Reads the first 8 bytes to tell a CancelRequest from a startup packet, then swallows or relays.
    private func serve(_ fd: Int32) {
        var head: [UInt8] = []
        while head.count < 8 {
            guard let chunk = readSome(fd, upTo: 8 - head.count) else {
                close(fd)
                return
            }
            head += chunk
        }
        let length = Self.uint32(head, at: 0)
        let code = Self.uint32(head, at: 4)
        if length == 16 && code == Self.cancelRequestCode {
            swallowCancel(fd)
        } else {
            relay(fd, head: head)
        }
    }

    /// Reads the rest of a CancelRequest and everything after it, never answering and never closing.
    private func swallowCancel(_ fd: Int32) {
        defer { close(fd) }
        var body: [UInt8] = []
        while body.count < 8 {
            guard let chunk = readSome(fd, upTo: 8 - body.count) else { return }
            body += chunk
        }
        let index = state.withLock { state in
            state.cancels.append(
                Cancel(arrived: .now, closedBySender: nil, processID: Int32(bitPattern: Self.uint32(body, at: 0))))
            return state.cancels.count - 1
        }
        // Whatever else comes is discarded; the connection ends only when the sender closes it.
        while readSome(fd, upTo: 4096) != nil {}
        if !isStopping {
            state.withLock { $0.cancels[index].closedBySender = .now }
        }
    }

    /// Connects to the server, sends what was already read, and copies both ways until either side ends.
    private func relay(_ client: Int32, head: [UInt8]) {
        defer { close(client) }
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard server >= 0 else { return }
        defer { close(server) }
        var address = Self.loopback(upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0, writeAll(server, head) else { return }
        state.withLock { $0.relayed += 1 }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !isStopping {
            var fds = [
                pollfd(fd: client, events: Int16(POLLIN), revents: 0),
                pollfd(fd: server, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, 100)
            if ready < 0 && errno != EINTR { return }
            if ready <= 0 { continue }
            for (from, to) in [(0, 1), (1, 0)] where fds[from].revents != 0 {
                let n = recv(fds[from].fd, &buffer, buffer.count, 0)
                if n <= 0 { return }
                guard writeAll(fds[to].fd, Array(buffer[0..<n])) else { return }
            }
        }
    }

    // MARK: - Socket helpers

    /// Waits up to 100 ms for `fd` to become readable (or report an error or hang-up).
    private func waitReadable(_ fd: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 100) > 0
    }

    /// Up to `count` bytes; nil once the peer closed, on an error, or when the relay stops.
    private func readSome(_ fd: Int32, upTo count: Int) -> [UInt8]? {
        while !isStopping {
            guard waitReadable(fd) else { continue }
            var buffer = [UInt8](repeating: 0, count: count)
            let n = recv(fd, &buffer, count, 0)
            if n < 0 && errno == EINTR { continue }
            return n > 0 ? Array(buffer[0..<n]) : nil
        }
        return nil
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes {
                send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        return address
    }
}
