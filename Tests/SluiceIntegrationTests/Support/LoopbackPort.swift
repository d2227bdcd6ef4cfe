import Foundation
import Glibc
import Synchronization

/// Loopback TCP ports for the processes the tests start.
enum LoopbackPort {
    /// Ports this test process has handed out, so parallel tests never get the same one.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port on 127.0.0.1 that nothing listens on right now and that no other test got.
    ///
    /// Ports come from below Linux's ephemeral range (32768+), so the kernel will not give one to
    /// an outgoing connection between our check and the moment the process binds it.
    static func free() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 10_000..<32_000)
            let isNew = handedOut.withLock { $0.insert(port).inserted }
            if isNew && canBind(port) {
                return port
            }
        }
        throw HarnessError("found no free loopback port in 200 tries")
    }

    /// Whether something accepts TCP connections on `host:port` (a connect succeeds).
    static func isAccepting(_ port: Int, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopbackAddress(port, host: host)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // Same rule as a listening server: a connection left in TIME_WAIT does not block the port.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopbackAddress(port, host: "127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    private static func loopbackAddress(_ port: Int, host: String) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}
