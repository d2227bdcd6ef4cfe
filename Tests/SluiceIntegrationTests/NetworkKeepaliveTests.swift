import Foundation
import Testing

/// TCP keepalive on the sockets Sluice accepts and opens, seen from outside through `ss`, which shows
/// the keepalive timer of every socket that has one. (The cut-link tests in NetworkNamespaceTests show
/// the effect; these show that client sockets get the options too.)
@Suite("Network: keepalive options")
struct NetworkKeepaliveTests {
    /// `ss` lines of Sluice's established TCP sockets: (local port, peer port, whole line). Sockets the
    /// test process also holds are left out: a connection another test opened to PostgreSQL can be
    /// inherited by a Sluice started meanwhile (the harness does not close descriptors in children).
    private static func sockets(of pid: Int32) throws -> [(local: Int, peer: Int, line: String)] {
        let result = try run("ss", ["-H", "-t", "-n", "-p", "-o", "state", "established"], timeout: .seconds(20))
        guard result.succeeded else { throw HarnessError("ss failed: \(result)") }
        let port = { (field: Substring) in Int(field.split(separator: ":").last ?? "") ?? -1 }
        let own = "pid=\(getpid()),"
        let lines = result.stdout.split(separator: "\n").filter { $0.contains("pid=\(pid),") && !$0.contains(own) }
        return lines.compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4 else { return nil }
            return (port(fields[2]), port(fields[3]), String(line))
        }
    }

    @Test("client and server sockets carry a keepalive timer of tcp_keepidle seconds")
    func keepaliveOnBothSides() throws {
        let proxied = try ProxiedDatabase(settings: [
            "pool_mode": "session", "tcp_keepidle": "37", "tcp_keepintvl": "11", "tcp_keepcnt": "3",
        ])
        defer { proxied.stop() }
        let connection = try proxied.connect()
        #expect(try connection.value("SELECT 1") == "1")
        // ss shows one timer per socket: while a reply still waits for its ACK, that is the
        // retransmission timer, so look until both sockets are quiet.
        var client: (local: Int, peer: Int, line: String)?
        var server: (local: Int, peer: Int, line: String)?
        try waitUntil(timeout: .seconds(5)) {
            let sockets = try Self.sockets(of: proxied.sluice.pid)
            client = sockets.first { $0.local == proxied.sluice.port }
            server = sockets.first { $0.peer == proxied.cluster.port }
            return [client, server].allSatisfy { $0?.line.contains("keepalive") == true }
        }
        for (side, socket) in [("client", client), ("server", server)] {
            let line = socket?.line ?? "<none>"
            // The timer counts down from tcp_keepidle; the kernel's default would show about 120min.
            let match = line.firstMatch(of: /timer:\(keepalive,(\d+)sec/)
            let seconds = match.flatMap { Int($0.1) } ?? -1
            #expect((30...37).contains(seconds), "\(side) socket: \(line)")
        }
    }

    @Test("tcp_keepalive = 0 leaves keepalive off on both sides")
    func keepaliveOff() throws {
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "session", "tcp_keepalive": "0"])
        defer { proxied.stop() }
        let connection = try proxied.connect()
        #expect(try connection.value("SELECT 1") == "1")
        let sockets = try Self.sockets(of: proxied.sluice.pid)
        #expect(sockets.count >= 2, "\(sockets.map(\.line))")
        for socket in sockets {
            #expect(!socket.line.contains("keepalive"), "\(socket.line)")
        }
    }
}
