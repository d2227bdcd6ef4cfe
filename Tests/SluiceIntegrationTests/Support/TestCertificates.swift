import Foundation

/// Throwaway certificate authorities and certificates for the TLS tests, made with the `openssl` command
/// once per test process. Two CAs, so that a certificate can be valid yet untrusted.
struct TestCertificates: Sendable {
    let directory: String

    /// CA "a" signs Sluice's certificate `sluice-a` (for localhost and 127.0.0.1) and the client
    /// certificates; CA "b" signs `sluice-b`, the certificate a reload switches to.
    func path(_ name: String) -> String { "\(directory)/\(name)" }
    var caA: String { path("ca-a.pem") }
    var caB: String { path("ca-b.pem") }

    /// Settings that make Sluice accept TLS with `sluice-<which>`'s certificate, clients verified against CA a.
    func sluiceSettings(mode: String, which: String = "a") -> [String: String] {
        [
            "client_tls_sslmode": mode, "client_tls_cert_file": path("sluice-\(which).pem"),
            "client_tls_key_file": path("sluice-\(which).key"), "client_tls_ca_file": caA,
        ]
    }

    /// A client certificate signed by CA a, with `commonName` as its CN.
    func clientCertificate(commonName: String) throws -> (certificate: String, key: String) {
        let base = path("client-\(commonName)")
        if !FileManager.default.fileExists(atPath: "\(base).pem") {
            try Self.openssl([
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(commonName)",
                "-keyout", "\(base).key", "-out", "\(base).csr",
            ])
            try Self.openssl([
                "x509", "-req", "-in", "\(base).csr", "-CA", caA, "-CAkey", path("ca-a.key"),
                "-CAcreateserial", "-days", "1", "-out", "\(base).pem",
            ])
            // libpq refuses a key others can read.
            chmod("\(base).key", 0o600)
        }
        return ("\(base).pem", "\(base).key")
    }

    static let shared: Result<TestCertificates, any Error> = Result { try make() }

    static func current() throws -> TestCertificates { try shared.get() }

    private static func make() throws -> TestCertificates {
        let directory = try makeTemporaryDirectory("sluice-tls").path
        let certificates = TestCertificates(directory: directory)
        for ca in ["a", "b"] {
            try openssl([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Sluice test CA \(ca)",
                "-keyout", certificates.path("ca-\(ca).key"), "-out", certificates.path("ca-\(ca).pem"),
            ])
            let sluice = certificates.path("sluice-\(ca)")
            try openssl([
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", "\(sluice).key", "-out", "\(sluice).csr",
            ])
            let extensions = certificates.path("san.cnf")
            try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(
                toFile: extensions, atomically: true, encoding: .utf8)
            try openssl([
                "x509", "-req", "-in", "\(sluice).csr", "-CA", certificates.path("ca-\(ca).pem"),
                "-CAkey", certificates.path("ca-\(ca).key"), "-CAcreateserial", "-days", "1",
                "-extfile", extensions, "-out", "\(sluice).pem",
            ])
        }
        return certificates
    }

    private static func openssl(_ arguments: [String]) throws {
        let result = try run("openssl", arguments, timeout: .seconds(60))
        guard result.succeeded else {
            throw HarnessError("openssl \(arguments.joined(separator: " ")) failed: \(result)")
        }
    }

    /// The test cluster's CA (`scripts/pg-cluster` with SLUICE_PG_TLS=1), which signed PostgreSQL's certificate.
    static func clusterCA() throws -> String {
        guard let directory = ProcessInfo.processInfo.environment["SLUICE_TEST_PG_TLS_DIR"] else {
            throw HarnessError("SLUICE_TEST_PG_TLS_DIR is not set: scripts/test starts PostgreSQL with TLS")
        }
        return "\(directory)/ca.pem"
    }
}
