import Glibc
import SluiceCore
import SluiceIO

/// What a console command does now: reply, wait for something (PAUSE, WAIT_CLOSE), or leave the reply to
/// another loop (KILL_CLIENT of a client there).
enum AdminOutcome {
    case reply(Result<AdminResult, ErrorFields>)
    case wait(AdminWait)
    /// Another loop replies (KILL_CLIENT).
    case later
    /// The reply is already written (SHUTDOWN, which must reach the client before Sluice stops).
    case answered
}

/// The console's commands that steer Sluice.
extension Proxy {

    /// Runs a command other than SHOW. Lock held.
    func runControlCommand(_ command: AdminCommand, client: ClientConnection) -> AdminOutcome {
        func done(_ tag: String, notice: String? = nil) -> AdminOutcome {
            .reply(.success(.command(tag, notice: notice)))
        }
        func failed(_ state: SQLState, _ message: String, hint: String? = nil) -> AdminOutcome {
            .reply(.failure(.error(state, message, hint: hint)))
        }
        if let database = command.database, !isKnownDatabase(database) {
            return failed(.invalidCatalogName, "no such database: \(database)")
        }
        switch command {
        case .show, .empty:
            preconditionFailure("\(command) is not a control command")
        case .set(let key, let value):
            if AdminCommand.sessionSettings.contains(key) { return done("SET") }
            do {
                let fresh = try config.setting(key, to: value)
                let tls = try TLSContexts(fresh)
                let shown = ConfigKey.named(key)?.isSensitive == true ? "<redacted>" : value
                apply(fresh, tls: tls)
                return done("SET", notice: "\(key) = \(shown); a RELOAD reads the file again and undoes it")
            } catch {
                return failed(.invalidParameterValue, (error as? ConfigError)?.message ?? "\(error)")
            }
        case .reload:
            if let error = reloadConfiguration() {
                return failed(.configFileError, "reload failed, the running configuration stays: \(error)")
            }
            return done("RELOAD", notice: "configuration reloaded from \(config.sourceFile ?? "the environment")")
        case .pause(let database):
            if let database {
                guard !paused, shared.pausedDatabases.insert(database).inserted else {
                    return failed(.objectNotInPrerequisiteState, "database \(database) is already paused")
                }
                for pool in pools.values where pool.key.database == database { pool.isPaused = true }
            } else {
                guard !paused else { return failed(.objectNotInPrerequisiteState, "Sluice is already paused") }
                paused = true
            }
            logger.info("paused from the admin console", [("db", database ?? "*")])
            retireIdleServers(of: database, reason: "pool paused")
            return .wait(AdminWait(kind: .pause, database: database, clientID: client.id, tag: "PAUSE"))
        case .resume(let database):
            if let database {
                guard shared.pausedDatabases.remove(database) != nil else {
                    return failed(.objectNotInPrerequisiteState, "database \(database) is not paused")
                }
                for pool in pools.values where pool.key.database == database { pool.isPaused = false }
            } else {
                guard paused || !shared.pausedDatabases.isEmpty else {
                    return failed(.objectNotInPrerequisiteState, "Sluice is not paused")
                }
                paused = false
                shared.pausedDatabases.removeAll()
                for pool in pools.values { pool.isPaused = false }
            }
            logger.info("resumed from the admin console", [("db", database ?? "*")])
            resumeWaitingClients()
            checkAdminWaits()
            return done("RESUME", notice: "\(database ?? "every database") resumed")
        case .disable(let database):
            shared.disabledDatabases.insert(database)
            return done("DISABLE", notice: "new clients of \(database) are refused until ENABLE; connected ones stay")
        case .enable(let database):
            shared.disabledDatabases.remove(database)
            return done("ENABLE", notice: "\(database) accepts new clients")
        case .reconnect(let database):
            var count = 0
            for pool in pools.values where database == nil || pool.key.database == database {
                count += pool.servers.count
                markServersForClosing(pool, reason: "RECONNECT from the admin console")
            }
            return done(
                "RECONNECT",
                notice: "\(count) server connections close once released; new ones are opened as clients need them")
        case .kill(let database):
            // As PgBouncer: the database's connections go at once, and new clients wait until RESUME.
            if let database {
                shared.pausedDatabases.insert(database)
                for pool in pools.values where pool.key.database == database { pool.isPaused = true }
            } else {
                paused = true
            }
            logger.info("KILL from the admin console", [("db", database ?? "*")])
            everyLoop { proxy in
                // By the name the client asked for: one still logging in has no pool yet. One that has not
                // sent its startup packet has asked for nothing.
                for other in Array(proxy.clients.values) where !other.isAdminConsole && !other.database.isEmpty {
                    guard database == nil || other.database == database else { continue }
                    other.fail(.fatal(.adminShutdown, "database \(other.database) was killed from the admin console"))
                }
            }
            retireIdleServers(of: database, reason: "KILL from the admin console")
            return done(
                "KILL",
                notice: "the connections of \(database ?? "every database") are closed; new clients wait until RESUME")
        case .killClient(let id):
            let asker = client.id
            shared.owner(ofClient: id).post { proxy in
                guard let target = proxy.clients[id], !target.isClosed else {
                    return proxy.adminReply(
                        clientID: asker, .failure(.error(.undefinedObject, "no client with id \(id)")))
                }
                target.fail(.fatal(.adminShutdown, "this connection was killed from the admin console"))
                proxy.adminReply(clientID: asker, .success(.command("KILL_CLIENT")))
            }
            return .later
        case .suspend:
            // TODO: SUSPEND (flush every buffer, stop reading) exists for PgBouncer's online restart, which
            // Sluice lacks; it would come with handing sockets to a new process.
            return failed(
                .featureNotSupported, "SUSPEND prepares PgBouncer's online restart, which Sluice does not have",
                hint: "PAUSE waits for servers to be released; SHUTDOWN WAIT_FOR_CLIENTS stops without cutting clients")
        case .shutdown(let wait):
            adminReply(client, .success(.command("SHUTDOWN")))
            _ = client.flushOutput()
            switch wait {
            case .immediately:
                logger.info("SHUTDOWN from the admin console: exiting now")
                stopAll()
            case .forServers: beginShutdown(.waitForTransactions, reason: "SHUTDOWN WAIT_FOR_SERVERS")
            case .forClients: beginShutdown(.waitForClients, reason: "SHUTDOWN WAIT_FOR_CLIENTS")
            }
            return .answered
        case .waitClose(let database):
            let clientID = client.id
            gatherSnapshots { proxy, snapshot in
                let marked = snapshot.connections.filter { connection in
                    connection.isServer && connection.closeNeeded
                        && (database == nil || connection.database == database)
                }
                proxy.shared.adminWaits.append(
                    AdminWait(
                        kind: .waitClose(Set(marked.map(\.id))), database: database, clientID: clientID,
                        tag: "WAIT_CLOSE"))
                proxy.checkAdminWaits()
            }
            return .later
        }
    }

    /// Whether clients could reach a database of this name: configured, served through `*`, or with a pool.
    func isKnownDatabase(_ name: String) -> Bool {
        config.databases[name] != nil || config.databases["*"] != nil || pools.keys.contains { $0.database == name }
    }

    /// Servers of the pool close once released; idle ones close now (RECONNECT, a changed address). Lock held.
    func markServersForClosing(_ pool: Pool, reason: String) {
        for server in Array(pool.servers.values) {
            onDriver(of: server) { proxy in
                guard !server.isClosed else { return }
                server.closeWhenReleased = true
                if server.pool.machine.idleServerRetired(server.id) {
                    server.retire(reason)
                    proxy.serverRemoved(server)
                }
            }
        }
    }
}

extension AdminCommand {
    /// The database a command names, if any.
    var database: String? {
        switch self {
        case .pause(let name), .resume(let name), .reconnect(let name), .kill(let name), .waitClose(let name): name
        case .disable(let name), .enable(let name): name
        default: nil
        }
    }
}
