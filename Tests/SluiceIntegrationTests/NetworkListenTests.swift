import Foundation
import Glibc
import Testing

/// Where Sluice accepts clients: `listen_addr` lists with IPv6, and the Unix socket in
/// `unix_socket_dir` with its mode.
@Suite("Network: listening")
struct NetworkListenTests {
    @Test("psql -h <unix_socket_dir> reaches Sluice over its Unix socket, whose file has unix_socket_mode")
    func unixSocketListener() throws {
        let directory = try makeTemporaryDirectory("sluice-sock")
        defer { try? FileManager.default.removeItem(at: directory) }
        let proxied = try ProxiedDatabase(settings: ["unix_socket_dir": directory.path, "unix_socket_mode": "0700"])
        defer { proxied.stop() }
        let socketPath = directory.appendingPathComponent(".s.PGSQL.\(proxied.sluice.port)").path
        let result = try run(
            "psql",
            ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", directory.path, "-p", String(proxied.sluice.port)]
                + ["-U", proxied.role.name, "-d", proxied.database, "-c", "SELECT 'over ' || 'unix'"],
            environment: ["PGPASSWORD": proxied.role.password], timeout: .seconds(30))
        #expect(result.succeeded, "\(result)\n--- sluice log ---\n\(proxied.sluice.logTail())")
        #expect(result.stdout == "over unix\n")
        var info = stat()
        #expect(stat(socketPath, &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o700, "mode \(String(info.st_mode & 0o7777, radix: 8))")
        proxied.stop()
        #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket file outlived Sluice")
    }

    @Test("listen_addr = 127.0.0.1,::1 accepts clients on both addresses")
    func ipv4AndIPv6() throws {
        let proxied = try ProxiedDatabase(settings: ["listen_addr": "127.0.0.1,::1", "unix_socket_dir": ""])
        defer { proxied.stop() }
        for host in ["127.0.0.1", "::1"] {
            let connection = try PQConn.connect(
                host: host, port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
                dbname: proxied.database)
            #expect(try connection.value("SELECT 1") == "1", "through \(host)")
        }
    }

    @Test("listen_backlog is the listening socket's backlog")
    func listenBacklog() throws {
        let proxied = try ProxiedDatabase(settings: ["listen_backlog": "77"])
        defer { proxied.stop() }
        // For a listening socket, ss shows the backlog in its Send-Q column.
        let result = try run(
            "ss", ["-ltnH", "sport = :\(proxied.sluice.port)"], environment: [:], timeout: .seconds(10))
        #expect(result.succeeded, "\(result)")
        let columns = result.stdout.split(whereSeparator: \.isWhitespace)
        #expect(columns.count > 2 && columns[2] == "77", "\(result.stdout)")
    }

    @Test("a unix_socket_dir that does not exist stops startup, as in PgBouncer")
    func unusableSocketDirectory() throws {
        let cluster = try TestCluster.current()
        let file = try makeTemporaryDirectory("sluice-check").appendingPathComponent("sluice.ini")
        defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
        let port = try LoopbackPort.free()
        let text = TestConfig.ini(
            port: port, databases: ["db": TestConfig.database(cluster, dbname: "postgres")],
            settings: ["unix_socket_dir": "/nonexistent-\(uniqueName("dir"))", "auth_file": ""])
        try text.write(to: file, atomically: true, encoding: .utf8)
        let result = try run(try SluiceProcess.binary(), [file.path], timeout: .seconds(20))
        #expect(!result.timedOut && result.status != 0, "\(result)")
        #expect(result.stderr.contains("nonexistent"), "\(result)")
    }
}
