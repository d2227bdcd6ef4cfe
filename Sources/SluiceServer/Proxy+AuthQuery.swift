import SluiceCore
import SluiceIO

/// Where look-ups for one set of clients run: a `[databases]` entry, the auth_user, and the query.
struct AuthLookupKey: Hashable {
    var database: String
    var user: String
    var query: String
}

/// One auth_user's look-ups on one database: a connection of Sluice's own on loop 0 (outside the pools,
/// like the routing monitor's), and the users waiting to be looked up. Questions are pipelined: each is a
/// Query of its own, and PostgreSQL answers them in order, one ReadyForQuery each (an error included).
final class AuthLookup {
    let key: AuthLookupKey
    var pool: Pool?
    /// Users not asked yet, in arrival order.
    var queue: [String] = []
    /// Users asked and not answered yet, in the order asked, with when each was asked.
    var inFlight: [(user: String, sentAt: Double)] = []
    /// Clients parked until their user's answer comes, with how each wanted to be routed.
    var waiting: [String: [(clientID: Int, route: RouteSetting)]] = [:]

    init(key: AuthLookupKey) {
        self.key = key
    }
}

/// `auth_user` + `auth_query`: users the auth_file does not list are looked up in PostgreSQL. The client
/// is then checked against the secret found (md5 or a SCRAM verifier; a role past `rolvaliduntil` has none
/// and fails like a wrong password), and Sluice logs in to PostgreSQL for it with the md5 hash or with the
/// SCRAM keys the client proved: it never holds the plaintext password.
extension Proxy {
    /// Where `client`'s user would be looked up; nil when the auth_file knows the user, the method needs no
    /// secret, or the database has no auth_user.
    func authLookupKey(for client: ClientConnection, database: DatabaseConfig) -> AuthLookupKey? {
        guard config.userList.users[client.user] == nil else { return nil }
        switch config.authType {
        case .any, .cert: return nil
        default: break
        }
        guard let authUser = database.authUser ?? config.authUser else { return nil }
        return AuthLookupKey(
            database: database.authDBName ?? config.authDBName ?? client.database, user: authUser,
            query: database.authQuery ?? config.authQuery)
    }

    /// Parks `client` until its user is looked up. Lock held.
    func lookUpUser(_ client: ClientConnection, key: AuthLookupKey, route: RouteSetting) {
        client.state = .awaitingLookup
        let lookup: AuthLookup
        if let existing = shared.authLookups[key] {
            lookup = existing
        } else {
            lookup = AuthLookup(key: key)
            shared.authLookups[key] = lookup
        }
        if lookup.waiting[client.user] == nil && !lookup.inFlight.contains(where: { $0.user == client.user }) {
            lookup.queue.append(client.user)
        }
        lookup.waiting[client.user, default: []].append((client.id, route))
        let runner = shared.workers[0]
        if runner === self { runAuthLookup(lookup) } else { runner.post { $0.runAuthLookup(lookup) } }
    }

    /// Asks every queued question at once (a burst of new users costs one round trip, not one each), opening
    /// the look-up connection first when there is none. Loop 0, lock held.
    func runAuthLookup(_ lookup: AuthLookup) {
        guard !lookup.queue.isEmpty else { return }
        guard let pool = lookup.pool else {
            guard let pool = authLookupPool(lookup) else {
                return authLookupFailed(lookup, reason: "auth_user \(lookup.key.user) has no password Sluice can use")
            }
            lookup.pool = pool
            return openServer(pool)
        }
        // Still logging in: `authLookupLoggedIn` asks.
        guard let server = pool.servers.values.first, server.isLoggedIn, !server.isClosed else { return }
        let now = Syscall.monotonicNow()
        for user in lookup.queue {
            lookup.inFlight.append((user, now))
            server.sendSluiceQuery(AuthQuery.text(lookup.key.query, user: user), purpose: .authQuery)
        }
        lookup.queue.removeAll()
        server.flushOrLose()
    }

    /// A look-up that got no answer within `server_connect_timeout` (at least 2 s) fails its clients, and
    /// the next one starts on a new connection. Loop 0's tick, lock held.
    func expireAuthLookups(_ now: Double) {
        let limit = max(2, config.serverConnectTimeout)
        for lookup in shared.authLookups.values where now - (lookup.inFlight.first?.sentAt ?? now) >= limit {
            authLookupFailed(lookup, reason: "auth_query got no answer within \(limit) s")
        }
    }

    private func authLookupPool(_ lookup: AuthLookup) -> Pool? {
        guard let database = config.database(named: lookup.key.database) else { return nil }
        let user = lookup.key.user
        // The auth_user's own secret from the auth_file, or keys one of its clients proved.
        let credential =
            serverCredential(database: database, serverUser: user, config: config)
            ?? pools.values.first { $0.serverUser == user && $0.credential != .none }?.credential
            ?? shared.provenKeys[user].map(ServerCredential.scramKeys)
        guard let credential else { return nil }
        let pool = ownConnectionPool(
            name: lookup.key.database, database: database, user: user, credential: credential,
            applicationName: "sluice auth_query")
        pool.authLookup = lookup
        return pool
    }

    /// The look-up connection logged in. Lock held.
    func authLookupLoggedIn(_ server: ServerConnection) {
        server.state = .active
        if let lookup = server.pool.authLookup { runAuthLookup(lookup) }
    }

    /// The answer for the user in flight. Lock held.
    func authLookupAnswered(_ server: ServerConnection, rows: [[String?]]) {
        guard let lookup = server.pool.authLookup, lookup.pool === server.pool, !lookup.inFlight.isEmpty else {
            return
        }
        let user = lookup.inFlight.removeFirst().user
        let secret = AuthQuery.secret(from: rows)
        shared.authCache.store(
            secret, for: AuthQueryCache.Key(database: lookup.key.database, user: user), now: Syscall.monotonicNow())
        for (id, route) in lookup.waiting.removeValue(forKey: user) ?? [] {
            let home = shared.owner(ofClient: id)
            if home === self {
                resumeLogin(clientID: id, route: route, lookedUp: secret)
            } else {
                home.post { $0.resumeLogin(clientID: id, route: route, lookedUp: secret) }
            }
        }
        runAuthLookup(lookup)
    }

    /// The look-up connection could not be opened, or was lost: every client waiting on it is refused, and
    /// the next client's look-up opens a new one. Lock held.
    func authLookupFailed(_ lookup: AuthLookup, reason: String) {
        logger.warning(
            "auth_query look-up failed",
            [("db", lookup.key.database), ("auth_user", lookup.key.user), ("error", reason)])
        closeConnection(of: lookup, reason: reason)
        let waiting = lookup.waiting.values.flatMap { $0 }
        lookup.pool = nil
        lookup.inFlight = []
        lookup.queue = []
        lookup.waiting = [:]
        // The reason (it may name the auth_user) goes to the log only.
        let refusal = ErrorFields.fatal(.sqlclientUnableToEstablishConnection, "could not look up the user")
        for (id, _) in waiting {
            let home = shared.owner(ofClient: id)
            if home === self {
                clients[id]?.refuse(refusal)
            } else {
                home.post { $0.clients[id]?.refuse(refusal) }
            }
        }
    }

    private func closeConnection(of lookup: AuthLookup, reason: String) {
        guard let pool = lookup.pool else { return }
        for server in Array(pool.servers.values) {
            onDriver(of: server) { proxy in
                server.retire("auth_query: \(reason)")
                proxy.forgetServer(server)
            }
        }
    }

    /// After a reload, look-ups nobody waits for close: the next login opens one with the new settings
    /// (auth_user, its password, the database's address). Lock held.
    func closeIdleAuthLookups() {
        for (key, lookup) in shared.authLookups where lookup.inFlight.isEmpty && lookup.waiting.isEmpty {
            closeConnection(of: lookup, reason: "configuration reloaded")
            shared.authLookups[key] = nil
        }
    }

    /// A parked client's user was looked up: its login goes on where `startupCompleted` left it. Lock held.
    func resumeLogin(clientID: Int, route: RouteSetting, lookedUp: StoredSecret?) {
        guard let client = clients[clientID], !client.isClosed, case .awaitingLookup = client.state else { return }
        beginLogin(client, route: route, lookedUp: lookedUp)
    }

    /// What Sluice logs in to PostgreSQL with for a looked-up user: its md5 hash (a SCRAM verifier gives
    /// nothing to log in with; the keys the client proves do, in `clientAuthenticated`).
    func adoptLookedUpCredential(_ secret: StoredSecret, pool: Pool, user: String) {
        guard pool.serverUser == user, pool.credential == .none else { return }
        switch secret {
        case .md5(let hash): pool.credential = .md5Hash(hash)
        case .plain(let password): pool.credential = .password(password)
        case .scram: break
        }
    }
}
