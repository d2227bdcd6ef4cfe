import Testing

@testable import SluiceCore

@Suite("auth_hba_file rules")
struct HBATests {
    static let file = """
        # TYPE   DATABASE        USER            ADDRESS              METHOD
        local    all             postgres                             peer
        local    pgbouncer       all                                  scram-sha-256
        hostssl  all             "cert user"     0.0.0.0/0            cert
        hostnossl secret         all             all                  reject
        host     sameuser        all             10.1.0.0/16          md5
        host     app,"All"       @admins         192.168.1.0 255.255.255.0 trust
        host     all             all             ::1/128              password
        host     all             all             ::ffff:10.9.0.0/112  trust
        host     all             all             127.0.0.1/32 \\
                                                                      scram-sha-256
        """

    static let rules: HBAFile = {
        let files = ["/etc/sluice/admins": "alice, bob # the on-call\n@more\n", "/etc/sluice/more": "carol"]
        return try! HBAFile.parse(file, file: "/etc/sluice/hba.conf") { path in
            guard let text = files[path] else { throw ConfigError(file: path, line: nil, message: "no such file") }
            return text
        }
    }()

    struct Case: CustomTestStringConvertible, Sendable {
        var unix = false
        var tls = false
        var address = "127.0.0.1"
        var database: String
        var user: String
        /// The line that decides, nil for no match.
        var line: Int?
        var method: HBAMethod?
        var testDescription: String {
            "\(unix ? "local" : address)\(tls ? " tls" : "") \(user)@\(database)"
        }
    }

    @Test(
        "the first matching line decides",
        arguments: [
            Case(unix: true, database: "app", user: "postgres", line: 2, method: .peer),
            Case(unix: true, database: "pgbouncer", user: "alice", line: 3, method: .scramSHA256),
            Case(unix: true, database: "app", user: "alice", line: nil, method: nil),
            Case(tls: true, database: "secret", user: "cert user", line: 4, method: .cert),
            Case(tls: false, database: "secret", user: "cert user", line: 5, method: .reject),
            Case(tls: true, database: "secret", user: "app", line: 10, method: .scramSHA256),
            Case(address: "10.1.200.3", database: "dave", user: "dave", line: 6, method: .md5),
            Case(address: "10.1.200.3", database: "app", user: "dave", line: nil, method: nil),
            Case(address: "10.2.0.1", database: "dave", user: "dave", line: nil, method: nil),
            Case(address: "192.168.1.77", database: "app", user: "bob", line: 7, method: .trust),
            Case(address: "192.168.1.77", database: "All", user: "carol", line: 7, method: .trust),
            Case(address: "192.168.1.77", database: "all", user: "carol", line: nil, method: nil),
            Case(address: "192.168.1.77", database: "app", user: "mallory", line: nil, method: nil),
            Case(address: "192.168.2.1", database: "app", user: "bob", line: nil, method: nil),
            Case(address: "::1", database: "app", user: "x", line: 8, method: .password),
            Case(address: "::ffff:127.0.0.1", database: "app", user: "x", line: 10, method: .scramSHA256),
            Case(address: "10.9.3.4", database: "app", user: "x", line: 9, method: .trust),
            Case(address: "127.0.0.2", database: "app", user: "x", line: nil, method: nil),
        ])
    func matching(_ test: Case) {
        let rule = Self.rules.match(
            HBAConnection(
                isUnixSocket: test.unix, isTLS: test.tls, address: test.address, database: test.database,
                user: test.user))
        #expect(rule?.line == test.line)
        #expect(rule?.method == test.method)
    }

    @Test(
        "what Sluice cannot honour is refused with its line, never skipped",
        arguments: [
            ("host all +admins 127.0.0.1/32 md5", "role membership"),
            ("host all all db.example.com md5", "no host names"),
            ("host all all samehost md5", "no host names, samehost"),
            ("host all all 127.0.0.1 md5", "needs a CIDR mask"),
            ("host all all 127.0.0.1/33 md5", "CIDR mask"),
            ("host all all 127.0.0.1 255.0.255.0 md5", "not a netmask"),
            ("host all all 127.0.0.1/32 ident", "not an authentication method"),
            ("host all all 127.0.0.1/32 ldap ldapserver=x", "not an authentication method"),
            ("host all all 127.0.0.1/32 md5 clientcert=verify-full", "options after the method"),
            ("host all all 127.0.0.1/32 peer", "only for local"),
            ("hostgssenc all all 127.0.0.1/32 md5", "not a connection type"),
            ("local replication all trust", "replication"),
            ("host all all", "too few fields"),
            ("host \"all all 127.0.0.1/32 md5", "unterminated"),
            ("host all @missing 127.0.0.1/32 md5", "cannot read /etc/sluice/missing"),
            ("host all /^app.* 127.0.0.1/32 reject", "regular expressions"),
            ("host all @roles 127.0.0.1/32 reject", "role membership"),
            ("host all @keywords 127.0.0.1/32 reject", "'samerole' is not supported"),
            ("host all @loop 127.0.0.1/32 reject", "nested more than ten deep"),
            ("local all all cert", "only for hostssl"),
            ("hostnossl all all 127.0.0.1/32 cert", "only for hostssl"),
        ])
    func refused(line: String, fragment: String) {
        let files = [
            "/etc/sluice/roles": "alice +admins\n", "/etc/sluice/keywords": "samerole", "/etc/sluice/loop": "@loop",
        ]
        let error = configError {
            _ = try HBAFile.parse("# comment\n\n\(line)\n", file: "/etc/sluice/hba.conf") { path in
                guard let text = files[path] else { throw ConfigError(file: path, line: nil, message: "no such file") }
                return text
            }
        }
        #expect(error?.file == "/etc/sluice/hba.conf")
        #expect(error?.line == 3)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("auth_type = hba needs a rules file; cert needs a CA to verify with")
    func configuration() throws {
        let files = ["/etc/sluice/hba.conf": "local all all trust\n", "/etc/sluice/ca.pem": "CA"]
        let hba = try parseConfig(
            "[sluice]\nlisten_addr = *\nauth_type = hba\nauth_hba_file = hba.conf\n", files: files)
        #expect(hba.hba?.rules.count == 1)
        let missing = configError { _ = try parseConfig("[sluice]\nlisten_addr = *\nauth_type = hba\n", files: files) }
        #expect(missing?.line == 3 && missing?.message.contains("needs auth_hba_file") == true)
        let cert = configError { _ = try parseConfig("[sluice]\nlisten_addr = *\nauth_type = cert\n", files: files) }
        #expect(cert?.message.contains("needs client_tls_ca_file") == true, "\(String(describing: cert))")
    }
}

@Suite("Failed-login throttle")
struct LoginThrottleTests {
    let key = LoginThrottle.Key(address: "10.0.0.9", user: "app")

    @Test("limit failures within the window block the pair for one window; others are not affected")
    func blocks() {
        var throttle = LoginThrottle(limit: 3, window: 60)
        throttle.failed(key, now: 0)
        throttle.failed(key, now: 1)
        #expect(throttle.retryAfter(key, now: 2) == nil)
        throttle.failed(key, now: 2)
        #expect(throttle.retryAfter(key, now: 3) == 59)
        #expect(throttle.retryAfter(LoginThrottle.Key(address: "10.0.0.9", user: "other"), now: 3) == nil)
        #expect(throttle.retryAfter(key, now: 62) == nil)
    }

    @Test("failures spread wider than the window never block; a success resets the count")
    func resets() {
        var throttle = LoginThrottle(limit: 2, window: 10)
        throttle.failed(key, now: 0)
        throttle.failed(key, now: 11)
        #expect(throttle.retryAfter(key, now: 12) == nil)
        throttle.succeeded(key)
        throttle.failed(key, now: 13)
        #expect(throttle.retryAfter(key, now: 14) == nil)
        var off = LoginThrottle(limit: 0, window: 10)
        for second in 0..<100 { off.failed(key, now: Double(second)) }
        #expect(off.retryAfter(key, now: 100) == nil)
    }

    @Test("memory is bounded: expired pairs go first, then the oldest")
    func bounded() {
        var throttle = LoginThrottle(limit: 5, window: 10, capacity: 100)
        for index in 0..<1000 {
            throttle.failed(
                LoginThrottle.Key(address: "10.0.\(index / 256).\(index % 256)", user: "u"), now: Double(index))
        }
        #expect(throttle.records.count <= 100)
    }
}
