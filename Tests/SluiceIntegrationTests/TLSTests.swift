import Foundation
import Glibc
import Testing

/// TLS on both sides: libpq against Sluice in every sslmode pair, Sluice against the test cluster (which
/// scripts/test starts with TLS on), PostgreSQL 17's direct negotiation, certificate reloads, and peers
/// that send bytes before their handshake.
@Suite("TLS")
struct TLSTests {
    /// What libpq needs for each of its modes against Sluice's certificate from CA a.
    static func libpqSettings(_ mode: String, certificates: TestCertificates) -> [String: String] {
        var settings = ["sslmode": mode]
        if mode.hasPrefix("verify") { settings["sslrootcert"] = certificates.caA }
        return settings
    }

    @Test(
        "every client sslmode against every Sluice client_tls_sslmode connects exactly when it should",
        arguments: ["disable", "allow", "prefer", "require", "verify-ca"])
    func clientModes(sluiceMode: String) throws {
        let certificates = try TestCertificates.current()
        let proxied = try ProxiedDatabase(settings: certificates.sluiceSettings(mode: sluiceMode))
        defer { proxied.stop() }
        let client = try certificates.clientCertificate(commonName: proxied.role.name)
        for libpqMode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            for withCertificate in [false, true] {
                var extra = Self.libpqSettings(libpqMode, certificates: certificates)
                if withCertificate {
                    extra["sslcert"] = client.certificate
                    extra["sslkey"] = client.key
                }
                let tls = sluiceMode != "disable" && libpqMode != "disable"
                let expected: Bool =
                    switch sluiceMode {
                    case "disable": libpqMode == "disable" || libpqMode == "prefer"
                    case "require": libpqMode != "disable"
                    case "verify-ca": libpqMode != "disable" && withCertificate
                    default: true
                    }
                let what = "Sluice \(sluiceMode), libpq \(libpqMode)\(withCertificate ? " with a certificate" : "")"
                do {
                    let connection = try PQConn.connect(
                        host: "localhost", port: proxied.sluice.port, user: proxied.role.name,
                        password: proxied.role.password, dbname: proxied.database,
                        extra: extra.merging(["hostaddr": "127.0.0.1"]) { old, _ in old })
                    defer { connection.close() }
                    #expect(expected, "\(what) connected but should not have")
                    #expect(try connection.value("SELECT 7") == "7", "\(what)")
                    #expect((connection.tlsProtocol != nil) == tls, "\(what): TLS \(connection.tlsProtocol ?? "off")")
                } catch let error as PQError {
                    #expect(!expected, "\(what) failed: \(error)\n\(proxied.sluice.logTail())")
                    if libpqMode == "disable" && sluiceMode == "require" {
                        #expect(error.sqlState == "28000" && error.message.contains("SSL required"), "\(error)")
                    }
                }
            }
        }
    }

    @Test("libpq's verify-full refuses a certificate for another name, verify-ca one from another CA")
    func clientVerificationFailures() throws {
        let certificates = try TestCertificates.current()
        let proxied = try ProxiedDatabase(settings: certificates.sluiceSettings(mode: "require"))
        defer { proxied.stop() }
        func attempt(host: String, _ extra: [String: String]) -> PQError? {
            do {
                _ = try PQConn.connect(
                    host: host, port: proxied.sluice.port, user: proxied.role.name, password: proxied.role.password,
                    dbname: proxied.database, extra: extra.merging(["hostaddr": "127.0.0.1"]) { old, _ in old })
                return nil
            } catch {
                return error as? PQError
            }
        }
        let wrongName = attempt(
            host: "not-sluice.invalid", ["sslmode": "verify-full", "sslrootcert": certificates.caA])
        #expect(wrongName?.message.contains("does not match host name") == true, "\(String(describing: wrongName))")
        let wrongCA = attempt(host: "localhost", ["sslmode": "verify-ca", "sslrootcert": certificates.caB])
        #expect(wrongCA?.message.contains("certificate verify failed") == true, "\(String(describing: wrongCA))")
        #expect(attempt(host: "localhost", ["sslmode": "verify-full", "sslrootcert": certificates.caA]) == nil)
        #expect(proxied.sluice.isRunning)
    }

    @Test("client_tls_protocols: TLS 1.2 only, then 1.3 only, each refusing a client that insists on the other")
    func protocolVersions() throws {
        let certificates = try TestCertificates.current()
        for (allowed, refused) in [("tlsv1.2", "TLSv1.3"), ("tlsv1.3", "TLSv1.2")] {
            var settings = certificates.sluiceSettings(mode: "require")
            settings["client_tls_protocols"] = allowed
            let proxied = try ProxiedDatabase(settings: settings)
            defer { proxied.stop() }
            let connection = try proxied.connect(extra: ["sslmode": "require"])
            #expect(connection.tlsProtocol == (allowed == "tlsv1.2" ? "TLSv1.2" : "TLSv1.3"))
            #expect(try connection.value("SELECT 1") == "1")
            connection.close()
            #expect(throws: PQError.self) {
                try proxied.connect(
                    extra: [
                        "sslmode": "require", "ssl_min_protocol_version": refused, "ssl_max_protocol_version": refused,
                    ])
            }
        }
    }

    @Test(
        "each server_tls_sslmode against a PostgreSQL with TLS on: encrypted exactly when asked",
        arguments: [
            ("disable", "127.0.0.1", "f"), ("allow", "127.0.0.1", "f"), ("prefer", "127.0.0.1", "t"),
            ("require", "127.0.0.1", "t"), ("verify-ca", "127.0.0.1", "t"), ("verify-full", "127.0.0.1", "t"),
            ("verify-full", "localhost", "t"),
        ])
    func serverModes(mode: String, host: String, encrypted: String) throws {
        let proxied = try ProxiedDatabase(
            settings: ["server_tls_sslmode": mode, "server_tls_ca_file": try TestCertificates.clusterCA()],
            databaseExtra: ["host": host])
        defer { proxied.stop() }
        let connection = try proxied.connect()
        #expect(try connection.value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == encrypted)
        // A result far larger than one TLS record, both ways.
        #expect(try connection.value("SELECT length(repeat('x', 5000000) || $$y$$)") == "5000001")
        #expect(
            try connection.value(
                "SELECT sum(length(t)) FROM (SELECT repeat('z', 1000) AS t FROM generate_series(1, 5000)) s")
                == "5000000")
    }

    @Test("Sluice refuses a PostgreSQL certificate from a CA it was not told to trust")
    func serverVerificationFailure() throws {
        let certificates = try TestCertificates.current()
        let proxied = try ProxiedDatabase(settings: [
            "server_tls_sslmode": "verify-ca", "server_tls_ca_file": certificates.caA,
        ])
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) { try proxied.connect() }
        #expect(error?.sqlState == "08001")
        #expect(error?.message.contains("certificate verification failed") == true, "\(String(describing: error))")
    }

    @Test(
        "a server that answers SSLRequest wrongly is refused: 'N' under require, bytes smuggled behind 'S'",
        arguments: [
            ("require", "4e", "does not support TLS"),
            ("prefer", "53" + "5200000008000000" + "00", "unencrypted data after its answer"),
            ("prefer", "45", "answered SSLRequest with an error"),
        ])
    func misbehavingServer(mode: String, answer: String, fragment: String) throws {
        let port = try LoopbackPort.free()
        let fake = try ChildProcess(
            executable: try resolveExecutable("python3"),
            arguments: [
                DriverTests.driversDirectory.appendingPathComponent("tls_probe.py").path, "fake-server",
                String(port), answer,
            ],
            environment: childEnvironment([:]), stdin: .null, stdout: .null, stderr: .null)
        defer {
            fake.signal(SIGKILL)
            _ = fake.wait(timeout: .seconds(5))
        }
        #expect(waitUntil(timeout: .seconds(10)) { LoopbackPort.isAccepting(port) })
        let proxied = try ProxiedDatabase(
            settings: ["server_tls_sslmode": mode], databaseExtra: ["port": String(port)])
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) { try proxied.connect() }
        #expect(error?.sqlState == "08001")
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("bytes sent behind an SSLRequest, before any handshake, are refused and never read as a startup")
    func clientInjection() throws {
        let certificates = try TestCertificates.current()
        let proxied = try ProxiedDatabase(settings: certificates.sluiceSettings(mode: "prefer"))
        defer { proxied.stop() }
        let result = try run(
            "python3",
            [
                DriverTests.driversDirectory.appendingPathComponent("tls_probe.py").path, "inject",
                String(proxied.sluice.port),
            ])
        #expect(result.stdout.hasPrefix("FATAL 08P01 received unencrypted data after encryption request"), "\(result)")
        #expect(!proxied.sluice.stderrText.contains("msg=login "))
    }

    @Test("PostgreSQL 17's direct TLS negotiation: libpq 18 with sslnegotiation=direct; without ALPN refused")
    func directNegotiation() throws {
        let certificates = try TestCertificates.current()
        let proxied = try ProxiedDatabase(settings: certificates.sluiceSettings(mode: "require"))
        defer { proxied.stop() }
        let probe = DriverTests.driversDirectory.appendingPathComponent("tls_probe.py").path
        let direct = try run(
            try DriverTests.python(), [probe, "direct", String(proxied.sluice.port), certificates.caA])
        // The probe's user does not exist: getting as far as authentication means TLS and ALPN worked.
        #expect(direct.stdout.contains("probe"), "\(direct)\n\(proxied.sluice.logTail())")
        #expect(proxied.sluice.stderrText.contains("user=probe"), "\(proxied.sluice.logTail())")
        let bare = try run("python3", [probe, "direct-without-alpn", String(proxied.sluice.port)])
        #expect(bare.stdout.hasPrefix("FATAL 08P01 direct SSL connection was established without ALPN"), "\(bare)")
    }

    @Test("a reload takes new certificate files; established connections stay up")
    func reloadCertificates() throws {
        let certificates = try TestCertificates.current()
        let live = try makeTemporaryDirectory("sluice-tls-live").path
        let copy = { (which: String) throws in
            for suffix in ["pem", "key"] {
                _ = unlink("\(live)/sluice.\(suffix)")
                try FileManager.default.copyItem(
                    atPath: certificates.path("sluice-\(which).\(suffix)"), toPath: "\(live)/sluice.\(suffix)")
            }
        }
        try copy("a")
        let proxied = try ProxiedDatabase(
            settings: [
                "client_tls_sslmode": "require", "client_tls_cert_file": "\(live)/sluice.pem",
                "client_tls_key_file": "\(live)/sluice.key",
            ])
        defer { proxied.stop() }
        let verifyWith = { (ca: String) in ["sslmode": "verify-ca", "sslrootcert": ca] }
        let before = try proxied.connect(extra: verifyWith(certificates.caA))
        try copy("b")
        proxied.sluice.signal(SIGHUP)
        #expect(
            waitUntil(timeout: .seconds(10)) {
                (try? proxied.connect(extra: verifyWith(certificates.caB)))?.close() != nil
            }, "\(proxied.sluice.logTail())")
        #expect(throws: PQError.self) { try proxied.connect(extra: verifyWith(certificates.caA)) }
        #expect(try before.value("SELECT 'still here'") == "still here")
    }

    @Test("SHOW CLIENTS and SHOW SERVERS name each connection's TLS version and cipher")
    func consoleShowsTLS() throws {
        let certificates = try TestCertificates.current()
        var settings = certificates.sluiceSettings(mode: "prefer")
        settings["admin_users"] = "@ROLE@"
        settings["server_tls_sslmode"] = "require"
        let proxied = try ProxiedDatabase(settings: settings)
        defer { proxied.stop() }
        let plain = try proxied.connect(extra: ["sslmode": "disable"])
        _ = try plain.exec("BEGIN")
        let console = try AdminConsoleTests.console(proxied)
        let clients = try console.exec("SHOW CLIENTS")
        let servers = try console.exec("SHOW SERVERS")
        // Column 17 is `tls`; the console's own client came over TLS (libpq prefers it), the other did not.
        #expect(clients.contains { $0[17]?.hasPrefix("TLSv1.3/TLS_") == true }, "\(clients)")
        #expect(clients.contains { $0[17] == "" }, "\(clients)")
        #expect(servers.allSatisfy { $0[17]?.hasPrefix("TLSv1.3/") == true }, "\(servers)")
        _ = try plain.exec("COMMIT")
    }

    @Test("a key that does not match its certificate stops startup with a message naming the files")
    func badKeyStopsStartup() throws {
        let certificates = try TestCertificates.current()
        var settings = certificates.sluiceSettings(mode: "prefer")
        settings["client_tls_key_file"] = certificates.path("sluice-b.key")
        let error = #expect(throws: (any Error).self) { try ProxiedDatabase(settings: settings) }
        let text = "\(String(describing: error))"
        #expect(text.contains("sluice-b.key with certificate") && text.contains("key values mismatch"), "\(text)")
    }

    @Test("sluice --check loads the TLS files as a start would; a key behind a passphrase fails, never prompts")
    func checkJudgesTLSFiles() throws {
        let certificates = try TestCertificates.current()
        let directory = try makeTemporaryDirectory("sluice-tls-check").path
        let locked = "\(directory)/locked.key"
        let made = try run(
            "openssl",
            ["pkey", "-in", certificates.path("sluice-a.key"), "-aes256", "-passout", "pass:secret", "-out", locked])
        #expect(made.succeeded, "\(made)")
        func check(_ settings: [String: String]) throws -> RunResult {
            let file = "\(directory)/sluice.ini"
            try TestConfig.ini(port: 6432, databases: ["db": "host=127.0.0.1"], settings: settings)
                .write(toFile: file, atomically: true, encoding: .utf8)
            try "".write(toFile: "\(directory)/userlist.txt", atomically: true, encoding: .utf8)
            // A terminal-less stdin and a deadline: a prompt would show as a timeout.
            return try run(SluiceProcess.binary(), ["--check", file], timeout: .seconds(20))
        }
        var settings = certificates.sluiceSettings(mode: "require")
        #expect(try check(settings).succeeded)
        settings["client_tls_key_file"] = locked
        let refused = try check(settings)
        #expect(!refused.succeeded && !refused.timedOut, "\(refused)")
        #expect(refused.stderr.contains("locked.key"), "\(refused)")
        settings = certificates.sluiceSettings(mode: "require")
        settings["client_tls_ciphers"] = "NOT-A-CIPHER"
        #expect(try !check(settings).succeeded)
    }

    @Test("pgbench over TLS on both sides: 20 clients on 4 servers, no failed transaction")
    func pgbenchOverTLS() throws {
        let certificates = try TestCertificates.current()
        var settings = certificates.sluiceSettings(mode: "require")
        settings["server_tls_sslmode"] = "verify-full"
        settings["server_tls_ca_file"] = try TestCertificates.clusterCA()
        let proxied = try ProxiedDatabase(settings: settings, poolSize: 4)
        defer { proxied.stop() }
        try Pgbench.initialize(
            proxied.cluster, user: proxied.role.name, password: proxied.role.password, dbname: proxied.database)
        let result = try run(
            "pgbench",
            [
                "-c", "20", "-j", "2", "-t", "50", "-h", "127.0.0.1", "-p", String(proxied.sluice.port), "-U",
                proxied.role.name, proxied.database,
            ],
            environment: ["PGPASSWORD": proxied.role.password, "PGSSLMODE": "require"], timeout: .seconds(120))
        Pgbench.expectClean(result, through: proxied.sluice, minimumProcessed: 999)
    }
}
