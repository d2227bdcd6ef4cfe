import Testing

@testable import SluiceCore

/// Parsing of the network keys: keepalive, DNS caching, the Unix socket and server host lists.
@Suite("Network configuration")
struct NetworkConfigTests {
    @Test("keepalive and DNS keys keep PgBouncer's defaults when unset")
    func defaults() throws {
        let config = try parseConfig("[sluice]\nlisten_addr = 127.0.0.1\n")
        #expect(config.tcpKeepalive)
        #expect(config.tcpKeepIdle == 0 && config.tcpKeepInterval == 0 && config.tcpKeepCount == 0)
        #expect(config.tcpUserTimeout == 0)
        #expect(config.dnsMaxTTL == 15 && config.dnsNXDomainTTL == 15)
        #expect(config.unixSocketDir == "/tmp")
        #expect(config.unixSocketMode == 0o777)
        #expect(config.unixSocketGroup == nil)
    }

    @Test("keepalive, DNS and Unix-socket keys are read, without warnings")
    func parsed() throws {
        let config = try parseConfig(
            """
            [sluice]
            auth_type = any
            listen_addr = 127.0.0.1, ::1
            tcp_keepalive = 0
            tcp_keepidle = 30
            tcp_keepintvl = 5
            tcp_keepcnt = 4
            tcp_user_timeout = 1500
            dns_max_ttl = 2.5
            dns_nxdomain_ttl = 0
            unix_socket_dir = /run/sluice
            unix_socket_mode = 0700
            unix_socket_group = postgres
            """)
        #expect(config.warnings.isEmpty, "\(config.warnings)")
        #expect(config.listenAddresses == ["127.0.0.1", "::1"])
        #expect(!config.tcpKeepalive)
        #expect(config.tcpKeepIdle == 30 && config.tcpKeepInterval == 5 && config.tcpKeepCount == 4)
        #expect(config.tcpUserTimeout == 1500)
        #expect(config.dnsMaxTTL == 2.5 && config.dnsNXDomainTTL == 0)
        #expect(config.unixSocketDir == "/run/sluice")
        #expect(config.unixSocketMode == 0o700)
        #expect(config.unixSocketGroup == "postgres")
    }

    @Test("an empty unix_socket_dir turns the Unix socket off; with no listen_addr Sluice falls back to loopback")
    func noUnixSocket() throws {
        let config = try parseConfig("[sluice]\nunix_socket_dir =\n")
        #expect(config.unixSocketDir == nil)
        #expect(config.listenAddresses == ["127.0.0.1"])
        #expect(config.warnings.contains { $0.message.contains("both empty") })
    }

    @Test("without listen_addr, a file listens only on the Unix socket, as PgBouncer does")
    func unixOnly() throws {
        let config = try parseConfig("[sluice]\nunix_socket_dir = /run/sluice\n")
        #expect(config.listenAddresses.isEmpty)
        #expect(config.unixSocketDir == "/run/sluice")
    }

    @Test(
        "bad values are refused with the line",
        arguments: [
            "tcp_keepidle = -1", "tcp_keepcnt = many", "tcp_user_timeout = 1.5", "dns_max_ttl = -3",
            "unix_socket_mode = 0800", "tcp_keepalive = maybe",
            "unix_socket_dir = /" + String(repeating: "d", count: 100),
        ])
    func refused(line: String) {
        let error = configError { _ = try parseConfig("[sluice]\nlisten_addr = 127.0.0.1\n\(line)\n") }
        #expect(error?.line == 3, "\(String(describing: error))")
    }

    @Test(
        "host takes a name, an address, a socket directory, an abstract socket or a comma list of them",
        arguments: [
            ("db.internal", "db.internal"), ("::1", "::1"), ("/var/run/postgresql", "/var/run/postgresql"),
            ("@pgsock", "@pgsock"), ("10.0.0.5,10.0.0.6", "10.0.0.5,10.0.0.6"),
            ("'primary.internal, /var/run/postgresql'", "primary.internal,/var/run/postgresql"),
        ])
    func hosts(value: String, expected: String) throws {
        let config = try parseConfig("[databases]\napp = host=\(value)\n[sluice]\nlisten_addr = 127.0.0.1\n")
        #expect(config.databases["app"]?.host == expected)
    }

    @Test("a host list with an empty entry is refused", arguments: ["a,,b", "a,", ",a"])
    func emptyHostEntry(value: String) {
        let error = configError { _ = try parseConfig("[databases]\napp = host=\(value)\n") }
        #expect(error?.message.contains("empty entry") == true, "\(String(describing: error))")
    }

    @Test("load_balance_hosts takes round-robin or disable")
    func loadBalanceHosts() throws {
        let config = try parseConfig(
            "[databases]\na = host=x,y load_balance_hosts=disable\nb = host=x,y load_balance_hosts=Round-Robin\n")
        #expect(config.databases["a"]?.loadBalanceHosts == .disable)
        #expect(config.databases["b"]?.loadBalanceHosts == .roundRobin)
        #expect(throws: ConfigError.self) { try parseConfig("[databases]\na = host=x load_balance_hosts=random\n") }
    }
}
