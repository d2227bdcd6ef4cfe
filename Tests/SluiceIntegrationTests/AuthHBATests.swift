import Foundation
import Glibc
import Testing

/// `auth_type = hba` and `cert` against a real Sluice, the failed-login throttle, and secrets far longer
/// than a password (cloud IAM tokens run to about a kilobyte).
@Suite("Authentication: HBA rules, certificates, throttling, long secrets")
struct AuthHBATests {
    /// Sluice in front of `database` with client TLS on (prefer), `auth_type = hba` and `rules` as its
    /// auth_hba_file; the userlist holds `role`'s password.
    static func sluice(
        rules: String, cluster: TestCluster, database: String, role: (name: String, password: String),
        extra: [String: String] = [:]
    ) throws -> SluiceProcess {
        let certificates = try TestCertificates.current()
        let file = try makeTemporaryDirectory("sluice-hba").appendingPathComponent("hba.conf")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        var settings = certificates.sluiceSettings(mode: "prefer")
        settings["auth_type"] = "hba"
        settings["auth_hba_file"] = file.path
        settings.merge(extra) { _, new in new }
        return try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port, databases: [database: TestConfig.database(cluster, dbname: database)],
                    settings: settings)
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
    }

    @Test("the first matching rule decides: reject, a password method, a certificate, no rule at all")
    func rules() throws {
        let certificates = try TestCertificates.current()
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "hba")
        let database = try cluster.makeDatabase(owner: role.name)
        let rules = """
            hostnossl \(database) \(role.name) 127.0.0.1/32 reject
            hostssl   \(database) \(role.name) 127.0.0.1/32 cert
            hostssl   all         all     127.0.0.1/32 scram-sha-256
            """
        let sluice = try Self.sluice(rules: rules, cluster: cluster, database: database, role: role)
        defer { sluice.stop() }
        func connect(_ extra: [String: String]) throws -> PQConn {
            try PQConn.connect(
                port: sluice.port, user: role.name, password: role.password, dbname: database, extra: extra)
        }
        let plain = #expect(throws: PQError.self) { try connect(["sslmode": "disable"]) }
        #expect(plain?.sqlState == "28000" && plain?.message.contains("pg_hba.conf rejects connection") == true)
        let withoutCertificate = #expect(throws: PQError.self) { try connect(["sslmode": "require"]) }
        #expect(withoutCertificate?.message.contains("certificate authentication failed") == true)
        let wrongName = try certificates.clientCertificate(commonName: "somebody_else")
        #expect(throws: PQError.self) {
            try connect(["sslmode": "require", "sslcert": wrongName.certificate, "sslkey": wrongName.key])
        }
        let right = try certificates.clientCertificate(commonName: role.name)
        let viaCertificate = try connect(["sslmode": "require", "sslcert": right.certificate, "sslkey": right.key])
        #expect(try viaCertificate.value("SELECT current_user") == role.name)
        // Over TLS the console matches the last line, a password method: a wrong password is 28P01 there too.
        let wrongPassword = #expect(throws: PQError.self) {
            try PQConn.connect(
                port: sluice.port, user: role.name, password: "wrong", dbname: "pgbouncer",
                extra: ["sslmode": "require"])
        }
        #expect(wrongPassword?.sqlState == "28P01", "\(String(describing: wrongPassword))")
        // The console is a database like any other: no rule for it over plain TCP.
        let console = #expect(throws: PQError.self) {
            try PQConn.connect(
                port: sluice.port, user: role.name, password: role.password, dbname: "pgbouncer",
                extra: ["sslmode": "disable"])
        }
        #expect(
            console?.message.contains("no pg_hba.conf entry for host \"127.0.0.1\"") == true,
            "\(String(describing: console))")
    }

    @Test("auth_type = cert: the certificate's common name is the user; no password is asked")
    func certAuthType() throws {
        let certificates = try TestCertificates.current()
        var settings = certificates.sluiceSettings(mode: "verify-full")
        settings["auth_type"] = "cert"
        let proxied = try ProxiedDatabase(settings: settings)
        defer { proxied.stop() }
        let mine = try certificates.clientCertificate(commonName: proxied.role.name)
        let connection = try proxied.connect(
            password: "not asked", extra: ["sslmode": "require", "sslcert": mine.certificate, "sslkey": mine.key])
        #expect(try connection.value("SELECT current_user") == proxied.role.name)
        let other = try certificates.clientCertificate(commonName: "someone_else")
        let refused = #expect(throws: PQError.self) {
            try proxied.connect(extra: ["sslmode": "require", "sslcert": other.certificate, "sslkey": other.key])
        }
        #expect(refused?.sqlState == "28000", "\(String(describing: refused))")
    }

    @Test("peer on the Unix socket: the OS user Sluice's peer runs as is the user, for the console too")
    func peer() throws {
        let me = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        let directory = try makeTemporaryDirectory("sluice-sock").path
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "peer")
        let database = try cluster.makeDatabase(owner: role.name)
        let sluice = try Self.sluice(
            rules: "local pgbouncer \(me) peer\nlocal all all reject\n", cluster: cluster, database: database,
            role: role, extra: ["unix_socket_dir": directory, "admin_users": me])
        defer { sluice.stop() }
        let console = try PQConn.connect(host: directory, port: sluice.port, user: me, dbname: "pgbouncer")
        #expect(try console.exec("SHOW VERSION").first?.first??.contains("Sluice") == true)
        let other = #expect(throws: PQError.self) {
            try PQConn.connect(host: directory, port: sluice.port, user: "not_\(me)", dbname: "pgbouncer")
        }
        #expect(other?.sqlState == "28000", "\(String(describing: other))")
    }

    @Test("failed logins are throttled per address and user; the right password waits out the window")
    func throttle() throws {
        let proxied = try ProxiedDatabase(
            settings: [
                "login_failure_limit": "3", "login_failure_window": "2", "login_failure_exempt_loopback": "0",
            ])
        defer { proxied.stop() }
        for _ in 0..<3 {
            let wrong = #expect(throws: PQError.self) { try proxied.connect(password: "wrong") }
            #expect(wrong?.sqlState == "28P01")
        }
        let blocked = #expect(throws: PQError.self) { try proxied.connect() }
        #expect(blocked?.sqlState == "28000" && blocked?.message.contains("too many failed logins") == true)
        sleep(for: .milliseconds(2200))
        #expect(try proxied.connect().value("SELECT 1") == "1")
        #expect(!proxied.sluice.stderrText.contains(proxied.role.password))
    }

    @Test("guesses sent side by side on many connections count as one series: the throttle holds")
    func throttleAcrossParallelLogins() throws {
        let proxied = try ProxiedDatabase(
            settings: [
                "login_failure_limit": "3", "login_failure_window": "30", "login_failure_exempt_loopback": "0",
                "auth_type": "plain",
            ])
        defer { proxied.stop() }
        // Ten logins brought to the password request at once, then ten wrong passwords.
        var clients: [RawClient] = []
        for _ in 0..<10 {
            let raw = try RawClient(port: proxied.sluice.port)
            try raw.send { $0.startup([("user", proxied.role.name), ("database", proxied.database)]) }
            _ = try raw.expect(types: "R")
            clients.append(raw)
        }
        var checked = 0
        for raw in clients {
            try raw.send { $0.password("wrong") }
            let answer = try raw.read()
            if answer.fields["C"] == "28P01" { checked += 1 }
            raw.close()
        }
        #expect(checked == 3, "only login_failure_limit guesses are checked; the rest are refused unchecked")
    }

    @Test("loopback clients are exempt by default: thirty failures, then a login")
    func loopbackExempt() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        for _ in 0..<30 { _ = try? proxied.connect(password: "wrong") }
        #expect(try proxied.connect().value("SELECT 1") == "1")
    }

    @Test("a 1 KB password works from client to Sluice (SCRAM, md5, cleartext) and from Sluice to PostgreSQL")
    func longSecrets() throws {
        let cluster = try TestCluster.current()
        let password = String(repeating: "tok3n-", count: 180)
        let role = try cluster.makeRole(prefix: "long", password: password)
        let database = try cluster.makeDatabase(owner: role.name)
        for authType in ["scram-sha-256", "md5", "plain"] {
            let sluice = try SluiceProcess(
                config: { port in
                    TestConfig.ini(
                        port: port, databases: [database: TestConfig.database(cluster, dbname: database)],
                        settings: ["auth_type": authType])
                },
                userlist: TestConfig.userlist([(role.name, password)]))
            defer { sluice.stop() }
            let connection = try PQConn.connect(
                port: sluice.port, user: role.name, password: password, dbname: database)
            #expect(try connection.value("SELECT current_user") == role.name, "\(authType)")
            #expect(throws: PQError.self) {
                try PQConn.connect(port: sluice.port, user: role.name, password: password + "x", dbname: database)
            }
        }
    }
}
