/// Turns the lines of a config file (includes already followed) into a ``SluiceConfig``.
///
/// Main-section settings are collected first and applied afterwards, so that a key set twice is
/// judged by its last value only (PgBouncer's "last one wins") and warns once.
struct ConfigLoader {
    private enum Section {
        case main
        case databases
        case users
    }

    private struct Setting {
        var key: ConfigKey
        var value: String
        var file: String
        var line: Int
    }

    private(set) var config: SluiceConfig
    private var section: Section?
    private var settings: [String: Setting] = [:]
    private var settingOrder: [String] = []
    private var warnings: [ConfigDiagnostic] = []

    init(file: String) {
        config = .pgbouncerDefaults
        config.sourceFile = file
    }

    /// A loader that changes one setting of a configuration already loaded (the console's `SET`).
    init(changing config: SluiceConfig) {
        self.config = config
    }

    /// Sets one main-section key of the configuration this loader started from, as a file line would, and
    /// refuses keys that only a restart changes.
    mutating func set(_ name: String, to value: String, origin: String) throws(ConfigError) -> SluiceConfig {
        try collect(key: name, value: value, file: origin, line: 0)
        guard let setting = settings[name.lowercased()] else { return config }
        guard setting.key.reloadable else {
            throw ConfigError(file: origin, line: nil, message: "\(setting.key.name) changes only on restart")
        }
        try apply(setting)
        config.settingValues[setting.key.name] = value
        return config
    }

    /// Applies every line, then the collected main-section settings, then loads the auth_file.
    mutating func load(_ lines: [IniLine], readFile: (String) throws -> String) throws(ConfigError) -> SluiceConfig {
        for line in lines {
            switch line.content {
            case .section(let name):
                section = try Self.section(named: name, file: line.file, line: line.line)
            case .setting(let key, let value):
                switch section {
                case nil:
                    throw ConfigError(
                        file: line.file, line: line.line,
                        message: "'\(key)' appears before any section; put it under [sluice] (or [pgbouncer])")
                case .main:
                    try collect(key: key, value: value, file: line.file, line: line.line)
                case .databases:
                    let database = try DatabaseEntryParser.parse(
                        name: key, value: value, file: line.file, line: line.line)
                    config.databases[database.name] = database
                case .users:
                    let user = try DatabaseEntryParser.parseUser(
                        name: key, value: value, file: line.file, line: line.line)
                    config.users[user.name] = user
                }
            }
        }
        for name in settingOrder {
            guard let setting = settings[name] else { continue }
            try apply(setting)
            config.settingValues[name] = setting.value
        }
        try checkTLS(readFile: readFile)
        try loadHBA(readFile: readFile)
        if let authFile = config.authFile {
            let origin = settings["auth_file"]
            let text: String
            do {
                text = try readFile(authFile)
            } catch {
                throw ConfigError(
                    file: origin?.file ?? authFile, line: origin?.line,
                    message: "cannot read auth_file \(authFile): \(error)")
            }
            config.userList = try UserList.parse(text, file: authFile)
        }
        config.warnings = warnings
        return config
    }

    /// Reads `auth_hba_file`, which `auth_type = hba` needs; `cert` needs client certificates.
    private mutating func loadHBA(readFile: (String) throws -> String) throws(ConfigError) {
        let origin = settings["auth_hba_file"] ?? settings["auth_type"]
        let file = origin?.file ?? config.sourceFile ?? ConfigError.environmentFile
        config.hba = nil
        if let path = config.authHBAFile {
            let text: String
            do {
                text = try readFile(path)
            } catch {
                throw ConfigError(
                    file: file, line: origin?.line, message: "cannot read auth_hba_file \(path): \(error)")
            }
            config.hba = try HBAFile.parse(text, file: path, readFile: readFile)
        }
        let typeLine = settings["auth_type"]
        if config.authType == .hba && config.hba == nil {
            throw ConfigError(file: file, line: typeLine?.line, message: "auth_type = hba needs auth_hba_file")
        }
        let usesCertificates =
            config.authType == .cert || config.hba?.rules.contains { $0.method == .cert } == true
        if usesCertificates && config.clientTLS.caFile.isEmpty {
            throw ConfigError(
                file: file, line: typeLine?.line,
                message: "certificate authentication needs client_tls_ca_file (and client TLS) to verify certificates")
        }
    }

    /// Checks the TLS keys together, once all are read, naming the line that asks for what is missing.
    private func checkTLS(readFile: (String) throws -> String) throws(ConfigError) {
        for (side, tls) in [("client", config.clientTLS), ("server", config.serverTLS)] {
            func fail(_ key: String, _ message: String) -> ConfigError {
                let origin = settings[key] ?? settings["\(side)_tls_sslmode"]
                return ConfigError(
                    file: origin?.file ?? config.sourceFile ?? ConfigError.environmentFile, line: origin?.line,
                    message: message)
            }
            let mode = "\(side)_tls_sslmode = \(tls.sslmode.rawValue)"
            if side == "client" && tls.isEnabled && (tls.certificateFile.isEmpty || tls.keyFile.isEmpty) {
                throw fail("client_tls_sslmode", "\(mode) needs client_tls_cert_file and client_tls_key_file")
            }
            if side == "client" && tls.sslmode.verifiesCertificate && tls.caFile.isEmpty {
                throw fail("client_tls_sslmode", "\(mode) needs client_tls_ca_file to verify client certificates")
            }
            if tls.certificateFile.isEmpty != tls.keyFile.isEmpty {
                throw fail("\(side)_tls_cert_file", "\(side)_tls_cert_file and \(side)_tls_key_file go together")
            }
            guard tls.isEnabled else { continue }
            for (key, path) in [("cert_file", tls.certificateFile), ("key_file", tls.keyFile), ("ca_file", tls.caFile)]
            where !path.isEmpty {
                do {
                    _ = try readFile(path)
                } catch {
                    throw fail("\(side)_tls_\(key)", "cannot read \(side)_tls_\(key) \(path): \(error)")
                }
            }
        }
    }

    private static func section(named name: String, file: String, line: Int) throws(ConfigError) -> Section {
        switch name {
        case "sluice", "pgbouncer":
            return .main
        case "databases":
            return .databases
        case "users":
            return .users
        case "peers":
            throw ConfigError(
                file: file, line: line,
                message: "[peers] is not supported: Sluice cannot forward cancel requests to peer poolers yet")
        default:
            throw ConfigError(
                file: file, line: line,
                message: "unknown section [\(name)]; expected [sluice] (or [pgbouncer]), [databases] or [users]")
        }
    }

    private mutating func collect(key rawKey: String, value: String, file: String, line: Int) throws(ConfigError) {
        guard let key = ConfigKey.named(rawKey) else {
            throw ConfigError(file: file, line: line, message: "unknown setting '\(rawKey)'")
        }
        if let problem = ConfigValue.problem(with: value, as: key.valueType) {
            throw ConfigError(file: file, line: line, message: "\(Self.quote(key, value)) \(problem)")
        }
        if settings[key.name] == nil { settingOrder.append(key.name) }
        settings[key.name] = Setting(key: key, value: value, file: file, line: line)
    }

    private static func quote(_ key: ConfigKey, _ value: String) -> String {
        key.isSensitive ? "\(key.name) = <redacted>" : "\(key.name) = '\(value)'"
    }

    private mutating func apply(_ setting: Setting) throws(ConfigError) {
        let key = setting.key
        switch key.kind {
        case .implemented:
            try applyImplemented(setting)
        case .cosmetic:
            warn(setting, "\(key.name) is not implemented by Sluice and is ignored")
        case .restrictive:
            let harmless =
                ConfigValue.equivalent(setting.value, key.defaultValue, as: key.valueType)
                || key.harmlessValues.contains { ConfigValue.equivalent(setting.value, $0, as: key.valueType) }
            guard harmless else {
                throw ConfigError(
                    file: setting.file, line: setting.line,
                    message: "\(Self.quote(key, setting.value)) is not supported yet; "
                        + "Sluice refuses to run weaker than the file asks")
            }
            warn(
                setting, "\(key.name) is set to PgBouncer's default; Sluice does not implement it yet and ignores it")
        }
    }

    private mutating func warn(_ setting: Setting, _ message: String) {
        warnings.append(ConfigDiagnostic(file: setting.file, line: setting.line, message: message))
    }

    private mutating func applyImplemented(_ setting: Setting) throws(ConfigError) {
        let value = setting.value
        func fail(_ message: String) -> ConfigError {
            ConfigError(file: setting.file, line: setting.line, message: "\(Self.quote(setting.key, value)) \(message)")
        }
        func integer(_ range: ClosedRange<Int>) throws(ConfigError) -> Int {
            guard let number = ConfigValue.integer(value), range.contains(number) else {
                throw fail("must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func seconds() throws(ConfigError) -> Double {
            guard let number = ConfigValue.seconds(value) else { throw fail("is not a non-negative number of seconds") }
            return number
        }
        func boolean() throws(ConfigError) -> Bool {
            guard let flag = ConfigValue.boolean(value) else { throw fail("is not a boolean (0 or 1)") }
            return flag
        }
        func sslmode() throws(ConfigError) -> SSLMode {
            guard let mode = SSLMode(rawValue: value.lowercased()) else { throw fail("is not a known sslmode") }
            return mode
        }
        func protocols() throws(ConfigError) -> ClosedRange<TLSVersion> {
            guard let range = TLSVersion.range(parsing: value) else {
                throw fail("is not a TLS protocol list (tlsv1.0 … tlsv1.3, secure, all, legacy)")
            }
            return range
        }
        func path() -> String { value.isEmpty ? "" : IniReader.resolve(value, relativeTo: setting.file) }

        switch setting.key.name {
        case "admin_users": config.adminUsers = ConfigValue.list(value)
        case "application_name_add_host": config.applicationNameAddHost = try boolean()
        case "auth_user": config.authUser = value.isEmpty ? nil : value
        case "auth_query": config.authQuery = value
        case "auth_dbname": config.authDBName = value.isEmpty ? nil : value
        case "auth_query_cache_ttl": config.authQueryCacheTTL = try seconds()
        case "auth_file": config.authFile = value.isEmpty ? nil : IniReader.resolve(value, relativeTo: setting.file)
        case "auth_hba_file":
            config.authHBAFile = value.isEmpty ? nil : IniReader.resolve(value, relativeTo: setting.file)
        case "auth_type":
            guard let type = AuthType(rawValue: value.lowercased()) else { throw fail("is not a known auth_type") }
            guard type.isImplemented else {
                throw fail("is not supported yet; Sluice refuses to run weaker than the file asks")
            }
            config.authType = type
        case "cancel_wait_timeout": config.cancelWaitTimeout = try seconds()
        case "client_idle_timeout": config.clientTimeouts.clientIdleTimeout = try seconds()
        case "client_login_timeout": config.clientLoginTimeout = try seconds()
        case "query_wait_notify": config.queryWaitNotify = try seconds()
        case "autodb_idle_timeout": config.autodbIdleTimeout = try seconds()
        case "pool_idle_timeout": config.poolIdleTimeout = try seconds()
        case "listen_backlog": config.listenBacklog = try integer(1...65535)
        case "idle_transaction_timeout": config.clientTimeouts.idleTransactionTimeout = try seconds()
        case "query_timeout": config.clientTimeouts.queryTimeout = try seconds()
        case "transaction_timeout": config.clientTimeouts.transactionTimeout = try seconds()
        case "client_tls_sslmode": config.clientTLS.sslmode = try sslmode()
        case "client_tls_cert_file": config.clientTLS.certificateFile = path()
        case "client_tls_key_file": config.clientTLS.keyFile = path()
        case "client_tls_ca_file": config.clientTLS.caFile = path()
        case "client_tls_protocols": config.clientTLS.protocols = try protocols()
        case "client_tls_ciphers": config.clientTLS.ciphers = TLSSideConfig.cipherList(value)
        case "client_tls13_ciphers": config.clientTLS.tls13Ciphers = value
        case "client_tls_ecdhcurve": config.clientTLS.groups = value.lowercased() == "auto" ? "" : value
        case "client_tls_dheparams":
            // OpenSSL picks DH parameters matching the certificate's strength; PgBouncer's `none` turns DHE
            // off, which OpenSSL 3 already does unless told otherwise.
            guard ["auto", "none"].contains(value.lowercased()) else { throw fail("must be auto or none") }
            config.clientTLSAutoDH = value.lowercased() == "auto"
        case "server_tls_sslmode": config.serverTLS.sslmode = try sslmode()
        case "server_tls_cert_file": config.serverTLS.certificateFile = path()
        case "server_tls_key_file": config.serverTLS.keyFile = path()
        case "server_tls_ca_file": config.serverTLS.caFile = path()
        case "server_tls_protocols": config.serverTLS.protocols = try protocols()
        case "server_tls_ciphers": config.serverTLS.ciphers = TLSSideConfig.cipherList(value)
        case "server_tls13_ciphers": config.serverTLS.tls13Ciphers = value
        case "default_pool_size": config.defaultPoolSize = try integer(0...Int(Int32.max))
        case "dns_max_ttl": config.dnsMaxTTL = try seconds()
        case "dns_nxdomain_ttl": config.dnsNXDomainTTL = try seconds()
        case "ignore_startup_parameters": config.ignoreStartupParameters = ConfigValue.list(value)
        case "listen_addr": config.listenAddresses = ConfigValue.list(value)
        case "listen_port": config.listenPort = try integer(1...65535)
        case "log_connections": config.logConnections = try boolean()
        case "log_disconnections": config.logDisconnections = try boolean()
        case "log_pooler_errors": config.logPoolerErrors = try boolean()
        case "log_stats": config.logStats = try boolean()
        case "login_failure_exempt_loopback": config.loginFailureExemptLoopback = try boolean()
        case "login_failure_limit": config.loginFailureLimit = try integer(0...Int(Int32.max))
        case "login_failure_window": config.loginFailureWindow = try seconds()
        case "stats_period": config.statsPeriod = try integer(1...Int(Int32.max))
        case "logfile": config.logfile = value.isEmpty ? nil : value
        case "max_client_conn": config.maxClientConn = try integer(1...Int(Int32.max))
        case "max_db_client_connections": config.poolLimits.maxDBClientConnections = try integer(0...Int(Int32.max))
        case "max_db_connections": config.poolLimits.maxDBConnections = try integer(0...Int(Int32.max))
        case "max_packet_size": config.maxPacketSize = try integer(1...Int(Int32.max))
        case "max_prepared_statements": config.maxPreparedStatements = try integer(0...Int(Int32.max))
        case "max_client_prepared_statements": config.maxClientPreparedStatements = try integer(0...Int(Int32.max))
        case "max_user_client_connections":
            config.poolLimits.maxUserClientConnections = try integer(0...Int(Int32.max))
        case "max_user_connections": config.poolLimits.maxUserConnections = try integer(0...Int(Int32.max))
        case "min_pool_size": config.poolLimits.minPoolSize = try integer(0...Int(Int32.max))
        case "pidfile": config.pidfile = value.isEmpty ? nil : value
        case "pkt_buf": config.pktBuf = try integer(1...Int(Int32.max))
        case "pool_mode":
            guard let mode = PoolMode(rawValue: value.lowercased()) else { throw fail("is not a known pool_mode") }
            config.poolMode = mode
        case "query_wait_timeout": config.queryWaitTimeout = try seconds()
        case "reserve_pool_size": config.poolLimits.reservePoolSize = try integer(0...Int(Int32.max))
        case "reserve_pool_timeout": config.poolLimits.reservePoolTimeout = try seconds()
        case "scram_iterations": config.scramIterations = try integer(1...SCRAMVerifier.maximumIterations)
        case "server_check_delay": config.serverCheckDelay = try seconds()
        case "server_check_query": config.serverCheckQuery = value == "<empty>" ? "" : value
        case "server_fast_close": config.serverFastClose = try boolean()
        case "server_connect_timeout": config.serverConnectTimeout = try seconds()
        case "server_idle_timeout": config.serverIdleTimeout = try seconds()
        case "server_lifetime": config.serverLifetime = try seconds()
        case "server_login_retry": config.serverLoginRetry = try seconds()
        case "server_reset_query": config.serverResetQuery = value
        case "server_reset_query_always": config.serverResetQueryAlways = try boolean()
        case "server_round_robin": config.poolLimits.serverRoundRobin = try boolean()
        case "stats_users": config.statsUsers = ConfigValue.list(value)
        case "stats_auth_token": config.statsAuthToken = value
        case "stats_listen_addr": config.statsListenAddress = value
        case "stats_listen_port": config.statsListenPort = try integer(0...65535)
        case "health_check_period": config.healthCheckPeriod = try seconds()
        case "primary_wait_timeout": config.primaryWaitTimeout = try seconds()
        case "read_your_writes": config.readYourWrites = ReadYourWrites(rawValue: value.lowercased()) ?? .connection
        case "replica_ban_time": config.routingPolicy.banTime = try seconds()
        case "replica_load_balance":
            config.routingPolicy.loadBalance = ReplicaLoadBalance(rawValue: value.lowercased()) ?? .roundRobin
        case "replica_max_lag_bytes": config.routingPolicy.maxLagBytes = UInt64(try integer(0...Int.max))
        case "replica_max_lag_seconds": config.routingPolicy.maxLagSeconds = try seconds()
        case "primary_reads": config.routingPolicy.primaryReads = try boolean()
        case "routing_check_period": config.routingCheckPeriod = max(0.05, try seconds())
        case "routing_safe_functions": config.routingSafeFunctions = ConfigValue.list(value)
        case "routing_unsafe_functions": config.routingUnsafeFunctions = ConfigValue.list(value)
        case "tcp_keepalive": config.tcpKeepalive = try boolean()
        case "tcp_keepcnt": config.tcpKeepCount = try integer(0...Int(Int32.max))
        case "tcp_keepidle": config.tcpKeepIdle = try integer(0...Int(Int32.max))
        case "tcp_keepintvl": config.tcpKeepInterval = try integer(0...Int(Int32.max))
        case "tcp_user_timeout": config.tcpUserTimeout = try integer(0...Int(Int32.max))
        case "track_extra_parameters": config.trackExtraParameters = ConfigValue.list(value)
        case "unix_socket_dir":
            // Checked here rather than at bind time so `--check` catches it: the socket's path must fit
            // in sockaddr_un together with `/.s.PGSQL.<port>`.
            guard value.utf8.count + "/.s.PGSQL.65535".utf8.count <= 107 else { throw fail("is too long") }
            config.unixSocketDir = value.isEmpty ? nil : value
        case "unix_socket_group": config.unixSocketGroup = value.isEmpty ? nil : value
        case "unix_socket_mode": config.unixSocketMode = try integer(0...0o7777)
        case "workers":
            // `auto` (or 0): as many loops as CPUs this process may use, decided at startup.
            config.workers = value.lowercased() == "auto" ? 0 : try integer(0...256)
        default:
            // The table marks a key implemented that this switch does not handle.
            fatalError("config key \(setting.key.name) is marked implemented but has no parser")
        }
    }
}
