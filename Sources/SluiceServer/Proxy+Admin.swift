import Glibc
import SluiceCore
import SluiceIO

/// What an admin console user may do: `admin_users` everything, `stats_users` only look.
enum AdminAccess {
    case admin
    case stats
}

/// An admin console client's state beyond its connection. Kept by its loop, not in the client: every byte of
/// a client is paid by thousands of idle ones.
final class AdminSession {
    let access: AdminAccess
    /// A command's reply is still to come (a view waiting for the other loops, PAUSE waiting for servers):
    /// the client's next messages wait behind it.
    var isBusy = false
    /// An extended-protocol message was refused: everything up to the next Sync is dropped, as PostgreSQL
    /// drops the rest of a failed extended batch.
    var skippingToSync = false

    init(access: AdminAccess) { self.access = access }
}

/// A console command that answers only once something has happened. Checked by loop 0 at every tick.
struct AdminWait {
    enum Kind {
        /// PAUSE: every server of the database (all databases for nil) released and closed.
        case pause
        /// WAIT_CLOSE: these servers, marked for closing when the command came (RECONNECT, a changed
        /// address), gone. The marks are read by the loops that own the servers, in a snapshot.
        case waitClose(Set<Int>)
    }

    var kind: Kind
    var database: String?
    var clientID: Int
    var tag: String
}

/// The admin console: the virtual database `pgbouncer` (alias `sluice`), spoken to with the simple Query
/// protocol from psql or an exporter, with PgBouncer's commands and views.
extension Proxy {
    /// What the console reports as `server_version`. Exporters pick their queries by PgBouncer's version, so
    /// Sluice gives the PgBouncer release whose console it matches, as PgBouncer writes its own.
    static let consoleServerVersion = SluiceVersion.pgbouncer + "/bouncer"

    // MARK: Login

    /// A client asked for the console database. Lock held.
    func startAdminLogin(_ client: ClientConnection) {
        client.isAdminConsole = true
        if isConsoleOwner(client) {
            issueCancelKey(to: client)
            return client.beginAuthentication(
                ClientAuthentication(user: client.user, method: .trust, secret: nil, mockSecret: mockSecret))
        }
        if let refusal = throttled(client) { return client.refuse(refusal) }
        switch authentication(for: client) {
        case .success(let authentication):
            issueCancelKey(to: client)
            client.beginAuthentication(authentication)
        case .failure(let refusal):
            client.refuse(refusal)
        }
    }

    /// The console client proved who it is: it gets in if it is an admin or stats user. Checked after the
    /// password, so that the lists are not revealed to someone who does not know one. Lock held.
    func adminLoggedIn(_ client: ClientConnection) {
        let access: AdminAccess
        if config.adminUsers.contains(client.user) || isConsoleOwner(client) {
            access = .admin
        } else if config.statsUsers.contains(client.user) {
            access = .stats
        } else {
            return client.refuse(
                .fatal(
                    .insufficientPrivilege, "not allowed to use the admin console",
                    hint: "list the user in admin_users or stats_users"))
        }
        adminSessions[client.id] = AdminSession(access: access)
        var parameters = [
            ("server_version", Self.consoleServerVersion), ("server_encoding", "UTF8"), ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"), ("TimeZone", "GMT"), ("IntervalStyle", "postgres"),
            ("standard_conforming_strings", "on"), ("integer_datetimes", "on"),
        ]
        let applicationName = client.startupParameters.first { $0.name.lowercased() == "application_name" }?.value
        parameters.append(("application_name", applicationName ?? ""))
        client.finishAdminLogin(parameters: parameters)
    }

    /// As PgBouncer: user `pgbouncer` on the Unix socket, from the account Sluice runs as, is an admin and
    /// needs no password.
    func isConsoleOwner(_ client: ClientConnection) -> Bool {
        client.user == "pgbouncer" && client.peer.isUnix && Socket.peerUserID(client.fd) == geteuid()
    }

    // MARK: Input

    /// Reads what a console client sent: each Query runs one command; the extended protocol is refused.
    func processAdminInput(_ client: ClientConnection) {
        defer { client.flushOrGone() }
        while !client.isClosed {
            guard let session = adminSessions[client.id], !session.isBusy else { return }
            let header: MessageHeader
            do {
                guard let peeked = try MessageHeader.peek(client.input, maximumLength: holdWholeLimit) else { return }
                header = peeked
            } catch {
                return client.fail(.fatal(.protocolViolation, "invalid message from client: \(error)"))
            }
            guard client.input.readableBytes >= header.totalLength else {
                client.input.reserveWritable(header.totalLength - client.input.readableBytes)
                return
            }
            let body = client.input.bytes(at: 5, count: header.bodyLength)
            client.input.moveReaderIndex(forwardBy: header.totalLength)
            switch FrontendMessageCode(rawValue: header.code) {
            case .terminate:
                return client.gone("client sent Terminate", graceful: true)
            case .query where !session.skippingToSync:
                let text = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                runAdminQuery(text, client: client, session: session)
            case .sync:
                session.skippingToSync = false
                client.output.writeReadyForQuery(.idle)
            case .flush:
                continue
            case .parse, .bind, .describe, .execute, .close, .query:
                if !session.skippingToSync {
                    session.skippingToSync = true
                    client.output.writeErrorResponse(
                        .error(
                            .featureNotSupported, "extended query protocol not supported by admin console",
                            hint: "use the simple query protocol (psql, or a driver's simple-query mode)"))
                }
            default:
                return client.fail(.fatal(.protocolViolation, "invalid frontend message type \(header.code)"))
            }
        }
    }

    /// Runs one console statement and writes its reply, now or, for a command that waits, later.
    func runAdminQuery(_ text: String, client: ClientConnection, session: AdminSession) {
        let command: AdminCommand
        do {
            command = try AdminCommand.parse(text)
        } catch {
            return adminReply(client, .failure(.error(.syntaxError, error.message)))
        }
        if session.access == .stats && !command.isReadOnly {
            return adminReply(
                client,
                .failure(
                    .error(
                        .insufficientPrivilege, "admin access needed",
                        hint: "stats_users may only run SHOW; this command needs a user in admin_users")))
        }
        if client.logs(.info) && !command.isReadOnly {
            let trimmed = text.split(whereSeparator: \.isNewline).joined(separator: " ")
            client.logger.info("admin command", [("command", String(trimmed.prefix(200)))])
        }
        shared.lock.lock()
        defer { shared.lock.unlock() }
        switch command {
        case .empty:
            client.output.write(byte: BackendMessageCode.emptyQueryResponse.rawValue)
            client.output.write(uint32: 4)
            client.output.writeReadyForQuery(.idle)
        case .show(let name):
            showView(name, client: client, session: session)
        default:
            let outcome = runControlCommand(command, client: client)
            switch outcome {
            case .reply(let result): adminReply(client, result)
            case .wait(let wait):
                session.isBusy = true
                shared.adminWaits.append(wait)
                checkAdminWaits()
            case .later:
                session.isBusy = true
            case .answered:
                break
            }
        }
    }

    /// Writes a command's reply and the ReadyForQuery after it, on the client's own loop.
    func adminReply(_ client: ClientConnection, _ result: Result<AdminResult, ErrorFields>) {
        switch result {
        case .success(let result): result.encode(into: &client.output)
        case .failure(let error): client.output.writeErrorResponse(error)
        }
        client.output.writeReadyForQuery(.idle)
        if let session = adminSessions[client.id], session.isBusy {
            session.isBusy = false
            client.flushOrGone()
            // Messages that arrived behind the command wait in the input.
            client.scheduleDrive()
        }
    }

    /// Delivers a reply to a console client of any loop; dropped if the client has left. Lock held.
    func adminReply(clientID: Int, _ result: Result<AdminResult, ErrorFields>) {
        let home = shared.owner(ofClient: clientID)
        let deliver: (Proxy) -> Void = { proxy in
            guard let client = proxy.clients[clientID], !client.isClosed else { return }
            proxy.adminReply(client, result)
            client.flushOrGone()
        }
        if home === self { deliver(self) } else { home.post(deliver) }
    }

    // MARK: Views

    /// Gathers every loop's connections, then answers `SHOW name` with the lock held.
    func showView(_ name: String, client: ClientConnection, session: AdminSession) {
        if let setting = AdminCommand.sessionSettings.first(where: { $0 == name }) {
            return adminReply(client, .success(Self.fakeSetting(setting)))
        }
        guard Self.viewNames.contains(name) else {
            return adminReply(
                client, .failure(.error(.syntaxError, "unknown SHOW view: \(name)", hint: "SHOW HELP lists them")))
        }
        if name == "fds" {
            return adminReply(
                client,
                .failure(
                    .error(
                        .featureNotSupported, "SHOW FDS is for PgBouncer's online restart, which Sluice does not do")))
        }
        let clientID = client.id
        session.isBusy = true
        gatherSnapshots { proxy, snapshot in
            let result = proxy.view(name, snapshot: snapshot)
            proxy.adminReply(clientID: clientID, .success(result))
        }
    }

    static let viewNames: Set<String> = [
        "help", "version", "config", "databases", "pools", "clients", "servers", "users", "stats", "stats_totals",
        "stats_averages", "totals", "lists", "state", "mem", "peers", "peer_pools", "sockets", "active_sockets",
        "dns_hosts", "dns_zones", "fds", "backends", "latency",
    ]

    /// The answer to `SHOW client_encoding` and the other settings drivers look at: the console's fixed ones.
    static func fakeSetting(_ name: String) -> AdminResult {
        let value: String
        switch name {
        case "client_encoding": value = "UTF8"
        case "datestyle": value = "ISO"
        case "timezone": value = "GMT"
        case "standard_conforming_strings": value = "on"
        case "default_transaction_isolation": value = "read committed"
        case "intervalstyle": value = "postgres"
        case "extra_float_digits": value = "1"
        default: value = ""
        }
        return AdminResult(columns: [AdminResult.Column(name, .text)], rows: [[value]])
    }

    /// Asks every loop for a picture of its connections; `done` runs on this loop, lock held, once all
    /// have answered. Each loop describes only connections it drives, so no connection is read by a thread
    /// that does not own it.
    func gatherSnapshots(_ done: @escaping (Proxy, AdminSnapshot) -> Void) {
        let gathering = SnapshotGathering(expected: shared.workers.count, done: done)
        for worker in shared.workers {
            if worker === self {
                gathering.add(adminSnapshot(), on: self)
            } else {
                worker.post { [unowned self] other in
                    let part = other.adminSnapshot()
                    self.post { proxy in gathering.add(part, on: proxy) }
                }
            }
        }
    }

    // MARK: Waits

    /// Answers the console commands whose wait is over. Loop 0 calls this at every tick; commands call it
    /// when they start. Lock held.
    func checkAdminWaits() {
        guard !shared.adminWaits.isEmpty else { return }
        var still: [AdminWait] = []
        for wait in shared.adminWaits {
            let affected = pools.values.filter { wait.database == nil || $0.key.database == wait.database }
            let done: Bool
            switch wait.kind {
            case .pause:
                let resumed = !paused && (wait.database.map { !shared.pausedDatabases.contains($0) } ?? true)
                if resumed {
                    // A RESUME came first.
                    adminReply(
                        clientID: wait.clientID,
                        .failure(.error(.queryCanceled, "\(wait.tag) was canceled: the database was resumed")))
                    continue
                }
                retireIdleServers(of: wait.database, reason: "pool paused")
                done = affected.allSatisfy { $0.servers.isEmpty }
            case .waitClose(let servers):
                done = affected.allSatisfy { pool in pool.servers.keys.allSatisfy { !servers.contains($0) } }
            }
            if done {
                let what = wait.database ?? "every database"
                let notice =
                    wait.tag == "PAUSE"
                    ? "\(what) paused: no server connection is open; RESUME lets clients on"
                    : "the server connections of \(what) marked for closing are closed"
                adminReply(clientID: wait.clientID, .success(.command(wait.tag, notice: notice)))
            } else {
                still.append(wait)
            }
        }
        shared.adminWaits = still
    }
}

/// Collects the loops' answers for one console view.
final class SnapshotGathering {
    private var expected: Int
    private var snapshot = AdminSnapshot()
    private let done: (Proxy, AdminSnapshot) -> Void

    init(expected: Int, done: @escaping (Proxy, AdminSnapshot) -> Void) {
        self.expected = expected
        self.done = done
    }

    /// Only ever called on the asking loop.
    func add(_ part: AdminSnapshot, on proxy: Proxy) {
        snapshot += part
        expected -= 1
        if expected == 0 { done(proxy, snapshot) }
    }
}
