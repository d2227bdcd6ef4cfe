import SluiceCore
import SluiceIO

/// A listening socket, TCP or Unix-domain: accepts every pending connection on each wakeup.
final class Listener: EventHandler {
    let fd: Int32
    let address: SocketAddress
    /// The socket file of a Unix listener, removed when the listener closes.
    let unixPath: String?
    unowned let proxy: Proxy
    private var closed = false

    init(fd: Int32, address: SocketAddress, unixPath: String?, proxy: Proxy) {
        self.fd = fd
        self.address = address
        self.unixPath = unixPath
        self.proxy = proxy
    }

    func handleEvent(_ events: UInt32) {
        // Bounded so a connection storm cannot starve established clients of the loop.
        for _ in 0..<256 {
            do {
                guard let (clientFD, peer) = try Socket.accept(fd) else { return }
                if !address.isUnix {
                    // Read per accept so a reload reaches new clients, as PgBouncer's do.
                    Socket.setKeepalive(clientFD, proxy.config.tcpKeepaliveSettings)
                }
                proxy.accepted(fd: clientFD, peer: peer)
            } catch {
                proxy.logger.warning("accept failed", [("listen", address.description), ("error", "\(error)")])
                return
            }
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        proxy.loop.unregister(fd)
        Syscall.close(fd)
        if let unixPath { Socket.removeFile(unixPath) }
    }
}
