import Testing

@testable import SluiceCore

@Suite("Loading an unchanged pgbouncer.ini")
struct ConfigTypicalFileTests {
    static let ini = """
        ;; database name = connect string
        [databases]
        appdb = host=127.0.0.1 port=5432 dbname=app
        reporting = host=127.0.0.1 dbname=reports pool_size=5 pool_mode=session

        [users]
        batch = pool_mode=session

        [pgbouncer]
        logfile = /var/log/postgresql/pgbouncer.log
        pidfile = /var/run/postgresql/pgbouncer.pid
        listen_addr = localhost
        listen_port = 6432
        unix_socket_dir = /var/run/postgresql
        auth_type = md5
        auth_file = /etc/pgbouncer/userlist.txt
        admin_users = postgres
        stats_users = stats, postgres
        pool_mode = transaction
        server_reset_query = DISCARD ALL
        ignore_startup_parameters = extra_float_digits
        max_client_conn = 500
        default_pool_size = 25
        reserve_pool_timeout = 3
        server_tls_sslmode = prefer
        log_stats = 0
        stats_period = 60
        tcp_keepalive = 1
        """

    /// The verifier PostgreSQL stores for password "pencil" with RFC 7677's salt.
    static let pencilVerifier =
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        + ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

    static let userlist = """
        ;; generated from pg_authid
        "postgres" "md553f48b7c4b76a86ce72276c5755f217d"
        "app" "\(pencilVerifier)"
        "stats" "plain text"
        """

    @Test("settings, databases, users and the auth_file all load")
    func loads() throws {
        let config = try SluiceConfig.parse(
            text: Self.ini, file: "/etc/pgbouncer/pgbouncer.ini", environment: [:],
            readFile: FakeFiles(["/etc/pgbouncer/userlist.txt": Self.userlist]).reader)
        #expect(config.sourceFile == "/etc/pgbouncer/pgbouncer.ini")
        #expect(config.listenAddresses == ["localhost"])
        #expect(config.listenPort == 6432)
        #expect(config.unixSocketDir == "/var/run/postgresql")
        #expect(config.authType == .md5)
        #expect(config.authFile == "/etc/pgbouncer/userlist.txt")
        #expect(config.adminUsers == ["postgres"])
        #expect(config.statsUsers == ["stats", "postgres"])
        #expect(config.poolMode == .transaction)
        #expect(config.maxClientConn == 500)
        #expect(config.defaultPoolSize == 25)
        #expect(config.ignoreStartupParameters == ["extra_float_digits"])
        #expect(config.logfile == "/var/log/postgresql/pgbouncer.log")
        #expect(config.pidfile == "/var/run/postgresql/pgbouncer.pid")
        #expect(config.databases.count == 2)
        #expect(config.databases["reporting"]?.poolSize == 5)
        #expect(config.users["batch"]?.poolMode == .session)
        #expect(config.userList.users.count == 3)
        #expect(config.userList["stats"] == .plain("plain text"))
        #expect(!config.logStats && config.statsPeriod == 60)
        // The same verifier Sluice derives itself: the auth_file entry is read exactly.
        #expect(
            config.userList["app"]
                == .scram(SCRAMVerifier.make(password: "pencil", salt: RFC7677.salt, iterations: 4096)))
    }

    @Test("every key of a typical file is implemented: no warnings")
    func warnings() throws {
        let config = try SluiceConfig.parse(
            text: Self.ini, file: "/etc/pgbouncer/pgbouncer.ini", environment: [:],
            readFile: FakeFiles(["/etc/pgbouncer/userlist.txt": Self.userlist]).reader)
        #expect(config.warnings.isEmpty, "\(config.warnings)")
        #expect(config.serverTLS.sslmode == .prefer)
    }

    @Test("a file that sets nothing gets PgBouncer's defaults")
    func defaults() throws {
        let config = try parseConfig("[sluice]\nlisten_addr = 127.0.0.1\n")
        var expected = SluiceConfig.pgbouncerDefaults
        expected.listenAddresses = ["127.0.0.1"]
        expected.sourceFile = "/etc/sluice/sluice.ini"
        expected.warnings = config.warnings
        expected.settingValues = ["listen_addr": "127.0.0.1"]
        #expect(config == expected)
        #expect(config.maxClientConn == 100)
        #expect(config.defaultPoolSize == 20)
        #expect(config.poolMode == .session)
        #expect(config.authType == .md5)
        #expect(config.serverIdleTimeout == 600)
        #expect(config.serverLifetime == 3600)
        #expect(config.serverConnectTimeout == 15)
        #expect(config.serverLoginRetry == 15)
        #expect(config.queryWaitTimeout == 120)
        #expect(config.clientLoginTimeout == 60)
        #expect(config.serverResetQuery == "DISCARD ALL")
        #expect(config.maxPacketSize == 2_147_483_647)
        #expect(config.pktBuf == 4096)
        #expect(config.trackExtraParameters == ["IntervalStyle"])
        #expect(config.logConnections && config.logDisconnections && config.logPoolerErrors)
        #expect(config.workers == 0)
        #expect(config.unixSocketDir == "/tmp")
    }

    @Test("without listen_addr Sluice listens only on its Unix socket, as PgBouncer does")
    func noListenAddress() throws {
        let config = try parseConfig("[sluice]\nauth_type = trust\n")
        #expect(config.listenAddresses.isEmpty)
        #expect(config.unixSocketDir == "/tmp")
    }

    @Test("no users for a password method is worth a warning")
    func noUsers() throws {
        let config = try parseConfig("[sluice]\nlisten_addr=*\n")
        #expect(config.warnings.contains { $0.message.contains("no client can log in") })
        let any = try parseConfig("[sluice]\nlisten_addr=*\nauth_type = any\n")
        #expect(any.warnings.isEmpty)
    }

    @Test("auth_file is resolved against the file that names it")
    func authFileRelative() throws {
        let config = try parseConfig(
            "[sluice]\nlisten_addr=*\n%include conf/auth.ini\n",
            files: [
                "/etc/sluice/conf/auth.ini": "auth_file = users.txt\n", "/etc/sluice/conf/users.txt": "\"a\" \"b\"\n",
            ])
        #expect(config.authFile == "/etc/sluice/conf/users.txt")
        #expect(config.userList["a"] == .plain("b"))
    }

    @Test("an unreadable auth_file is an error at the line that names it")
    func authFileMissing() {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr=*\nauth_file = /nope/users.txt\n") }
        #expect(error?.line == 3)
        #expect(error?.message.contains("cannot read auth_file /nope/users.txt") == true)
    }

    @Test("a broken auth_file line is reported in the auth_file")
    func authFileBroken() {
        let error = configError {
            _ = try parseConfig(
                "[sluice]\nlisten_addr=*\nauth_file = u.txt\n", files: ["/etc/sluice/u.txt": "\"a\" \"b\"\nbroken\n"])
        }
        #expect(error?.file == "/etc/sluice/u.txt")
        #expect(error?.line == 2)
    }

    @Test("load reads real files from disk")
    func loadFromDisk() throws {
        let directory = "/tmp/sluice-config-test-\(Crypto.hex(Crypto.randomBytes(count: 6)))"
        try FileSystemFixture.write(
            [
                "\(directory)/pgbouncer.ini": "[pgbouncer]\nlisten_addr = 127.0.0.1\nauth_file = userlist.txt\n",
                "\(directory)/userlist.txt": "\"u\" \"p\"\n",
            ])
        defer { FileSystemFixture.remove(directory) }
        let config = try SluiceConfig.load(path: "\(directory)/pgbouncer.ini", environment: [:])
        #expect(config.userList["u"] == .plain("p"))
        let missing = configError { _ = try SluiceConfig.load(path: "\(directory)/absent.ini", environment: [:]) }
        #expect(missing?.file == "\(directory)/absent.ini")
    }
}
