import Testing

@testable import SluiceCore

@Suite("Config: TLS keys")
struct ConfigTLSTests {
    static let files = ["/etc/sluice/cert.pem": "CERT", "/etc/sluice/key.pem": "KEY", "/etc/sluice/ca.pem": "CA"]

    @Test("PgBouncer's TLS keys load with their meanings; paths are resolved against the file's directory")
    func loads() throws {
        let config = try parseConfig(
            """
            [pgbouncer]
            listen_addr = *
            client_tls_sslmode = verify-ca
            client_tls_cert_file = cert.pem
            client_tls_key_file = /etc/sluice/key.pem
            client_tls_ca_file = ca.pem
            client_tls_protocols = tlsv1.3
            client_tls_ciphers = HIGH:!aNULL
            client_tls13_ciphers = TLS_AES_256_GCM_SHA384
            client_tls_ecdhcurve = prime256v1
            server_tls_sslmode = verify-full
            server_tls_protocols = secure
            server_tls_ciphers = fast
            """, files: Self.files)
        #expect(config.clientTLS.sslmode == .verifyCA)
        #expect(config.clientTLS.certificateFile == "/etc/sluice/cert.pem")
        #expect(config.clientTLS.caFile == "/etc/sluice/ca.pem")
        #expect(config.clientTLS.protocols == .tls13 ... .tls13)
        #expect(config.clientTLS.ciphers == "HIGH:!aNULL")
        #expect(config.clientTLS.tls13Ciphers == "TLS_AES_256_GCM_SHA384")
        #expect(config.clientTLS.groups == "prime256v1")
        #expect(config.serverTLS.sslmode == .verifyFull)
        #expect(config.serverTLS.protocols == .tls12 ... .tls13)
        #expect(config.serverTLS.ciphers == "", "a named PgBouncer level means OpenSSL's default list")
    }

    @Test("defaults: no TLS towards clients, prefer towards servers")
    func defaults() throws {
        let config = try parseConfig("[sluice]\nlisten_addr = *\n")
        #expect(config.clientTLS.sslmode == .disable)
        #expect(config.serverTLS.sslmode == .prefer)
        #expect(config.warnings.allSatisfy { !$0.message.contains("tls") })
    }

    @Test(
        "protocol lists",
        arguments: [
            ("secure", TLSVersion.tls12...TLSVersion.tls13), ("all", .tls10 ... .tls13), ("legacy", .tls10 ... .tls13),
            ("tlsv1.2", .tls12 ... .tls12), ("TLSv1.1,tlsv1.2", .tls11 ... .tls12),
            ("tlsv1 tlsv1.3", .tls10 ... .tls13),
        ])
    func protocols(text: String, range: ClosedRange<TLSVersion>) {
        #expect(TLSVersion.range(parsing: text) == range)
    }

    @Test("an unknown protocol or an empty list is refused")
    func badProtocols() {
        #expect(TLSVersion.range(parsing: "sslv3") == nil)
        #expect(TLSVersion.range(parsing: "") == nil)
        #expect(TLSVersion.range(parsing: "tlsv1.4") == nil)
    }

    @Test(
        "what a mode needs is named with the line that asks for it",
        arguments: [
            ("client_tls_sslmode = require", 3, "needs client_tls_cert_file and client_tls_key_file"),
            (
                "client_tls_sslmode = verify-full\nclient_tls_cert_file = cert.pem\nclient_tls_key_file = key.pem", 3,
                "needs client_tls_ca_file"
            ),
            ("server_tls_cert_file = cert.pem", 3, "server_tls_cert_file and server_tls_key_file go together"),
            (
                "client_tls_sslmode = prefer\nclient_tls_cert_file = missing.pem\nclient_tls_key_file = key.pem", 4,
                "cannot read client_tls_cert_file /etc/sluice/missing.pem"
            ),
            ("server_tls_sslmode = verify-ca\nserver_tls_ca_file = nowhere.pem", 4, "cannot read server_tls_ca_file"),
        ])
    func incomplete(lines: String, line: Int, fragment: String) {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr = *\n\(lines)\n", files: Self.files) }
        #expect(error?.file == "/etc/sluice/sluice.ini")
        #expect(error?.line == line)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("a file that is never used is not read: server TLS off ignores a missing CA")
    func unusedFiles() throws {
        let config = try parseConfig(
            "[sluice]\nlisten_addr = *\nserver_tls_sslmode = disable\nserver_tls_ca_file = nowhere.pem\n")
        #expect(config.serverTLS.sslmode == .disable)
    }

    @Test("DATABASE_URL's sslmode becomes server_tls_sslmode")
    func urlSSLMode() throws {
        let config = try parseConfig(
            "", environment: ["DATABASE_URL": "postgres://app:secret@127.0.0.1:5432/app?sslmode=require"])
        #expect(config.serverTLS.sslmode == .require)
    }

    @Test("sslmode order: what each mode asks of the peer")
    func modes() {
        #expect(!SSLMode.allow.requestsTLS)
        #expect(SSLMode.prefer.requestsTLS && !SSLMode.prefer.requiresTLS)
        #expect(SSLMode.require.requiresTLS && !SSLMode.require.verifiesCertificate)
        #expect(SSLMode.verifyCA.verifiesCertificate && SSLMode.verifyFull.verifiesCertificate)
    }
}
