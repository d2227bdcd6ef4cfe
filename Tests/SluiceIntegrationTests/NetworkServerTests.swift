import Foundation
import Testing

/// How Sluice reaches servers: Unix sockets (`host=/dir`), host lists with `load_balance_hosts`, and
/// host names resolved off the event loop.
@Suite("Network: reaching servers")
struct NetworkServerTests {
    /// The directory of the test cluster's Unix socket.
    static func socketDirectory(_ cluster: TestCluster) throws -> String {
        let directories = try cluster.superuserSQL("SHOW unix_socket_directories")
        return String(directories.split(separator: ",").first ?? "").trimmingCharacters(in: .whitespaces)
    }

    /// `inet_server_addr()` of each server Sluice holds: empty for a Unix-socket connection.
    private static func serverAddresses(_ proxied: ProxiedDatabase, clients: Int) throws -> [String] {
        let connections = try (0..<clients).map { _ in try proxied.connect() }
        return try connections.map { try $0.value("SELECT coalesce(host(inet_server_addr()), 'unix')") ?? "" }
    }

    @Test("host=/dir logs in over PostgreSQL's Unix socket in that directory")
    func unixSocketServer() throws {
        let cluster = try TestCluster.current()
        let directory = try Self.socketDirectory(cluster)
        let proxied = try ProxiedDatabase(settings: ["pool_mode": "session"], databaseExtra: ["host": directory])
        defer { proxied.stop() }
        #expect(try Self.serverAddresses(proxied, clients: 1) == ["unix"])
    }

    @Test("load_balance_hosts = round-robin spreads new servers over the host list")
    func roundRobin() throws {
        let cluster = try TestCluster.current()
        let directory = try Self.socketDirectory(cluster)
        let proxied = try ProxiedDatabase(
            settings: ["pool_mode": "session"],
            databaseExtra: ["host": "127.0.0.1,\(directory)", "load_balance_hosts": "round-robin"])
        defer { proxied.stop() }
        #expect(try Self.serverAddresses(proxied, clients: 4).sorted() == ["127.0.0.1", "127.0.0.1", "unix", "unix"])
    }

    @Test("load_balance_hosts = disable uses the first host that works, in list order")
    func disableTriesInOrder() throws {
        let cluster = try TestCluster.current()
        let directory = try Self.socketDirectory(cluster)
        let missing = "/nonexistent-\(uniqueName("dir"))"
        let proxied = try ProxiedDatabase(
            settings: ["pool_mode": "session"],
            databaseExtra: ["host": "\(missing),\(directory),127.0.0.1", "load_balance_hosts": "disable"])
        defer { proxied.stop() }
        #expect(try Self.serverAddresses(proxied, clients: 3) == ["unix", "unix", "unix"])
    }

    @Test("host=localhost is resolved and reached")
    func localhostName() throws {
        let proxied = try ProxiedDatabase(databaseExtra: ["host": "localhost"])
        defer { proxied.stop() }
        #expect(try proxied.connect().value("SELECT 'resolved'") == "resolved")
    }

    @Test("a host name that does not resolve fails the client with 08001, promptly")
    func unresolvableName() throws {
        let name = "\(uniqueName("nohost")).invalid"
        let proxied = try ProxiedDatabase(settings: ["dns_nxdomain_ttl": "30"], databaseExtra: ["host": name])
        defer { proxied.stop() }
        let clock = ContinuousClock()
        let started = clock.now
        let error = #expect(throws: PQError.self) { try proxied.connect(timeout: .seconds(20)) }
        #expect(clock.now - started < .seconds(15))
        #expect(error?.sqlState == "08001", "\(String(describing: error))")
        #expect(error?.message.contains("could not resolve \(name)") == true, "\(String(describing: error))")
        let again = #expect(throws: PQError.self) { try proxied.connect(timeout: .seconds(20)) }
        #expect(again?.sqlState == "08001")
    }
}
