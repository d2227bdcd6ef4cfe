import SluiceCore
import SluiceIO

/// One application connection to Sluice: startup, authentication, then queries forwarded to whichever
/// server the pool lends it.
final class ClientConnection: Connection {
    enum State {
        /// Waiting for the startup packet (after an optional SSLRequest or GSSENCRequest).
        case startup
        /// Shaking hands after 'S' (or at once: `direct`, PostgreSQL 17's `sslnegotiation=direct`).
        case tlsHandshake(direct: Bool)
        /// Boxed: the exchange is large and lives only during login, while the state lives as long as the
        /// client. Inline, it would make every idle client carry its size.
        case authenticating(AuthenticationExchange)
        /// Its user is being looked up with `auth_query`; input waits until the answer comes.
        case awaitingLookup
        /// Authenticated; waiting for a server login to learn the parameters to greet the client with.
        case awaitingWelcome
        case ready
        case closed
    }

    // Thousands of clients sit idle at a time, so every stored property here costs per client: what
    // only login needs is boxed or dropped after it, and what clients have in common is shared. They are
    // laid out in the order declared; the order keeps padding out (the flags fill the end of `peer`).
    var state: State = .startup
    var cancelKey: (processID: Int32, secretKey: Int32) = (0, 0)
    let peer: PeerAddress
    var isWaitingForServer = false
    var transactionStatus = TransactionStatus.idle
    /// Counted in the per-database and per-user client counts (Proxy+Limits.swift), under `database`
    /// and `user`, which do not change once counted.
    var isCounted = false
    /// The startup packet named the database and user: log lines carry them from then on.
    private var isIdentified = false
    /// The client logged in to the admin console (database `pgbouncer` or `sluice`) rather than to a pool.
    var isAdminConsole = false
    /// The client speaks protocol 3.2: its cancel key is the 32-byte one (`CancelKey`).
    var hasExtendedCancelKey = false
    /// The client heard, by a NOTICE, that its wait for a server passed `query_wait_notify`; cleared when it
    /// gets one. (The last flag that fits in `peer`'s padding: another one makes every client 8 bytes larger.)
    var isToldOfWait = false
    let connectedAt: Double
    var user = ""
    var database = ""
    var pool: Pool?
    /// Set for clients of a database that routes reads (ClientConnection+Routing.swift).
    var routing: ClientRouting?
    /// The loop's `routingGeneration` when `routing` was last made to match the configuration.
    var routingGeneration: UInt16 = 0
    /// The server lent to this client. Output buffers of clients without one go back to the loop.
    var server: ServerConnection? {
        didSet { if server != nil { takeSpareOutput() } }
    }
    var waitingSince: Double = 0
    /// Usually the storage of another client's equal set (see `finishLogin`).
    var parameters = ParameterSet()
    /// The tracked parameters of the startup packet, until `finishLogin` has put them in `parameters`.
    var startupParameters: [StartupParameter] = []
    private var refusalBox: Boxed<ErrorFields>?
    /// Shared with the other clients of the loop that got the same timeouts; nil for all zero.
    private var timeoutsBox: Boxed<ClientTimeouts>?
    /// Coarse time of the last message from the client, for `client_idle_timeout`.
    var lastActivity: Double = 0
    /// Settings PostgreSQL does not report back, by lower-case name: startup parameters (`options`,
    /// `search_path`, `extra_float_digits`, …), then whatever a session check found after the client's
    /// SET, RESET or set_config. Every server the client is lent is given exactly these.
    var sessionSettings: SessionSettings = [:]
    /// Named statements sent to servers untracked (`max_prepared_statements = 0`) whose text may change
    /// the session, by the client's names: a Bind of one runs that text again.
    var untrackedStatementEffects: [String: SessionTextScan] = [:]
    /// When the current transaction's first request reached the server, for `transaction_timeout`.
    var transactionStartedAt: Double?
    /// Named statements the client prepared with Parse, by the client's names, while Sluice tracks them
    /// (transaction and statement pooling).
    var statements: [String: PreparedStatement] = [:]

    init(id: Int, transport: any Transport, peer: PeerAddress, proxy: Proxy, now: Double) {
        self.peer = peer
        self.connectedAt = now
        super.init(id: id, transport: transport, proxy: proxy, logger: proxy.logger)
        writable = true
    }

    /// Set when the client must be turned away (a limit was reached) as soon as it has said who it is.
    var refusal: ErrorFields? {
        get { refusalBox?.value }
        set { refusalBox = newValue.map { Boxed($0) } }
    }

    /// This client's timeouts: the global ones with its user's overrides, as they were when it logged in.
    var timeouts: ClientTimeouts {
        get { timeoutsBox?.value ?? ClientTimeouts() }
        set {
            if newValue == ClientTimeouts() {
                timeoutsBox = nil
            } else if let recent = proxy.recentTimeouts, recent.value == newValue {
                timeoutsBox = recent
            } else {
                let box = Boxed(newValue)
                proxy.recentTimeouts = box
                timeoutsBox = box
            }
        }
    }

    /// The loop's logger with this client's keys: `client` and `peer`, then `db` and `user` once the
    /// startup packet named them. Made for each line rather than kept, which would cost every idle
    /// client an array of its own.
    override var logger: Logger {
        get {
            var logger = super.logger
            logger.metadata.reserveCapacity(logger.metadata.count + 4)
            logger.metadata.append(("client", "C\(id)"))
            logger.metadata.append(("peer", peer.description))
            if isIdentified {
                logger.metadata.append(("db", database))
                logger.metadata.append(("user", user))
            }
            return logger
        }
        set { super.logger = newValue }
    }

    /// Whether lines at `level` are written. Asked before `logger` on paths every connection takes:
    /// gathering a client's keys costs more than the rest of its bookkeeping there.
    func logs(_ level: LogLevel) -> Bool { super.logger.enabled(level) }

    var isReady: Bool {
        if case .ready = state { return true }
        return false
    }

    var isLoggingIn: Bool {
        switch state {
        case .startup, .tlsHandshake, .awaitingLookup, .authenticating, .awaitingWelcome: true
        case .ready, .closed: false
        }
    }

    // MARK: Events

    override func drive() {
        if isClosed { return }
        defer { releaseIdleBuffers() }
        guard flushOutput() else { return gone("write to client failed") }
        // One tag compare on the data path; TLS and its handshake concern logins only.
        guard isReady || prepareTransport() else { return }
        if let server, server.stalledByPeer, output.readableBytes < Self.outputLowWater {
            // The client drained what the server had sent: let the server go on.
            server.stalledByPeer = false
            server.scheduleDrive()
        }
        while !isClosed {
            processInput()
            if isClosed || isWaitingForServer { return }
            if let server, server.outputIsCongested {
                if peerHungUp { return gone("client closed the connection while its data was still queued") }
                stalledByPeer = true
                return
            }
            if input.readableBytes >= Self.readChunk * 4 && server == nil { return }
            switch readOnce() {
            case .data:
                lastActivity = proxy.coarseNow
                continue
            case .nothing: return
            case .closed:
                return gone("client closed the connection")
            }
        }
    }

    private func processInput() {
        switch state {
        case .startup:
            processStartup()
        case .authenticating:
            processAuthentication()
        case .tlsHandshake, .awaitingLookup, .awaitingWelcome, .closed:
            return
        case .ready:
            if isAdminConsole { proxy.processAdminInput(self) } else { processQueries() }
        }
    }

    /// An idle client holds no buffer memory: what it reads next goes into a spare buffer from the pool.
    /// This is what keeps thousands of idle clients cheap.
    private func releaseIdleBuffers() {
        if input.isEmpty && input.capacity > 0, case .none = passthrough {
            proxy.recycle(input.takeStorage())
        }
        releaseIdleOutput()
    }

    /// Gives an empty output buffer back to the loop once no server writes into it. It comes back with
    /// the next server or the next message Sluice writes itself (`takeSpareOutput`), so the buffers go
    /// round between clients rather than to the allocator.
    private func releaseIdleOutput() {
        if output.isEmpty && output.capacity > 0 && server == nil { proxy.recycleOutput(output.takeStorage()) }
    }

    /// Gives the output a spare buffer of the loop when it holds none, before anything is written to it.
    /// Without one the first write allocates a buffer.
    func takeSpareOutput() {
        if output.capacity == 0, let spare = proxy.spareOutputs.popLast() { output = ByteBuffer(recycling: spare) }
    }

    /// Tells a client queued for `query_wait_notify` seconds that it waits for a server, as PgBouncer 1.25
    /// does, so that a slow query can be told apart from a full pool. Its output holds only whole
    /// messages while it waits, so the notice can go at once.
    func noticeWaiting(pool: Pool) {
        isToldOfWait = true
        takeSpareOutput()
        output.writeNoticeResponse(
            ErrorFields(
                severity: "NOTICE", sqlState: "00000",
                message: "no server connection of pool \(pool.key) is free; this client is queued",
                detail: "query_wait_notify (\(Proxy.seconds(proxy.config.queryWaitNotify))) passed"))
        flushOrGone()
    }

    /// A leaving client's buffers go back to the loop for the next client to log in; what they still held
    /// goes with the socket.
    override func closeSocket() {
        guard !isClosed else { return }
        input.clear()
        output.clear()
        if input.capacity > 0 { proxy.recycle(input.takeStorage()) }
        if output.capacity > 0 { proxy.recycleOutput(output.takeStorage()) }
        super.closeSocket()
    }

    /// Called by a server after it wrote replies into this client's output.
    func flushAfterServerOutput() {
        guard !isClosed else { return }
        if !flushOutput() { return gone("write to client failed") }
        releaseIdleOutput()
    }

    // MARK: Startup

    private func processStartup() {
        let decoded: (StartupPacket, length: Int)?
        do {
            decoded = try StartupPacket.decode(from: input)
        } catch {
            return refuse(.fatal(.protocolViolation, error.message))
        }
        guard let (packet, length) = decoded else { return }
        input.moveReaderIndex(forwardBy: length)
        switch packet {
        case .sslRequest, .gssEncRequest:
            // Anything the client sent behind the request would be read as if it came after an
            // encryption handshake that never happened.
            guard input.isEmpty else {
                return refuse(.fatal(.protocolViolation, "received unencrypted data after encryption request"))
            }
            guard !isTLS else {
                return refuse(.fatal(.protocolViolation, "encryption requested on a connection already encrypted"))
            }
            if packet == .sslRequest, let context = proxy.tls.accepting, !peer.isUnix {
                return acceptTLS(context, direct: false)
            }
            takeSpareOutput()
            output.write(byte: 0x4E)
            flushOrGone()
        case .cancelRequest(let processID, let secretKey):
            proxy.cancelRequested(processID: processID, secretKey: secretKey, from: peer)
            closeQuietly()
        case .startup(let major, let minor, let parameters):
            if let refusal { return refuse(refusal) }
            startupReceived(major: major, minor: minor, parameters: parameters)
        }
    }

    private func startupReceived(major: UInt16, minor: UInt16, parameters: [StartupParameter]) {
        guard major == 3 else {
            return refuse(
                .fatal(
                    .featureNotSupported, "unsupported frontend protocol \(major).\(minor): Sluice supports 3.0 to 3.2")
            )
        }
        if proxy.config.clientTLS.sslmode.requiresTLS, !isTLS, !peer.isUnix {
            return refuse(.fatal(.invalidAuthorizationSpecification, "SSL required"))
        }
        var protocolOptions: [String] = []
        var accepted: [StartupParameter] = []
        var settings: [(name: String, value: String)] = []
        for parameter in parameters {
            let name = parameter.name
            if name.hasPrefix("_pq_.") {
                protocolOptions.append(name)
                continue
            }
            switch name.lowercased() {
            case "user":
                user = parameter.value
            case "database":
                database = parameter.value
            case "options":
                do {
                    settings += try StartupOptions.parse(parameter.value)
                } catch {
                    return refuse(.fatal(.protocolViolation, "invalid startup options: \(error.message)"))
                }
            case "replication":
                return refuse(.fatal(.protocolViolation, "unsupported startup parameter: replication"))
            default:
                if proxy.ignoredStartupParameters.contains(name.lowercased()) { continue }
                if proxy.trackedParameters.contains(name.lowercased()) {
                    accepted.append(parameter)
                } else {
                    settings.append((name, parameter.value))
                }
            }
        }
        // Sluice speaks 3.0 and 3.2 (whose only change is the longer cancel key); newer minors are negotiated
        // down to 3.2, and 3.1, which no release used, to 3.0. Protocol options are not supported.
        let negotiatedMinor: UInt16 = minor >= 2 ? 2 : 0
        hasExtendedCancelKey = negotiatedMinor == 2
        if minor != negotiatedMinor || !protocolOptions.isEmpty {
            takeSpareOutput()
            output.writeNegotiateProtocolVersion(
                newestMinor: UInt32(negotiatedMinor), unrecognizedOptions: protocolOptions)
        }
        guard !user.isEmpty else {
            return refuse(
                .fatal(.invalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet"))
        }
        if database.isEmpty { database = user }
        // A tracked parameter given through options behaves as if sent on its own.
        for setting in settings where proxy.trackedParameters.contains(setting.name.lowercased()) {
            accepted.append(StartupParameter(name: setting.name, value: setting.value))
        }
        startupParameters = accepted
        for setting in settings where !proxy.trackedParameters.contains(setting.name.lowercased()) {
            sessionSettings[setting.name.lowercased()] = setting
        }
        isIdentified = true
        proxy.startupCompleted(self)
    }

    /// The proxy chose how to authenticate this client.
    func beginAuthentication(
        _ authentication: ClientAuthentication, route: RouteSetting = .auto, lookedUp: StoredSecret? = nil
    ) {
        let exchange = AuthenticationExchange(authentication, route: route, lookedUp: lookedUp)
        takeSpareOutput()
        switch exchange.auth.start(output: &output) {
        case .accepted:
            authenticated(exchange, keys: nil)
        case .continue:
            state = .authenticating(exchange)
            flushOrGone()
        case .rejected(let error):
            refuse(error)
        }
    }

    private func processAuthentication() {
        guard case .authenticating(let exchange) = state else { return }
        let header: MessageHeader
        do {
            guard let h = try MessageHeader.peek(input, maximumLength: StartupPacket.maximumLength) else { return }
            header = h
        } catch {
            return refuse(.fatal(.protocolViolation, error.message))
        }
        guard input.readableBytes >= header.totalLength else { return }
        guard header.code == FrontendMessageCode.password.rawValue else {
            return refuse(.fatal(.protocolViolation, "expected a password message during authentication"))
        }
        // Logins opened side by side all pass the check at their startup; the one here makes each guess
        // count against the failures before it, however many connections carry them.
        if let refusal = proxy.shared.lock.withLock({ proxy.throttled(self) }) { return refuse(refusal) }
        let body = input.bytes(at: 5, count: header.bodyLength)
        input.moveReaderIndex(forwardBy: header.totalLength)
        takeSpareOutput()
        switch exchange.auth.messageReceived(body, output: &output) {
        case .accepted:
            authenticated(exchange, keys: exchange.auth.provenKeys)
        case .continue:
            flushOrGone()
        case .rejected(let error):
            proxy.logAuthenticationFailure(self, error)
            refuse(error)
        }
    }

    private func authenticated(_ exchange: AuthenticationExchange, keys: SCRAMKeys?) {
        state = .awaitingWelcome
        proxy.clientAuthenticated(self, keys: keys, route: exchange.route, lookedUp: exchange.lookedUp)
    }

    /// Sends AuthenticationOk, the parameters, the cancel key and the first ReadyForQuery.
    func finishLogin(welcome: [(name: String, value: String)]) {
        let greeting: LoginGreeting
        if let recent = proxy.recentGreeting, recent.pool === pool, recent.trackedVersion == proxy.trackedVersion,
            recent.startupParameters == startupParameters
        {
            greeting = recent
        } else {
            greeting = makeGreeting(welcome: welcome)
            proxy.recentGreeting = greeting
        }
        parameters = greeting.parameters
        // They live on in `parameters`.
        startupParameters = []
        takeSpareOutput()
        output.write(bytes: greeting.messages)
        if let routing, routing.setting == .replica {
            // A read-only session (the `_ro` alias, sluice.route=replica) says whether a standby serves it, as a
            // direct connection to one would: libpq's target_session_attrs reads this. The pool's welcome came
            // from the primary. A later ParameterStatus of the same name replaces the earlier one.
            let onStandby = proxy.standbyServesReads(pool)
            output.writeParameterStatus(name: "in_hot_standby", value: onStandby ? "on" : "off")
            parameters["in_hot_standby"] = onStandby ? "on" : "off"
        }
        writeCancelKey()
        output.writeReadyForQuery(.idle)
        state = .ready
        lastActivity = proxy.coarseNow
        if proxy.config.logConnections { logger.info("login", [("pool_mode", "\(pool?.mode.rawValue ?? "?")")]) }
        flushOrGone()
        scheduleDrive()
    }

    /// BackendKeyData with the key Sluice made up for this client: 4 bytes, or 32 for protocol 3.2.
    private func writeCancelKey() {
        if hasExtendedCancelKey {
            output.writeBackendKeyData(
                processID: cancelKey.processID,
                secretKey: CancelKey.extended(
                    processID: cancelKey.processID, secretKey: cancelKey.secretKey,
                    secret: proxy.shared.cancelKeySecret))
        } else {
            output.writeBackendKeyData(processID: cancelKey.processID, secretKey: cancelKey.secretKey)
        }
    }

    /// Greets an admin console client: the console's own parameters, not a pool's.
    func finishAdminLogin(parameters: [(String, String)]) {
        takeSpareOutput()
        output.writeAuthenticationOk()
        for (name, value) in parameters { output.writeParameterStatus(name: name, value: value) }
        writeCancelKey()
        output.writeReadyForQuery(.idle)
        state = .ready
        startupParameters = []
        lastActivity = proxy.coarseNow
        if proxy.config.logConnections { logger.info("login", [("console", "admin")]) }
        flushOrGone()
        scheduleDrive()
    }

    /// Builds what a login with this client's startup parameters sends before its cancel key: the
    /// welcome of the pool's first server, with the client's own values where it sent tracked ones.
    private func makeGreeting(welcome: [(name: String, value: String)]) -> LoginGreeting {
        var built = ParameterSet()
        for (name, value) in welcome where proxy.trackedParameters.contains(ParameterSet.key(name)) {
            built[name] = value
        }
        for parameter in startupParameters { built[parameter.name] = parameter.value }
        // Clients with other startup parameters may still end up with the same set: they share one copy.
        if let recent = proxy.recentGreeting, built == recent.parameters { built = recent.parameters }
        var messages = ByteBuffer()
        messages.writeAuthenticationOk()
        for (name, value) in welcome {
            messages.writeParameterStatus(name: name, value: built[name] ?? value)
        }
        for parameter in startupParameters
        where !welcome.contains(where: { $0.name.lowercased() == parameter.name.lowercased() }) {
            messages.writeParameterStatus(name: parameter.name, value: parameter.value)
        }
        return LoginGreeting(
            pool: pool, trackedVersion: proxy.trackedVersion, startupParameters: startupParameters,
            parameters: built, messages: messages.withReadableBytes { Array($0) })
    }

    // MARK: Queries

    private func processQueries() {
        defer { server?.flushOrLose() }
        while !isClosed {
            if let server {
                switch passthrough {
                case .none: break
                case .forward: continuePassthrough(into: &server.output)
                case .drop: skipPassthrough()
                }
                if case .none = passthrough {} else { return }
                if server.outputIsCongested { return }
            } else if case .drop = passthrough {
                skipPassthrough()
                if case .none = passthrough {} else { return }
            }
            let header: MessageHeader
            do {
                guard let h = try MessageHeader.peek(input, maximumLength: proxy.maxPacketSize) else { return }
                header = h
            } catch {
                return fail(.fatal(.protocolViolation, "invalid message from client: \(error)"))
            }
            guard let code = FrontendMessageCode(rawValue: header.code), code != .password else {
                return fail(.fatal(.protocolViolation, "invalid frontend message type \(header.code)"))
            }
            if code == .terminate {
                input.moveReaderIndex(forwardBy: min(header.totalLength, input.readableBytes))
                return gone("client sent Terminate", graceful: true)
            }
            if server == nil {
                switch code {
                case .copyData, .copyDone, .copyFail:
                    // Leftovers of a COPY the server already ended with an error: the server would drop
                    // them too, and they must not pull a server out of the pool.
                    dropMessage(totalLength: header.totalLength)
                    continue
                default:
                    var request: RouteRequest?
                    if routingGeneration != proxy.routingGeneration { routingChanged() }
                    if let routing {
                        if pool?.mode == .session {
                            // A session stays on one server: only the session's own choice routes it.
                            request = routing.setting == .replica ? .read : .write
                            routing.routedUnitWrites = true
                        } else {
                            switch routeUnit(code, header: header, routing: routing) {
                            case .needMoreInput: return
                            case .answered:
                                // Sluice's own answer leaves now: no server's reply will carry it along.
                                flushAfterServerOutput()
                                continue
                            case .hold: return
                            case .route(let chosen, let writes):
                                request = chosen
                                routing.routedUnitWrites = writes
                                // Only a statement Sluice itself took for a read is retried: one the client sent
                                // to a standby on purpose (sluice.route, the _ro alias, a hint) stays refused.
                                // TODO: extended-protocol units are not retried (the whole unit up to its Sync
                                // would have to be kept); a standby's 25006 reaches the client.
                                routing.mayRetry =
                                    code == .query && chosen == .read && !writes && routing.setting == .auto
                                    && routing.localSetting == nil && transactionStatus == .idle
                            }
                        }
                    }
                    proxy.acquireServer(for: self, request: request)
                    guard server != nil else { return }
                }
            }
            guard let server else { return }
            if let routing {
                if let writes = routing.routedUnitWrites {
                    // The first message of the unit just routed, on the server it was routed to (perhaps after
                    // waiting for it).
                    routing.routedUnitWrites = nil
                    server.mayHaveWritten = writes
                    if !routing.onStandby { routing.mayRetry = false }
                    server.watchesForRetry = routing.mayRetry
                    if let held = routing.heldBegin {
                        routing.heldBegin = nil
                        server.sendSluiceQuery(held, purpose: .heldBegin)
                    }
                } else if routing.mayRetry {
                    // A Query that may still run again on the primary: what follows waits, so that answers
                    // keep their order.
                    routing.awaitingRoute = true
                    return
                } else if transactionStatus == .idle, !routing.inExtendedUnit, pool?.mode != .session, code != .sync {
                    // A new unit on a server still linked (answers to the last one are due, Sluice's own request
                    // runs, or the session is pinned): a standby takes it only if it is a read.
                    switch routeUnit(
                        code, header: header, routing: routing, linked: true,
                        mayAnswer: !server.tracker.clientRequestInFlight)
                    {
                    case .needMoreInput: return
                    case .answered:
                        flushAfterServerOutput()
                        continue
                    case .hold:
                        routing.awaitingRoute = true
                        return
                    case .route(let request, let writes):
                        if writes { server.mayHaveWritten = true }
                        // A pinned standby session (nothing due) keeps its server; the standby answers itself.
                        if routing.onStandby && request == .write && !server.tracker.isQuiet {
                            routing.awaitingRoute = true
                            return
                        }
                    }
                }
                routing.inExtendedUnit = code != .query && code != .sync
            }
            if !server.tracker.clientRequestInFlight { server.requestStartedAt = Syscall.monotonicNow() }
            switch code {
            case .parse, .bind, .describe, .close:
                if code == .parse {
                    server.pendingStats.clientParses &+= 1
                } else if code == .bind {
                    server.pendingStats.binds &+= 1
                }
                guard tracksStatements else {
                    if tracksSession { noteSessionOfUntracked(code, header: header) }
                    break
                }
                switch renameStatement(code, header: header, on: server) {
                case .forward: break
                case .done: continue
                case .needMoreInput: return
                }
            case .query:
                if !statements.isEmpty {
                    switch deallocateStatement(header, on: server) {
                    case .forward: break
                    case .done: continue
                    case .needMoreInput: return
                    }
                }
                if !(statements.isEmpty && server.statementCache.count == 0) { noteStatementRelease(header, textAt: 5) }
                if tracksSession { noteSession(header, textAt: 5) }
            default:
                break
            }
            // A Parse still here goes to the server under the client's name (session pooling, or too large).
            if (code == .parse || code == .query) && !server.holdsClientStatements && createsPreparedStatement(code) {
                server.holdsClientStatements = true
            }
            if code == .parse { server.pendingStats.serverParses &+= 1 }
            server.tracker.frontendMessageSent(code.rawValue)
            forwardMessage(totalLength: header.totalLength, into: &server.output)
        }
    }

    // MARK: Prepared statements

    /// Whether named statements are tracked by Sluice (transaction and statement pooling): the client's
    /// next request may run on another server, so statements are renamed and prepared wherever needed.
    /// A client that has tracked statements stays tracked when a reload sets `max_prepared_statements` to 0:
    /// its statements exist only under their server names.
    private var tracksStatements: Bool {
        (proxy.config.maxPreparedStatements > 0 || !statements.isEmpty) && pool?.mode != .session
    }

    private enum StatementOutcome {
        /// Not a tracked statement: the message goes on as it came.
        case forward
        /// Sluice wrote what stands for the message and consumed it.
        case done
        case needMoreInput
    }

    /// Parse, Bind, Describe and Close naming a statement, in tracked mode. Named statements live on
    /// servers under a name of their content (``PreparedStatement``): a Parse is kept and renamed, Bind
    /// and Describe get the server name (with the statement prepared first where the server lacks it),
    /// and Close forgets it. Unnamed statements, portals and names the client never prepared pass as they
    /// came, so the server answers them exactly as PostgreSQL would.
    private func renameStatement(
        _ code: FrontendMessageCode, header: MessageHeader, on server: ServerConnection
    ) -> StatementOutcome {
        // An unnamed statement (Parse's name comes first) passes, looked at only for DEALLOCATE and DISCARD.
        if code == .parse && input.readableBytes > 5 && input.byte(at: 5) == 0 {
            if !(statements.isEmpty && server.statementCache.count == 0) { noteStatementRelease(header, textAt: 6) }
            noteSession(header, textAt: 6)
            return .forward
        }
        if code == .parse || code == .describe || code == .close {
            // Sluice needs the whole message: a Parse is kept to prepare its statement elsewhere.
            guard input.readableBytes >= header.totalLength else {
                // A statement text too large to keep goes to the server as it came, and stays there.
                if header.totalLength > proxy.holdWholeLimit {
                    server.noteSession(.unread)
                    return .forward
                }
                input.reserveWritable(header.totalLength - input.readableBytes)
                return .needMoreInput
            }
        }
        switch code {
        case .parse:
            let body = input.bytes(at: 5, count: header.bodyLength)
            guard let parse = ParseMessageBody(body), !parse.name.isEmpty else { return .forward }
            input.moveReaderIndex(forwardBy: header.totalLength)
            guard statements[parse.name] == nil else {
                // PostgreSQL's own answer, at the same point of the pipeline. In a failed transaction it
                // rejects the Parse before looking at the name.
                server.failHere(
                    transactionStatus == .failed
                        ? .error(
                            .inFailedSQLTransaction,
                            "current transaction is aborted, commands ignored until end of transaction block")
                        : .error(.duplicatePreparedStatement, "prepared statement \"\(parse.name)\" already exists"))
                return .done
            }
            let limit = proxy.config.maxClientPreparedStatements
            guard limit == 0 || statements.count < limit || transactionStatus == .failed else {
                // Sluice holds every statement a client keeps; a client that never closes any would grow
                // without bound. Refused where PostgreSQL would refuse a Parse, so the client can recover.
                server.failHere(
                    .error(
                        .configurationLimitExceeded,
                        "this client has \(statements.count) prepared statements, the most Sluice keeps for one client",
                        hint: "close statements the client no longer needs, or raise max_client_prepared_statements"))
                return .done
            }
            let statement = PreparedStatement(queryAndTypes: body[(body.startIndex + parse.queryOffset)...])
            statements[parse.name] = statement
            server.prepareForClient(statement, clientName: parse.name)
            return .done
        case .bind:
            // The portal and statement names lead the message; the parameters behind them pass unread.
            guard let statementName = leadingString(header: header, number: 2) else {
                // Malformed, or names longer than anything worth holding: the server judges it as it came.
                if input.readableBytes >= min(header.totalLength, proxy.holdWholeLimit) { return .forward }
                input.reserveWritable(max(0, min(header.totalLength, 8 * 1024) - input.readableBytes))
                return .needMoreInput
            }
            guard !statementName.isEmpty else { return .forward }
            let name = String(
                decoding: input.bytes(at: statementName.lowerBound, count: statementName.count), as: UTF8.self)
            guard let statement = statements[name] else { return .forward }
            server.makeReady(statement)
            server.noteSession(statement.sessionScan)
            let serverName = statement.serverName.utf8
            server.output.write(byte: code.rawValue)
            server.output.write(uint32: UInt32(header.totalLength - 1 - statementName.count + serverName.count))
            server.output.write(bytes: input.bytes(at: 5, count: statementName.lowerBound - 5))
            server.output.write(bytes: serverName)
            server.output.write(byte: 0)
            let consumed = statementName.upperBound + 1
            input.moveReaderIndex(forwardBy: consumed)
            server.tracker.frontendMessageSent(code.rawValue)
            forwardMessage(totalLength: header.totalLength - consumed, into: &server.output)
            return .done
        case .describe, .close:
            guard header.bodyLength > 2, input.byte(at: 5) == UInt8(ascii: "S") else { return .forward }
            let name = String(decoding: input.bytes(at: 6, count: header.bodyLength - 2), as: UTF8.self)
            guard !name.isEmpty, let statement = statements[name] else { return .forward }
            input.moveReaderIndex(forwardBy: header.totalLength)
            if code == .describe {
                server.makeReady(statement)
                server.output.writeDescribe(statement: statement.serverName)
                server.tracker.frontendMessageSent(code.rawValue)
            } else {
                // The statement stays on servers for other clients (and this one, should it prepare it again).
                statements[name] = nil
                server.closeForClient(statement, clientName: name)
            }
            return .done
        default:
            return .forward
        }
    }

    /// A Query that is just `DEALLOCATE name` of one of the client's tracked statements (how drivers whose
    /// libpq lacks a Close call, psycopg 3 among them, drop statements): the statement lives on servers
    /// under its server name, so the server is asked to deallocate that, and the client gets
    /// PostgreSQL's own reply. In a failed transaction, or behind extended-protocol messages still
    /// waiting for their Sync, the Query goes as it came.
    private func deallocateStatement(_ header: MessageHeader, on server: ServerConnection) -> StatementOutcome {
        // Anything longer is not a DEALLOCATE of a name.
        guard header.totalLength <= 5 + 256, tracksStatements else { return .forward }
        guard input.readableBytes >= header.totalLength else {
            input.reserveWritable(header.totalLength - input.readableBytes)
            return .needMoreInput
        }
        guard transactionStatus != .failed, !server.tracker.hasUnsyncedExtendedMessages,
            let name = input.withReadableBytes({
                StatementRelease.deallocatedName(UnsafeRawBufferPointer(rebasing: $0[5..<header.totalLength]))
            }),
            let statement = statements[name]
        else { return .forward }
        input.moveReaderIndex(forwardBy: header.totalLength)
        statements[name] = nil
        server.deallocateForClient(statement)
        return .done
    }

    /// Where the `number`th zero-terminated string of the message at the front of the input is, or nil when
    /// it has not arrived or is missing.
    private func leadingString(header: MessageHeader, number: Int) -> Range<Int>? {
        let end = min(header.totalLength, input.readableBytes)
        var start = 5
        var offset = 5
        var found = 0
        while offset < end {
            if input.byte(at: offset) == 0 {
                found += 1
                if found == number { return start..<offset }
                start = offset + 1
            }
            offset += 1
        }
        return nil
    }

    /// A Query, or the Parse of an unnamed statement, whose text (from offset `textAt` of the message) may
    /// drop prepared statements (DEALLOCATE, DISCARD): the server's statements are no longer assumed, and
    /// `DEALLOCATE ALL` or `DISCARD ALL` forget the client's own, as PostgreSQL does.
    // TODO: forget the client's statements only once DEALLOCATE ALL or DISCARD ALL succeeded; one that fails
    // (in an aborted transaction) leaves them on a direct connection.
    private func noteStatementRelease(_ header: MessageHeader, textAt start: Int) {
        let available = min(header.totalLength, input.readableBytes) - start
        guard available > 0, let server else { return }
        switch StatementRelease.classify(input.bytes(at: start, count: available)) {
        case .none:
            return
        case .mayRelease:
            server.statementCache.removeAll()
        case .releasesAll:
            server.statementCache.removeAll()
            statements.removeAll()
        }
    }

    /// Whether the session state a client's statements leave is followed (``SessionTextScan``): in
    /// transaction and statement pooling, where the client's next transaction may run on another server.
    private var tracksSession: Bool { pool?.mode != .session }

    /// Reads a Query's or unnamed Parse's statement text (from offset `textAt` of the message) for what it
    /// may do to the session. A text that has not arrived whole is assumed to do anything.
    private func noteSession(_ header: MessageHeader, textAt start: Int) {
        guard let server else { return }
        guard input.readableBytes >= header.totalLength else { return server.noteSession(.unread) }
        let scan = input.withReadableBytes {
            SessionTextScan(UnsafeRawBufferPointer(rebasing: $0[start..<header.totalLength]))
        }
        server.noteSession(scan)
    }

    /// Parse and Bind going to the server as they came (statement tracking off). A Parse's text is read
    /// after its name; a named statement whose text may change the session is remembered, so each Bind of
    /// it counts too.
    private func noteSessionOfUntracked(_ code: FrontendMessageCode, header: MessageHeader) {
        guard let server else { return }
        switch code {
        case .parse:
            guard let name = leadingString(header: header, number: 1), input.readableBytes >= header.totalLength
            else { return server.noteSession(.unread) }
            let scan = input.withReadableBytes {
                SessionTextScan(UnsafeRawBufferPointer(rebasing: $0[(name.upperBound + 1)..<header.totalLength]))
            }
            server.noteSession(scan)
            guard !name.isEmpty else { return }
            let key = String(decoding: input.bytes(at: name.lowerBound, count: name.count), as: UTF8.self)
            untrackedStatementEffects[key] = scan.effects.isEmpty ? nil : scan
        case .bind where !untrackedStatementEffects.isEmpty:
            guard let name = leadingString(header: header, number: 2) else { return }
            let key = String(decoding: input.bytes(at: name.lowerBound, count: name.count), as: UTF8.self)
            if let scan = untrackedStatementEffects[key] { server.noteSession(scan) }
        default:
            break
        }
    }

    /// Whether the message at the front of the input may create a prepared statement that would outlive
    /// the transaction: a Parse with a name, or a simple Query that begins with PREPARE. Only the first
    /// bytes are looked at; when they have not arrived yet the answer is yes.
    private func createsPreparedStatement(_ code: FrontendMessageCode) -> Bool {
        let available = input.readableBytes - 5
        guard available > 0 else { return true }
        if code == .parse { return input.byte(at: 5) != 0 }
        var offset = 5
        scan: while offset < input.readableBytes {
            switch input.byte(at: offset) {
            case 0x20, 0x09, 0x0A, 0x0D, 0x28: offset += 1
            default: break scan
            }
        }
        // A StaticString: an array literal here would be a heap allocation per Query.
        let word: StaticString = "prepare"
        let length = word.utf8CodeUnitCount
        guard input.readableBytes - offset >= length else { return true }
        for i in 0..<length where input.byte(at: offset + i) | 0x20 != word.utf8Start[i] { return false }
        return true
    }

    /// The server forwarded a ReadyForQuery to this client.
    func readyForQueryForwarded(_ status: TransactionStatus, requestStartedAt: Double) {
        transactionStatus = status
        if status == .idle {
            transactionStartedAt = nil
        } else if transactionStartedAt == nil {
            transactionStartedAt = requestStartedAt
        }
    }

    // MARK: Ending

    /// Sends an error during startup or authentication and closes.
    func refuse(_ error: ErrorFields) {
        takeSpareOutput()
        output.writeErrorResponse(error)
        logger.info("login refused", [("sqlstate", error.sqlState), ("reason", error.message)])
        _ = flushOutput()
        discardPendingInput()
        gone(error.message, graceful: true)
    }

    /// Sends an error after login and closes.
    func fail(_ error: ErrorFields) {
        takeSpareOutput()
        output.writeErrorResponse(error)
        _ = flushOutput()
        discardPendingInput()
        gone(error.message)
    }

    /// The server this client was using failed in a way the client must hear about.
    func failAfterServerError(_ error: ErrorFields) {
        fail(error)
    }

    /// Sends what is buffered. With the registry's lock held the write waits for the end of this batch of
    /// events (`drive` starts with it): a socket write takes microseconds, and every other loop needing
    /// the lock would wait for it.
    func flushOrGone() {
        if proxy.shared.lock.isHeldByCurrentThread { return scheduleDrive() }
        if !flushOutput() { gone("write to client failed") }
    }

    private func closeQuietly() {
        state = .closed
        closeSocket()
        proxy.clientClosed(self)
    }

    /// The client is leaving: its server goes back clean or is closed; everything it held is released.
    func gone(_ reason: String, graceful: Bool = false) {
        guard !isClosed else { return }
        let wasReady: Bool
        if case .ready = state { wasReady = true } else { wasReady = false }
        state = .closed
        closeSocket()
        let level: LogLevel = wasReady && proxy.config.logDisconnections ? .info : .debug
        if logs(level) { logger.log(level, "closing client connection", [("reason", reason)]) }
        proxy.clientClosed(self)
    }
}

/// A client's authentication exchange, in a box of its own for the time of login, with what the login needs
/// once the client has proved who it is.
final class AuthenticationExchange {
    var auth: ClientAuthentication
    /// The session's routing, from the startup packet (`sluice.route`, a `<db>_ro` name).
    let route: RouteSetting
    /// The user's secret as `auth_query` found it, for a user the auth_file does not list.
    let lookedUp: StoredSecret?

    init(_ auth: ClientAuthentication, route: RouteSetting, lookedUp: StoredSecret?) {
        self.auth = auth
        self.route = route
        self.lookedUp = lookedUp
    }
}

/// A value kept out of line: a reference to it costs a client 8 bytes however large the value is, and
/// clients can share one.
final class Boxed<Value> {
    let value: Value

    init(_ value: Value) { self.value = value }
}
