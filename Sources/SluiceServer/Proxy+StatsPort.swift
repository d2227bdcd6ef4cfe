import Glibc
import SluiceCore
import SluiceIO

/// The stats port's answers: health for the application's readiness check, JSON statistics, and Prometheus
/// metrics. Runs on loop 0.
extension Proxy {

    /// Opens the stats port (loop 0, at startup). A port set in the configuration that cannot be opened stops
    /// startup: an operator who set it relies on it. The default one, taken by another process (a second
    /// Sluice on the host, started from an unchanged pgbouncer.ini), is a warning: that file never asked for it.
    func bindStatsPort() throws {
        guard config.statsListenPort != 0 else { return }
        let addresses = try Socket.listenAddresses(for: config.statsListenAddress, port: config.statsListenPort)
        guard let address = addresses.first else {
            throw SystemError("stats_listen_addr \(config.statsListenAddress)", errno: EADDRNOTAVAIL)
        }
        let fd: Int32
        do {
            fd = try Socket.listen(on: address, backlog: 64)
        } catch {
            let configured =
                config.settingValues["stats_listen_port"] != nil || config.settingValues["stats_listen_addr"] != nil
            guard !configured && error.errno == EADDRINUSE else { throw error }
            logger.warning(
                "the default stats port is taken; running without it (set stats_listen_port, or 0 to say so)",
                [("addr", address.host), ("port", String(config.statsListenPort))])
            return
        }
        let listener = StatsListener(fd: fd, proxy: self)
        do {
            try loop.registerLevelTriggered(fd, handler: listener)
        } catch {
            listener.close()
            throw error
        }
        statsListener = listener
        logger.info("stats port listening", [("addr", address.host), ("port", String(Socket.localPort(fd)))])
    }

    /// Closes stats requests that overstayed. Loop 0's tick.
    func expireStatsConnections(_ now: Double) {
        guard !statsConnections.isEmpty else { return }
        for connection in Array(statsConnections.values) { connection.expireIfLate(now) }
    }

    /// Answers one request, now or once every loop has described its connections.
    func answerStatsRequest(_ head: HTTPRequestHead, on connection: StatsConnection) {
        let includeBody = head.method != "HEAD"
        guard head.method == "GET" || head.method == "HEAD" else {
            return connection.answer(.text(status: 405, body: "only GET and HEAD\n"), includeBody: includeBody)
        }
        let path = head.path.count > 1 && head.path.hasSuffix("/") ? String(head.path.dropLast()) : head.path
        switch path {
        case "/health":
            let accepting = shared.lock.withLock { shutdown == nil }
            connection.answer(
                .json(status: accepting ? 200 : 503, body: ["status": .string(accepting ? "ok" : "shutting_down")]),
                includeBody: includeBody)
        case "/health/database":
            let (status, body) = shared.lock.withLock { databaseHealth(only: head.query["database"]) }
            connection.answer(.json(status: status, body: body), includeBody: includeBody)
        case "/stats", "/metrics":
            let token = config.statsAuthToken
            if !token.isEmpty && !Crypto.constantTimeEquals(Array((head.bearerToken ?? "").utf8), Array(token.utf8)) {
                return connection.answer(
                    .text(status: 401, body: "a valid bearer token is required\n"), includeBody: includeBody)
            }
            shared.lock.withLock {
                gatherSnapshots { proxy, snapshot in
                    let response: HTTPResponse =
                        path == "/stats"
                        ? .json(body: proxy.statsDocument(snapshot)) : .prometheus(body: proxy.metrics(snapshot))
                    connection.answer(response, includeBody: includeBody)
                }
            }
        default:
            connection.answer(
                .text(status: 404, body: "not found; try /health, /health/database, /stats or /metrics\n"),
                includeBody: includeBody)
        }
    }

    // MARK: Health

    /// `/health/database`: 200 when every database (or the one asked for) passed a health check within two
    /// periods, 503 otherwise, 404 for a database Sluice does not serve. States and counts only: the endpoint
    /// needs no token, so it says nothing of users, addresses or errors. Lock held.
    func databaseHealth(only wanted: String?) -> (status: Int, body: JSONValue) {
        let now = Syscall.monotonicNow()
        var names = checkedDatabaseNames()
        if let wanted {
            guard names.contains(wanted) else {
                return (404, ["status": "unknown_database", "database": .string(wanted)])
            }
            names = [wanted]
        }
        let checking = config.healthCheckPeriod > 0
        var allUp = true
        var entries: [JSONValue] = []
        for name in names {
            let (state, health) = checking ? healthState(name, now: now) : ("unchecked", DatabaseHealth())
            if checking && state != "up" { allUp = false }
            let databasePools = pools.values.filter { $0.key.database == name }
            let used = databasePools.reduce(0) { $0 + $1.servers.count }
            let limits = databasePools.map(\.machine.maxServers)
            let max = limits.contains(Int.max) || limits.isEmpty ? nil : limits.reduce(0, +)
            let waiting = databasePools.reduce(0) { $0 + $1.machine.waitingCount }
            let oldest = databasePools.compactMap(\.machine.oldestWaitSince).min()
            var pool: [(String, JSONValue)] = [("used", .int(Int64(used)))]
            pool.append(("max", max.map { .int(Int64($0)) } ?? .null))
            pool.append(("utilization", max.map { .double($0 > 0 ? Double(used) / Double($0) : 0) } ?? .null))
            entries.append(
                .object([
                    ("name", .string(name)), ("state", .string(state)),
                    ("last_check", health.checkedAtWall.map { .string(Self.iso8601($0)) } ?? .null),
                    ("last_check_ok", health.checkedAt == nil ? .null : .bool(health.isOK)), ("pool", .object(pool)),
                    ("waiting_clients", .int(Int64(waiting))),
                    ("oldest_wait_seconds", .double(oldest.map { Swift.max(0, now - $0) } ?? 0)),
                ]))
        }
        let ok = allUp && shutdown == nil
        return (
            ok ? 200 : 503, .object([("status", .string(ok ? "ok" : "unavailable")), ("databases", .array(entries))])
        )
    }

    /// A wall-clock time as `2026-12-05T06:40:00Z`.
    static func iso8601(_ unixSeconds: Double) -> String {
        var seconds = time_t(unixSeconds.rounded(.down))
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else { return "" }
        var text = [CChar](repeating: 0, count: 32)
        let count = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: text[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
