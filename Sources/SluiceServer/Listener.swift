import SluiceCore
import SluiceIO

/// A listening socket: accepts every pending connection on each wakeup.
final class Listener: EventHandler {
    let fd: Int32
    let address: String
    unowned let proxy: Proxy

    init(fd: Int32, address: String, proxy: Proxy) {
        self.fd = fd
        self.address = address
        self.proxy = proxy
    }

    func handleEvent(_ events: UInt32) {
        // Bounded so a connection storm cannot starve established clients of the loop.
        for _ in 0..<256 {
            do {
                guard let (clientFD, peer) = try Socket.accept(fd) else { return }
                proxy.accepted(fd: clientFD, peer: peer)
            } catch {
                proxy.logger.warning("accept failed", [("listen", address), ("error", "\(error)")])
                return
            }
        }
    }

    func close() {
        proxy.loop.unregister(fd)
        Syscall.close(fd)
    }
}
