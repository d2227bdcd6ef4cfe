import SluiceCore
import SluiceIO

/// One connection from Sluice to PostgreSQL, owned by a pool.
final class ServerConnection: Connection {
    enum State {
        case connecting
        case loggingIn(ServerLogin)
        /// In the pool's idle list.
        case idle
        /// Serving `client`, or finishing Sluice's own requests before it can go back to the pool.
        case active
        case closed
    }

    var state: State = .connecting
    let pool: Pool
    /// Strong, and so is `client.server`: every path that unlinks the two clears both sides, and a weak
    /// reference would give each client a side table for its whole life.
    var client: ClientConnection?
    var tracker = ServerReplyTracker()
    var parameters = ParameterSet()
    /// Versions of a client's parameters, of this server's and of the tracked names (`Proxy.trackedVersion`)
    /// last found equal for the tracked names.
    var parametersInStep: (UInt64, UInt64, Int)?
    var backendKey: (processID: Int32, secretKey: Int32)?
    let createdAt: Double
    var idleSince: Double
    /// Cancel requests sent to this server whose connections have not closed yet. While any is
    /// outstanding the server must not start work for another client, or the cancel could hit it.
    var cancelsInFlight = 0
    /// The client let go but a cancel is still on its way: go to the pool once it lands.
    var releaseWhenCancelsLand = false
    /// Marked for closing once the current client is done with it (lifetime reached, pool reconnect).
    var closeWhenReleased = false
    /// When the request the server is working on reached it, for `query_timeout` and the query times.
    var requestStartedAt: Double = 0
    var transactionClock = TransactionClock()
    /// Counted since the pool's totals last took them; they do so under the registry's lock when the
    /// server is quiet (`Proxy.serverBecameQuiet`), so the data path takes no lock for counting.
    var pendingStats = PoolStats()
    /// When the last ReadyForQuery arrived, for `idle_transaction_timeout`.
    var quietSince: Double = 0
    /// The timeout Sluice cancelled the running request for, until its error arrives.
    var cancelReason: String?
    /// Non-reported settings the session holds beyond its defaults, as Sluice last applied or checked
    /// them, so the next client can have exactly the difference reset or replaced.
    var sessionSettings: SessionSettings = [:]
    /// What the client's statements since the last ``SessionCheck`` may have done to the session.
    var pendingSessionEffects: SessionEffects = []
    var pendingCustomNames: [String] = []
    /// The check on its way, and its answer so far.
    var sessionCheck: (check: SessionCheck, result: SessionCheckResult)? {
        didSet { awaitingSessionCheck = sessionCheck != nil }
    }
    /// `sessionCheck != nil`, kept apart: the reply path asks for every message, and testing the optional
    /// itself would copy (and retain) what it holds.
    private(set) var awaitingSessionCheck = false
    /// State that ties the client to this server: it keeps the server between transactions, and the
    /// server is closed when the client leaves.
    var pins: SessionPins = []
    /// The session user the server logged in as, to tell a `SET SESSION AUTHORIZATION` from its reset.
    var loginSessionAuthorization: String?
    /// The client that last used this server: when it comes back, the session is as it left it.
    var lastClientID = 0
    /// The client this server is being checked for (`server_check_query`); it is linked once the check passes.
    /// Strong: a client that left meanwhile stays until the check ends, and the link then finds it closed.
    /// Rows of the Sluice request being answered, when it is one whose rows Sluice reads.
    var capturedRows: [[String?]] = []
    /// The routing decision made for the client's current work on this server, and whether it may have
    /// written (read-your-writes then asks for the primary's position before the server is released).
    var mayHaveWritten = false
    /// The linked client's Query may still run again on the primary (`ClientRouting.mayRetry`): replies are
    /// watched for the standby's refusal. A flag of this connection's own, so that other traffic pays one
    /// load of it per message.
    var watchesForRetry = false
    /// The host name or address the socket reached, for TLS (SNI and `verify-full`); nil on a Unix socket,
    /// where PostgreSQL has no TLS.
    var serverName: String?
    /// Where TLS negotiation stands before the startup message (ServerConnection+TLS.swift).
    var tlsNegotiation = ServerTLSNegotiation.notStarted
    var checkingForClient: ClientConnection?
    var checkStartedAt: Double = 0
    /// Whether a client ever had this server: only those can have gone stale while idle.
    var lentBefore = false
    /// A client may have left named prepared statements here. In transaction mode they are deallocated
    /// before the server goes to someone else, who could otherwise run them.
    var holdsClientStatements = false
    /// Statements Sluice prepared here for clients, under their server names.
    var statementCache: ServerStatementCache
    /// A random share (0–20 %) taken off `server_lifetime` for this connection, so servers opened together
    /// are not all replaced together.
    let lifetimeJitter = Double.random(in: 0..<0.2)

    /// Whether `server_lifetime` (shortened by this connection's jitter) has run out.
    func lifetimeReached(_ now: Double) -> Bool {
        pool.serverLifetime > 0 && now - createdAt >= pool.serverLifetime * (1 - lifetimeJitter)
    }

    init(id: Int, transport: any Transport, pool: Pool, proxy: Proxy, now: Double) {
        self.pool = pool
        self.createdAt = now
        self.idleSince = now
        self.statementCache = ServerStatementCache(capacity: proxy.config.maxPreparedStatements)
        super.init(id: id, transport: transport, proxy: proxy, logger: pool.logger.with("server", "S\(id)"))
        input = ByteBuffer(capacity: 8 * 1024)
    }

    /// Past login: idle or serving.
    var isLoggedIn: Bool {
        switch state {
        case .idle, .active: true
        case .connecting, .loggingIn, .closed: false
        }
    }

    var isIdleInPool: Bool {
        if case .idle = state { return true }
        return false
    }

    var stateName: String {
        switch state {
        case .connecting, .loggingIn: "login"
        case .idle: "idle"
        case .active: "active"
        case .closed: "closed"
        }
    }

    // MARK: Events

    override func drive() {
        if isClosed { return }
        if case .connecting = state {
            guard readyForStartup() else { return }
            // The pool's credential and target are shared with other loops and change on reload.
            let (credential, database) = proxy.shared.lock.withLock { (pool.credential, pool.serverDatabase) }
            let login = ServerLogin(user: pool.serverUser, credential: credential)
            output.write(
                bytes: ServerLogin.startupMessage(
                    user: pool.serverUser, database: database, parameters: pool.startupParameters))
            state = .loggingIn(login)
        }
        guard flushOutput() else { return lost("write to server failed") }
        if let client, client.stalledByPeer, output.readableBytes < Self.outputLowWater {
            // The server took what the client had sent: let the client go on.
            client.stalledByPeer = false
            client.scheduleDrive()
        }
        while !isClosed {
            processInput()
            if isClosed { return }
            if let client, client.outputIsCongested {
                if client.peerHungUp { return client.gone("client closed the connection while replies were queued") }
                if peerHungUp { return lost("server closed the connection while replies were queued") }
                stalledByPeer = true
                return
            }
            switch readOnce() {
            case .data: continue
            case .nothing: return
            case .closed:
                processInput()
                return lost("server closed the connection")
            }
        }
    }

    /// Whether the socket is connected and TLS, if Sluice asks for it, is set up: the startup message may go.
    private func readyForStartup() -> Bool {
        if tlsNegotiation != .notStarted { return negotiateTLS() }
        guard writable else { return false }
        if let error = Socket.pendingError(fd) {
            // The pool's address is shared with other loops and changes on reload.
            let target = proxy.shared.lock.withLock { "\(pool.host):\(pool.port)" }
            fail(
                .fatal(
                    .sqlclientUnableToEstablishConnection,
                    "could not connect to server \(target): \(SystemError("connect", errno: error))"))
            return false
        }
        if let context = proxy.tls.connecting, serverName != nil { return startTLS(context) }
        return true
    }

    /// Handles buffered input according to the state.
    private func processInput() {
        switch state {
        case .connecting, .closed:
            return
        case .loggingIn:
            processLoginInput()
        case .idle, .active:
            processReplies()
        }
    }

    // MARK: Login

    private func processLoginInput() {
        while case .loggingIn(var login) = state {
            let header: MessageHeader
            do {
                guard let h = try MessageHeader.peek(input, maximumLength: proxy.holdWholeLimit) else { return }
                header = h
            } catch {
                return fail(.fatal(.protocolViolation, "server sent a malformed message during login: \(error)"))
            }
            guard input.readableBytes >= header.totalLength else {
                input.reserveWritable(header.totalLength - input.readableBytes)
                return
            }
            let body = input.bytes(at: 5, count: header.bodyLength)
            let action = login.messageReceived(code: header.code, body: body)
            input.moveReaderIndex(forwardBy: header.totalLength)
            state = .loggingIn(login)
            switch action {
            case .none:
                break
            case .send(let bytes):
                output.write(bytes: bytes)
                guard flushOutput() else { return lost("write to server failed during login") }
            case .failed(let error):
                return fail(error)
            case .loggedIn:
                for (name, value) in login.parameters { parameters[name] = value }
                loginSessionAuthorization = parameters["session_authorization"]
                backendKey = login.backendKey
                tracker.reset()
                state = .active  // the pool moves it on
                logger.debug("server login done")
                proxy.serverLoggedIn(self, parameters: login.parameters)
                return
            }
        }
    }

    /// Login did not succeed: the pool learns why, so waiting clients hear it too.
    func fail(_ error: ErrorFields) {
        logger.warning("server login failed", [("error", error.message), ("sqlstate", error.sqlState)])
        closeSocket()
        state = .closed
        proxy.serverLoginFailed(self, error: error)
    }

    // MARK: Replies

    /// Routes replies: to the linked client, or into Sluice's own handling when Sluice asked.
    private func processReplies() {
        var flushTarget: ClientConnection?
        defer { flushTarget?.flushAfterServerOutput() }
        while !isClosed {
            // Re-read on every message: a ReadyForQuery may have just released this server.
            let client = self.client
            if let client, client !== flushTarget {
                // The server moved on to another client: what the previous one was sent leaves now.
                flushTarget?.flushAfterServerOutput()
                flushTarget = client
            }
            switch passthrough {
            case .none:
                break
            case .forward(let n):
                if let client {
                    continuePassthrough(into: &client.output)
                } else {
                    passthrough = .drop(n)
                    skipPassthrough()
                }
            case .drop:
                skipPassthrough()
            }
            if case .none = passthrough {} else { return }
            if let client, client.outputIsCongested { return }
            let header: MessageHeader
            do {
                guard let h = try MessageHeader.peek(input, maximumLength: Int(Int32.max)) else { return }
                header = h
            } catch {
                return lost("server sent a malformed message: \(error)")
            }
            let owner = tracker.currentOwner
            let toClient = client != nil && (owner == .client || owner == nil)
            let code = header.code
            let mustHoldWhole =
                code == BackendMessageCode.readyForQuery.rawValue || code == BackendMessageCode.parameterStatus.rawValue
                || (code == BackendMessageCode.dataRow.rawValue
                    && (awaitingSessionCheck || owner?.capturesRows == true))
                || (code == BackendMessageCode.errorResponse.rawValue
                    && (!toClient || cancelReason != nil || tracker.pendingErrorProbe != nil
                        || watchesForRetry))
                || (code == BackendMessageCode.rowDescription.rawValue && watchesForRetry)
            if mustHoldWhole && input.readableBytes < header.totalLength {
                if header.totalLength > proxy.holdWholeLimit { return lost("server message too large to inspect") }
                input.reserveWritable(header.totalLength - input.readableBytes)
                return
            }
            if watchesForRetry, toClient, let routing = client?.routing, routing.mayRetry, !routing.refusedByStandby {
                if code == BackendMessageCode.errorResponse.rawValue {
                    let fields = try? ErrorFields(decoding: input.bytes(at: 5, count: header.bodyLength))
                    if fields?.sqlState == SQLState.readOnlySQLTransaction.rawValue {
                        // The standby refused a statement Sluice took for a read: nothing reached the client
                        // yet, so it runs again on the primary (readyForQueryReceived).
                        routing.refusedByStandby = true
                        routing.holdsRowDescription = false
                        routing.heldRowDescription.clear(keepCapacity: 4096)
                        input.moveReaderIndex(forwardBy: header.totalLength)
                        skipped(tracker.errorReceived())
                        continue
                    }
                    releaseHeldRowDescription(routing)
                } else if code == BackendMessageCode.rowDescription.rawValue && !routing.holdsRowDescription {
                    routing.holdsRowDescription = true
                    routing.heldRowDescription.clear(keepCapacity: 4096)
                    routing.heldRowDescription.write(bytes: input.bytes(at: 0, count: header.totalLength))
                    input.moveReaderIndex(forwardBy: header.totalLength)
                    continue
                } else if code != BackendMessageCode.readyForQuery.rawValue
                    && code != BackendMessageCode.parameterStatus.rawValue
                    && code != BackendMessageCode.noticeResponse.rawValue
                {
                    // A result reached the client: whatever follows is the client's to see.
                    releaseHeldRowDescription(routing)
                }
            }
            switch BackendMessageCode(rawValue: code) {
            case .readyForQuery:
                readyForQueryReceived(header)
            case .parameterStatus:
                parameterStatusReceived(header, owner: owner)
            case .dataRow where awaitingSessionCheck && owner == .sluice(.sessionCheck):
                sessionCheckRowReceived(header)
            case .dataRow where owner?.capturesRows == true:
                captureRow(header)
            case .parseComplete, .closeComplete:
                guard let request = tracker.completionReceived() else {
                    return lost("server sent a ParseComplete or CloseComplete nobody asked for")
                }
                if toClient && request.isForwarded, let client {
                    forwardMessage(totalLength: header.totalLength, into: &client.output)
                } else {
                    dropMessage(totalLength: header.totalLength)
                }
            case .errorResponse where toClient && cancelReason != nil:
                timeoutErrorReceived(header)
                skipped(tracker.errorReceived())
            case .errorResponse where toClient && tracker.pendingErrorProbe != nil:
                probeErrorReceived(header)
                skipped(tracker.errorReceived())
            case .errorResponse where !toClient:
                let fields =
                    (try? ErrorFields(decoding: input.bytes(at: 5, count: header.bodyLength)))
                    ?? ErrorFields(sqlState: "XX000", message: "unreadable error")
                input.moveReaderIndex(forwardBy: header.totalLength)
                skipped(tracker.errorReceived())
                sluiceRequestFailed(fields, owner: owner)
            case .errorResponse:
                pendingStats.errors &+= 1
                skipped(tracker.errorReceived())
                if let client { forwardMessage(totalLength: header.totalLength, into: &client.output) }
            default:
                if code == BackendMessageCode.copyInResponse.rawValue { tracker.copyInResponseReceived() }
                if toClient, let client {
                    forwardMessage(totalLength: header.totalLength, into: &client.output)
                } else {
                    dropMessage(totalLength: header.totalLength)
                }
            }
        }
    }

    /// The statement kept for a retry produced a result: the RowDescription held back goes first, and what
    /// follows goes to the client as it comes.
    private func releaseHeldRowDescription(_ routing: ClientRouting) {
        routing.mayRetry = false
        watchesForRetry = false
        if routing.holdsRowDescription, let client {
            routing.holdsRowDescription = false
            client.output.write(bytes: routing.heldRowDescription.readableView)
            routing.heldRowDescription.clear(keepCapacity: 4096)
        }
    }

    private func readyForQueryReceived(_ header: MessageHeader) {
        guard header.totalLength == 6, let status = TransactionStatus(rawValue: input.byte(at: 5)) else {
            return lost("server sent a malformed ReadyForQuery")
        }
        guard let owner = tracker.readyForQueryReceived(status) else {
            return lost("server sent a ReadyForQuery nobody asked for")
        }
        // Precise time, for the query and transaction times: a vDSO call, no system call.
        let now = Syscall.monotonicNow()
        if owner == .client, let client, let routing = client.routing, routing.refusedByStandby {
            input.moveReaderIndex(forwardBy: header.totalLength)
            routing.refusedByStandby = false
            if routing.mayRetry {
                routing.mayRetry = false
                proxy.standbyRefused(client: client, server: self)
            }
            watchesForRetry = false
        } else if owner == .client, let client {
            if pool.mode == .statement && status != .idle {
                // Statement pooling lends a server for one statement; a transaction would outlive the loan.
                input.moveReaderIndex(forwardBy: header.totalLength)
                client.fail(
                    .error(
                        .featureNotSupported, "transaction blocks are not allowed in statement pooling mode",
                        hint: "use pool_mode = transaction for this database or user"))
                return
            }
            forwardMessage(totalLength: header.totalLength, into: &client.output)
            client.readyForQueryForwarded(status, requestStartedAt: requestStartedAt)
            pendingStats += transactionClock.requestAnswered(startedAt: requestStartedAt, now: now, status: status)
        } else {
            input.moveReaderIndex(forwardBy: header.totalLength)
            // Sluice's own statements (a rollback for a client that left) end what the client had open.
            if status == .idle { transactionClock.reset() }
            if owner == .sluice(.sessionCheck) { sessionCheckEnded() }
            if case .sluice(let request) = owner, request.capturesRows {
                let rows = capturedRows
                capturedRows = []
                proxy.sluiceRequestAnswered(self, request: request, rows: rows)
            }
        }
        if status == .idle && tracker.isQuiet { statementCache.transactionEnded() }
        if let routing = client?.routing, routing.awaitingRoute {
            // The client's next unit waits to be routed until this server is done: released by now, or not.
            routing.awaitingRoute = false
            client?.scheduleDrive()
        }
        // The next owed request, if any, starts running on the server now.
        requestStartedAt = now
        quietSince = now
        if !tracker.clientRequestInFlight { cancelReason = nil }
        proxy.serverBecameQuiet(self)
    }

    /// An error while an error probe is owed: if it is the probe's, the client gets the error the probe
    /// stands for; otherwise an earlier message failed and the probe was skipped.
    private func probeErrorReceived(_ header: MessageHeader) {
        guard let client, let replacement = tracker.pendingErrorProbe,
            let fields = try? ErrorFields(decoding: input.bytes(at: 5, count: header.bodyLength)),
            fields.sqlState == SQLState.invalidSQLStatementName.rawValue,
            fields.message.contains(ServerReplyTracker.absentStatementName)
        else {
            if let client { forwardMessage(totalLength: header.totalLength, into: &client.output) }
            return
        }
        input.moveReaderIndex(forwardBy: header.totalLength)
        client.output.writeErrorResponse(replacement)
    }

    /// Parse and Close requests the server skipped after an error: statements they were to prepare are
    /// not here, and the client's names are as a direct connection would have left them. Undone last
    /// first, so a Close and a Parse of one name in one batch leave the name as it was.
    private func skipped(_ requests: [CompletionRequest]) {
        for request in requests.reversed() {
            switch request {
            case .prepare(let name):
                statementCache.remove(name)
            case .clientParse(let name, let statement, let prepared):
                if prepared { statementCache.remove(statement.serverName) }
                if client?.statements[name] == statement { client?.statements[name] = nil }
            case .clientClose(let name, let statement):
                if client?.statements[name] == nil { client?.statements[name] = statement }
            case .close, .client, .hidden, .errorProbe:
                break
            }
        }
    }

    /// An error while Sluice's own cancel is on its way: a cancellation gets the name of the timeout.
    private func timeoutErrorReceived(_ header: MessageHeader) {
        guard let client, let reason = cancelReason,
            var fields = try? ErrorFields(decoding: input.bytes(at: 5, count: header.bodyLength)),
            fields.sqlState == SQLState.queryCanceled.rawValue
        else {
            if let client { forwardMessage(totalLength: header.totalLength, into: &client.output) }
            return
        }
        input.moveReaderIndex(forwardBy: header.totalLength)
        fields.message = "canceling statement due to \(reason)"
        client.output.writeErrorResponse(fields)
        cancelReason = nil
    }

    private func parameterStatusReceived(_ header: MessageHeader, owner: ReplyOwner?) {
        var reader = PayloadReader(input.bytes(at: 5, count: header.bodyLength))
        guard let name = try? reader.readCString(), let value = try? reader.readCString() else {
            return lost("server sent a malformed ParameterStatus")
        }
        parameters[name] = value
        if name == "session_authorization" {
            // Reported by the server, so seen wherever it was set: a function, a DO block.
            if loginSessionAuthorization == nil || owner == .sluice(.resetQuery) {
                loginSessionAuthorization = value
                pins.remove(.sessionAuthorization)
            } else if value != loginSessionAuthorization {
                pins.insert(.sessionAuthorization)
            } else {
                pins.remove(.sessionAuthorization)
            }
        }
        if let client {
            switch owner {
            case .client, nil:
                client.parameters[name] = value
                forwardMessage(totalLength: header.totalLength, into: &client.output)
                return
            case .sluice(.parameterRestore):
                // The server's spelling of a value the client asked for ('utf8' becomes 'UTF8'); adopting
                // it keeps the two sets equal so the next link does not repeat the SET.
                if client.parameters[name] != nil { client.parameters[name] = value }
            case .sluice:
                break
            }
        }
        input.moveReaderIndex(forwardBy: header.totalLength)
    }

    /// An error answered one of Sluice's own requests, or arrived with no client to read it.
    private func sluiceRequestFailed(_ error: ErrorFields, owner: ReplyOwner?) {
        switch owner {
        case .sluice(.parameterRestore):
            logger.warning(
                "restoring client parameters failed", [("error", error.message), ("sqlstate", error.sqlState)])
            if let client {
                // The client's own settings cannot be applied: running its queries anyway would run them
                // with another client's settings. The server's SQLSTATE (22023 for a bad value) says why.
                var fatal = error
                fatal.severity = "FATAL"
                fatal.detail = "Sluice applies the client's startup parameters on every server it lends the client."
                client.failAfterServerError(fatal)
            }
        case .sluice(.sessionCheck):
            // What the session holds is unknown: the client keeps this server, which closes when it leaves.
            logger.warning(
                "session check failed; client pinned to its server",
                [("error", error.message), ("sqlstate", error.sqlState)])
            sessionCheck = nil
            pins.insert(.unknown)
        case .sluice(let request):
            logger.warning(
                "server rejected Sluice's \(request)", [("error", error.message), ("sqlstate", error.sqlState)])
            closeWhenReleased = true
            // A FATAL error ends the session: the server closes the connection after it. Treated as lost now,
            // rather than when the close is read, so that nothing waits for an answer that will not come.
            if error.severity == "FATAL" || error.severity == "PANIC" {
                return lost("server ended the session: \(error.message)")
            }
            if request == .routingProbe, let (routes, index) = pool.monitor {
                // The check itself failed: what the backend is, is unknown.
                proxy.shared.lock.withLock {
                    proxy.monitorFailed(routes, index, error: "check failed: \(error.message)")
                }
            }
        case .client, nil:
            if error.severity == "FATAL" || error.severity == "PANIC" {
                logger.info(
                    "server reported a fatal error while idle",
                    [("error", error.message), ("sqlstate", error.sqlState)])
                return lost("server ended the session: \(error.message)")
            }
            logger.debug("unsolicited error from server", [("error", error.message)])
        }
    }

    // MARK: Sending

    /// Queues one of Sluice's own simple queries ahead of anything the client sends next.
    func sendSluiceQuery(_ sql: String, purpose: SluiceRequest) {
        if purpose == .resetQuery {
            // server_reset_query (DISCARD ALL, usually) is taken to reset the session: statements, settings
            // and whatever else a client left.
            statementCache.removeAll()
            sessionSettings = [:]
            pendingSessionEffects = []
            pendingCustomNames = []
            pins = []
            lastClientID = 0
        }
        output.writeQuery(sql)
        tracker.sluiceQuerySent(purpose)
    }

    // MARK: Session state

    /// A client statement that may change the session went to this server.
    func noteSession(_ scan: SessionTextScan) {
        guard !scan.effects.isEmpty else { return }
        pendingSessionEffects.formUnion(scan.effects)
        for name in scan.customNames where !pendingCustomNames.contains(name) { pendingCustomNames.append(name) }
    }

    /// Asks the server what its session holds when the client's statements may have changed it. Call only
    /// when the server is idle: the answer must describe the session between transactions. Returns whether
    /// a check was sent.
    func startSessionCheckIfDue() -> Bool {
        guard !pendingSessionEffects.isEmpty, !awaitingSessionCheck else { return false }
        let check = SessionCheck(
            pending: pendingSessionEffects, customNames: pendingCustomNames, pins: pins,
            known: sessionSettings.merging(client?.sessionSettings ?? [:]) { current, _ in current })
        pendingSessionEffects = []
        pendingCustomNames = []
        guard check.isNeeded else { return false }
        sessionCheck = (check, SessionCheckResult())
        sendSluiceQuery(check.query, purpose: .sessionCheck)
        return true
    }

    /// One row of a Sluice request whose answer Sluice reads, as text.
    private func captureRow(_ header: MessageHeader) {
        if let row = try? DataRowBody.textColumns(input.bytes(at: 5, count: header.bodyLength)) {
            capturedRows.append(row)
        }
        input.moveReaderIndex(forwardBy: header.totalLength)
    }

    /// One row of the check's answer.
    private func sessionCheckRowReceived(_ header: MessageHeader) {
        do {
            try sessionCheck?.result.addRow(
                input.bytes(at: 5, count: header.bodyLength), excluded: proxy.trackedParameters)
        } catch {
            sessionCheck = nil
            pins.insert(.unknown)
            logger.warning("unexpected answer to Sluice's session check")
        }
        input.moveReaderIndex(forwardBy: header.totalLength)
    }

    /// The check is answered: the server's session, and the client's as it expects it, are what it found.
    private func sessionCheckEnded() {
        guard let (check, result) = sessionCheck else { return }
        sessionCheck = nil
        if check.effects.contains(.settings) {
            sessionSettings = result.settings
            client?.sessionSettings = result.settings
        }
        let wasPinned = !pins.isEmpty
        pins.subtract(check.checkedPins)
        pins.formUnion(result.pins)
        if !pins.isEmpty && !wasPinned {
            logger.info("client pinned to its server", [("reason", pins.description)])
        } else if pins.isEmpty && wasPinned {
            logger.debug("client no longer pinned to its server")
        }
    }

    // MARK: Prepared statements

    /// Makes the server fail at this point of the client's pipeline, as PostgreSQL would have failed the
    /// client's message, with `error`: it skips to the next Sync and aborts an open transaction.
    func failHere(_ error: ErrorFields) {
        output.writeDescribe(statement: ServerReplyTracker.absentStatementName)
        tracker.completionSent(.errorProbe(error))
    }

    /// The client's Parse of `statement` under `clientName`. Where the server already has it, an empty
    /// statement is parsed and closed instead, so the client still gets its ParseComplete (or the error
    /// a failed transaction gives) at this point of the pipeline.
    func prepareForClient(_ statement: PreparedStatement, clientName: String) {
        if statementCache.contains(statement.serverName) {
            statementCache.use(statement.serverName)
            output.writeParse(name: Self.acknowledgementName, query: "")
            let request = CompletionRequest.clientParse(clientName: clientName, statement: statement, prepared: false)
            if !tracker.completionSent(request) { skipped([request]) }
            output.writeClose(statement: Self.acknowledgementName)
            tracker.completionSent(.hidden)
            return
        }
        prepare(statement, as: .clientParse(clientName: clientName, statement: statement, prepared: true))
    }

    /// The client's Close of its statement `clientName`: only the name goes. The client's CloseComplete
    /// comes from closing a statement no server has.
    func closeForClient(_ statement: PreparedStatement, clientName: String) {
        output.writeClose(statement: ServerReplyTracker.absentStatementName)
        let request = CompletionRequest.clientClose(clientName: clientName, statement: statement)
        if !tracker.completionSent(request) { skipped([request]) }
    }

    /// Prepares `statement` ahead of the client's Bind or Describe where the server lacks it.
    func makeReady(_ statement: PreparedStatement) {
        if statementCache.contains(statement.serverName) {
            statementCache.use(statement.serverName)
        } else {
            prepare(statement, as: .prepare(serverName: statement.serverName))
        }
    }

    private func prepare(_ statement: PreparedStatement, as request: CompletionRequest) {
        let name = statement.serverName
        statementCache.capacity = proxy.config.maxPreparedStatements
        if let evicted = statementCache.insert(name) {
            output.writeClose(statement: evicted)
            tracker.completionSent(.close(serverName: evicted))
        }
        // Closing first makes the Parse succeed even where the statement exists after all: a DEALLOCATE that
        // Sluice took for done may have failed. Closing a statement that does not exist is no error.
        output.writeClose(statement: name)
        tracker.completionSent(.hidden)
        output.write(bytes: statement.parseMessage)
        pendingStats.serverParses &+= 1
        if !tracker.completionSent(request) { skipped([request]) }
    }

    /// Deallocates a client's statement with the SQL the client sent, under its server name, so the client
    /// gets PostgreSQL's own CommandComplete. A server that lacks it (or may: Sluice's list says which)
    /// gets it parsed first, in a batch of Sluice's own ended by its own Sync, so the DEALLOCATE finds it.
    func deallocateForClient(_ statement: PreparedStatement) {
        let name = statement.serverName
        if !statementCache.contains(name) {
            output.writeClose(statement: name)
            tracker.completionSent(.hidden)
            output.write(bytes: statement.parseMessage)
            pendingStats.serverParses &+= 1
            tracker.completionSent(.hidden)
            output.writeSync()
            tracker.sluiceSyncSent(.prepareToDeallocate)
        }
        statementCache.remove(name)
        output.writeQuery("DEALLOCATE " + name)
        tracker.frontendMessageSent(FrontendMessageCode.query.rawValue)
    }

    /// The statement whose Parse stands in for a client's Parse of a statement the server already has.
    static let acknowledgementName = "sluice_ack"

    func flushOrLose() {
        if !flushOutput() { lost("write to server failed") }
    }

    // MARK: Closing

    /// The connection broke or misbehaved: close it and tell the pool and the client.
    func lost(_ reason: String) {
        guard !isClosed else { return }
        let wasOpening: Bool
        switch state {
        case .connecting, .loggingIn: wasOpening = true
        case .idle, .active, .closed: wasOpening = false
        }
        closeSocket()
        state = .closed
        if wasOpening {
            logger.warning("server login failed", [("reason", reason)])
            proxy.serverLoginFailed(self, error: .fatal(.connectionFailure, "server login failed: \(reason)"))
        } else {
            logger.info("closing server connection", [("reason", reason)])
            proxy.serverLost(self, reason: reason)
        }
    }

    /// Closes a connection Sluice no longer wants, politely.
    func retire(_ reason: String) {
        guard !isClosed else { return }
        logger.debug("closing server connection", [("reason", reason)])
        output.writeTerminate()
        _ = flushOutput()
        closeSocket()
        state = .closed
    }
}
