import Foundation

extension SluiceConfig {
    /// The environment variables Sluice reads, each overriding the file.
    public static let environmentVariables = [
        "DATABASE_URL", "DB_POOL_MAX", "DB_IDLE_TIMEOUT", "DB_CONNECT_TIMEOUT", "LISTEN_ADDR", "LISTEN_PORT",
        "DB_POOL_MODE", "STATS_LISTEN_PORT",
    ]

    /// Loads the config file at `path` (or, when `path` is nil, builds a sidecar config from
    /// `DATABASE_URL`), then applies the environment overrides and checks the result.
    public static func load(path: String?, environment: [String: String]) throws(ConfigError) -> SluiceConfig {
        guard let path else { return try fromEnvironment(environment) }
        let text: String
        do {
            text = try readTextFile(path)
        } catch {
            throw ConfigError(file: path, line: nil, message: "cannot read config file: \(error)")
        }
        return try parse(text: text, file: path, environment: environment, readFile: readTextFile)
    }

    /// Like ``load(path:environment:)`` for a file whose text is already in memory; includes and
    /// the auth_file are read through `readFile`, so tests need no disk.
    public static func parse(
        text: String, file: String, environment: [String: String], readFile: (String) throws -> String
    ) throws(ConfigError) -> SluiceConfig {
        var loader = ConfigLoader(file: file)
        let lines = try IniReader.read(text: text, file: file, readFile: readFile)
        var config = try loader.load(lines, readFile: readFile)
        try config.applyEnvironment(environment)
        config.checkFileConfig()
        try config.checkStatsPort()
        return config
    }

    /// This configuration with one main-section key set to `value`, as the admin console's `SET` does it.
    /// Only keys a reload may change are accepted; the result is applied like a reload.
    public func setting(_ name: String, to value: String) throws(ConfigError) -> SluiceConfig {
        var loader = ConfigLoader(changing: self)
        return try loader.set(name, to: value, origin: "SET")
    }

    /// The sidecar config: no file, one database and one SCRAM user from `DATABASE_URL`.
    public static func fromEnvironment(_ environment: [String: String]) throws(ConfigError) -> SluiceConfig {
        guard let url = nonEmpty(environment["DATABASE_URL"]) else {
            throw ConfigError(
                file: ConfigError.environmentFile, line: nil,
                message: "no config file given and DATABASE_URL is not set; pass a pgbouncer.ini-style file "
                    + "or set DATABASE_URL=postgres://user:password@host:5432/dbname")
        }
        guard try DatabaseURL.parse(url).password?.isEmpty == false else {
            throw ConfigError(
                file: ConfigError.environmentFile, line: nil,
                message: "DATABASE_URL has no password; without a config file Sluice authenticates clients "
                    + "with the URL's user and password, so one is required")
        }
        var config = sidecarDefaults
        try config.applyEnvironment(environment)
        try config.checkStatsPort()
        return config
    }

    /// Applies the environment variables over whatever the file set.
    mutating func applyEnvironment(_ environment: [String: String]) throws(ConfigError) {
        func fail(_ variable: String, _ message: String) -> ConfigError {
            ConfigError(file: ConfigError.environmentFile, line: nil, message: "\(variable) \(message)")
        }
        if let text = Self.nonEmpty(environment["DATABASE_URL"]) {
            let url = try DatabaseURL.parse(text)
            databases[url.dbname] = url.databaseConfig
            if let mode = url.sslmode {
                serverTLS.sslmode = mode
                settingValues["server_tls_sslmode"] = mode.rawValue
            }
            if let password = url.password, !password.isEmpty {
                userList[url.user] = .plain(password)
            }
        }
        if let text = Self.nonEmpty(environment["DB_POOL_MAX"]) {
            guard let size = Int(text), (0...Int(Int32.max)).contains(size) else {
                throw fail("DB_POOL_MAX", "= '\(text)' must be a non-negative integer (0 means unlimited)")
            }
            defaultPoolSize = size
            settingValues["default_pool_size"] = text
        }
        if let text = Self.nonEmpty(environment["DB_IDLE_TIMEOUT"]) {
            guard let seconds = ConfigValue.seconds(text) else {
                throw fail("DB_IDLE_TIMEOUT", "= '\(text)' must be a non-negative number of seconds")
            }
            serverIdleTimeout = seconds
            settingValues["server_idle_timeout"] = text
        }
        if let text = Self.nonEmpty(environment["DB_CONNECT_TIMEOUT"]) {
            guard let seconds = ConfigValue.seconds(text) else {
                throw fail("DB_CONNECT_TIMEOUT", "= '\(text)' must be a non-negative number of seconds")
            }
            serverConnectTimeout = seconds
            settingValues["server_connect_timeout"] = text
        }
        if let text = Self.nonEmpty(environment["LISTEN_ADDR"]) {
            let addresses = ConfigValue.list(text)
            guard !addresses.isEmpty else { throw fail("LISTEN_ADDR", "= '\(text)' names no address") }
            listenAddresses = addresses
            settingValues["listen_addr"] = text
        }
        if let text = Self.nonEmpty(environment["LISTEN_PORT"]) {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw fail("LISTEN_PORT", "= '\(text)' must be a port number in 1...65535")
            }
            listenPort = port
            settingValues["listen_port"] = text
        }
        if let text = Self.nonEmpty(environment["STATS_LISTEN_PORT"]) {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw fail("STATS_LISTEN_PORT", "= '\(text)' must be a port number in 0...65535 (0 turns it off)")
            }
            statsListenPort = port
            settingValues["stats_listen_port"] = text
        }
        if let text = Self.nonEmpty(environment["DB_POOL_MODE"]) {
            guard let mode = PoolMode(rawValue: text.lowercased()) else {
                throw fail("DB_POOL_MODE", "= '\(text)' must be session, transaction or statement")
            }
            poolMode = mode
            settingValues["pool_mode"] = text
        }
    }

    /// Checks that only make sense once the file and the environment are both applied.
    mutating func checkFileConfig() {
        let file = sourceFile ?? ConfigError.environmentFile
        if listenAddresses.isEmpty && unixSocketDir == nil {
            // PgBouncer refuses to start with nowhere to listen; Sluice keeps its earlier behaviour of
            // local TCP, which admits the same clients a default Unix socket would, and says so.
            listenAddresses = ["127.0.0.1"]
            warnings.append(
                ConfigDiagnostic(
                    file: file, line: nil,
                    message: "listen_addr and unix_socket_dir are both empty: PgBouncer would refuse to start; "
                        + "Sluice listens on 127.0.0.1 instead"))
        }
        switch authType {
        case .trust, .md5, .scramSHA256, .plain:
            if userList.users.isEmpty {
                warnings.append(
                    ConfigDiagnostic(
                        file: file, line: nil,
                        message: "auth_type = \(authType.rawValue) but no users are known "
                            + "(auth_file is \(authFile == nil ? "not set" : "empty")): no client can log in"))
            }
        case .any, .hba, .cert, .pam, .ldap:
            break
        }
    }

    /// The stats port shows what Sluice serves and lets a caller judge it: reachable from other hosts, it must
    /// ask for a token.
    func checkStatsPort() throws(ConfigError) {
        guard statsListenPort != 0, statsAuthToken.isEmpty else { return }
        let loopback = Self.isLoopbackLiteral(statsListenAddress)
        guard loopback else {
            throw ConfigError(
                file: sourceFile ?? ConfigError.environmentFile, line: nil,
                message: "stats_listen_addr = \(statsListenAddress) is not a loopback address and stats_auth_token is "
                    + "empty: set a token, or listen on 127.0.0.1")
        }
    }

    /// Whether `address` is one loopback address written as such: `127.x.y.z`, `::1` or `localhost`. A list,
    /// or a host name that merely starts with `127.`, could be resolved to anything.
    static func isLoopbackLiteral(_ address: String) -> Bool {
        let lowered = address.lowercased()
        if lowered == "::1" || lowered == "localhost" { return true }
        let parts = lowered.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && Int(part).map { $0 <= 255 } == true
        }
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value = value?.configTrimmed(), !value.isEmpty else { return nil }
        return value
    }

    /// Reads a whole file, with errors in the words of the C library ("No such file or directory").
    private static func readTextFile(_ path: String) throws -> String {
        guard let handle = fopen(path, "r") else { throw FileReadError(errno: errno) }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, handle)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(handle) != 0 { throw FileReadError(errno: errno) }
                break
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw FileReadError(message: "the file is not valid UTF-8")
        }
        return text
    }
}

/// Why a config, include or auth file could not be read.
struct FileReadError: Error, CustomStringConvertible {
    var description: String

    init(errno: Int32) { description = String(cString: strerror(errno)) }
    init(message: String) { description = message }
}
