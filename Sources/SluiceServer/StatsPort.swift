import Glibc
import SluiceCore
import SluiceIO

/// The stats port's listening socket, on loop 0.
final class StatsListener: EventHandler {
    let fd: Int32
    unowned let proxy: Proxy
    /// At most this many requests are served at once; more connections are closed at accept. Health probes
    /// and scrapes are few; a flood of them must not cost the proxy memory.
    static let connectionLimit = 64

    init(fd: Int32, proxy: Proxy) {
        self.fd = fd
        self.proxy = proxy
    }

    func handleEvent(_ events: UInt32) {
        for _ in 0..<Self.connectionLimit {
            let accepted: (fd: Int32, peer: PeerAddress)?
            do {
                accepted = try Socket.accept(fd)
            } catch {
                proxy.logger.warning("stats port: accept failed", [("error", "\(error)")])
                return
            }
            guard let (connectionFD, _) = accepted else { return }
            guard proxy.statsConnections.count < Self.connectionLimit else {
                Syscall.close(connectionFD)
                continue
            }
            let connection = StatsConnection(fd: connectionFD, proxy: proxy)
            do {
                try proxy.loop.register(connectionFD, handler: connection)
            } catch {
                connection.close()
                continue
            }
            proxy.statsConnections[connectionFD] = connection
        }
    }

    func close() {
        proxy.loop.unregister(fd)
        Syscall.close(fd)
    }
}

/// One request on the stats port: read a request head (at most 8 KiB, within `timeLimit`), answer, close.
/// Everything is non-blocking on loop 0, so a slow or silent client holds one descriptor until its time is
/// up, and never the loop.
final class StatsConnection: EventHandler {
    let fd: Int32
    unowned let proxy: Proxy
    let acceptedAt = Syscall.monotonicNow()
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var written = 0
    private(set) var isAnswering = false
    private(set) var isClosed = false
    /// Seconds a request head may take to arrive.
    static let timeLimit = 5.0
    static let headLimit = 8192

    init(fd: Int32, proxy: Proxy) {
        self.fd = fd
        self.proxy = proxy
    }

    func handleEvent(_ events: UInt32) {
        if isClosed { return }
        if isAnswering { return flush() }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while input.count <= Self.headLimit {
            let result: IOResult
            do {
                result = try chunk.withUnsafeMutableBytes { try Syscall.read(fd, $0) }
            } catch {
                return close()
            }
            switch result {
            case .bytes(let count):
                input += chunk[..<count]
            case .wouldBlock:
                return parse(peerClosed: false)
            case .closed:
                return parse(peerClosed: true)
            }
        }
        parse(peerClosed: false)
    }

    private func parse(peerClosed: Bool) {
        switch HTTPRequestHead.parse(input, limit: Self.headLimit) {
        case .incomplete:
            if peerClosed { close() }
        case .failed(let error):
            answer(HTTPResponse(error: error), includeBody: true)
        case .complete(let head, _):
            isAnswering = true
            proxy.answerStatsRequest(head, on: self)
        }
    }

    /// Sends the response and closes. HEAD gets the headers of the GET response.
    func answer(_ response: HTTPResponse, includeBody: Bool) {
        guard !isClosed else { return }
        isAnswering = true
        output = response.encoded(includeBody: includeBody)
        written = 0
        flush()
    }

    private func flush() {
        while written < output.count {
            let result: IOResult
            do {
                result = try output[written...].withUnsafeBytes { try Syscall.write(fd, $0) }
            } catch {
                return close()
            }
            switch result {
            case .bytes(let count): written += count
            case .wouldBlock: return
            case .closed: return close()
            }
        }
        if !output.isEmpty { close() }
    }

    /// A request whose head has not arrived in time gets 408; one being answered for too long is dropped.
    func expireIfLate(_ now: Double) {
        guard now - acceptedAt >= Self.timeLimit else { return }
        if isAnswering && !output.isEmpty { return close() }
        if !isAnswering { answer(.text(status: 408, body: "request head not received in time\n"), includeBody: true) }
        if !isClosed && now - acceptedAt >= 2 * Self.timeLimit { close() }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        proxy.loop.unregister(fd)
        Syscall.close(fd)
        proxy.statsConnections[fd] = nil
    }
}
