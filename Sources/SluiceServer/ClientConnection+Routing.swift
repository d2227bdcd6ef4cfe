import SluiceCore

/// What a client of a database that routes reads carries beyond other clients. Allocated only for such
/// clients, so the others pay one pointer.
final class ClientRouting {
    /// The session's own choice: `SET sluice.route`, the startup option, or the `<db>_ro` alias.
    var setting: RouteSetting = .auto
    /// A bare `BEGIN` Sluice answered itself: the next statement chooses the backend, and this text goes
    /// there first.
    var heldBegin: String? {
        didSet { if heldBegin == nil { localSetting = nil } }
    }
    /// `SET LOCAL sluice.route` inside the held transaction.
    var localSetting: RouteSetting?
    /// The primary's position after this client's last write (read-your-writes per connection).
    var writtenPosition: WALPosition?
    /// The client's current server is a standby, chosen for a read.
    var onStandby = false
    /// Messages after a Parse, Bind, … and before their Sync: one unit that stays on one server.
    var inExtendedUnit = false
    /// Input waits for the current server's answer before its backend is chosen again.
    var awaitingRoute = false
    /// What the client waits for while no primary is known.
    var pendingRequest: RouteRequest?
    /// The text of the last Query routed while the client held no server, kept for a retry on the primary
    /// should a standby refuse it. Cleared, not freed, between Queries: no allocation once warm.
    var lastQuery = ByteBuffer()
    /// Set for a read Query sent to a standby outside a transaction, until the first of its results reaches
    /// the client: should the standby refuse it as a write (25006), it runs again on the primary instead.
    var mayRetry = false
    /// The RowDescription of that Query's result, held back until a row or the command's completion shows that
    /// the standby ran it (PostgreSQL describes a SELECT's result before running it).
    /// Kept between Queries (cleared, not freed), so holding one costs no allocation once warm.
    var heldRowDescription = ByteBuffer()
    var holdsRowDescription = false
    /// This loop's classifier for the client's database, found once (the change count resets it).
    var classifier: StatementClassifier?
    /// The standby refused the Query kept for a retry: its ReadyForQuery is swallowed and the Query goes again.
    var refusedByStandby = false
    /// Set from routing a unit until its first message reaches a server: whether the unit may write.
    var routedUnitWrites: Bool?
    /// The pool (the primary's or a standby's) the client's current request went to.
    var target: Pool?

    init(setting: RouteSetting) {
        self.setting = setting
    }
}

/// Where a unit of the client's work should run.
enum RouteRequest: Equatable {
    /// Provably read-only: a standby may serve it.
    case read
    /// Anything else: the primary.
    case write
}

/// The routing decision for the unit at the head of a client's input.
enum UnitRouting {
    case needMoreInput
    /// Sluice answered the unit itself (`SET sluice.route`, a held `BEGIN`, its `COMMIT`).
    case answered
    /// Sluice must answer the unit itself, but answers to earlier work are still coming: it waits for them.
    case hold
    /// `writes`: the unit itself may write (the client's setting can send a read to the primary, or a write
    /// to a standby, which then refuses it).
    case route(RouteRequest, writes: Bool)
}

extension ClientConnection {

    /// A reload added or removed the replicas of some database: this client starts or stops routing.
    func routingChanged() {
        routingGeneration = proxy.routingGeneration
        let routed = pool.map { proxy.routedDatabases.contains($0.key.database) } ?? false
        if !routed {
            routing = nil
        } else if routing == nil {
            routing = ClientRouting(setting: .auto)
        } else {
            // The loop's classifier for the database may have been replaced.
            routing?.classifier = nil
        }
    }

    /// The pool the client waits on or was last lent from; nil means its own pool.
    var routeTarget: Pool? {
        get { routing?.target }
        set { routing?.target = newValue }
    }

    /// Classifies the unit at the head of the input: a Query, or extended-protocol messages up to their
    /// Sync. A unit Sluice cannot see whole (larger than it holds, or ended by a Flush that awaits answers
    /// before the Sync) goes to the primary.
    /// `linked`: the client still holds a server (a unit pipelined behind answers still due, or a pinned
    /// session), so a `BEGIN` goes where its modes say instead of being held. `mayAnswer` is false while
    /// answers to the client's earlier work are still due: Sluice's own answer would overtake them.
    func routeUnit(
        _ code: FrontendMessageCode, header: MessageHeader, routing: ClientRouting, linked: Bool = false,
        mayAnswer: Bool = true
    ) -> UnitRouting {
        if code == .query {
            guard input.readableBytes >= header.totalLength else {
                if header.totalLength > proxy.holdWholeLimit { return decided(.write, routing) }
                input.reserveWritable(header.totalLength - input.readableBytes)
                return .needMoreInput
            }
            let text = input.bytes(at: 5, count: max(0, header.bodyLength - 1))
            if !linked {
                routing.lastQuery.clear(keepCapacity: 4096)
                routing.lastQuery.write(bytes: text)
            }
            let classification = text.withUnsafeBytes { classifier(routing).classify(utf8: $0) }
            if linked {
                switch classification.statementClass {
                case .setRoute, .showRoute:
                    if !mayAnswer { return .hold }
                case .begin(let modes):
                    return decided(
                        modes.readOnly == true && modes.isolationLevel != "serializable" ? .read : .write, routing)
                case .read, .write, .setTransaction, .endTransaction:
                    return decided(isRead(classification, routing: routing) ? .read : .write, routing)
                }
            }
            return routeQuery(classification, text: text, header: header, routing: routing)
        }
        // Extended protocol: every statement the unit parses or binds must be read-only.
        var offset = 0
        var sawUnnamedParse = false
        var request = RouteRequest.read
        while true {
            guard input.readableBytes - offset >= 5 else { return moreOf(unitAt: offset, routing) }
            let messageCode = input.byte(at: offset)
            let length = Int(input.uint32(at: offset + 1))
            guard length >= 4 else { return decided(.write, routing) }
            guard input.readableBytes - offset >= 1 + length else {
                return moreOf(unitAt: offset + 1 + length, routing)
            }
            switch FrontendMessageCode(rawValue: messageCode) {
            case .sync?:
                return decided(routing.heldBegin == nil ? request : .write, routing)
            case .parse?:
                let body = input.bytes(at: offset + 5, count: length - 4)
                guard let parse = ParseMessageBody(body) else { return decided(.write, routing) }
                if parse.name.isEmpty { sawUnnamedParse = true }
                let textStart = body.startIndex + parse.queryOffset
                let textEnd = body[textStart...].firstIndex(of: 0) ?? body.endIndex
                let classification = body[textStart..<textEnd].withUnsafeBytes {
                    classifier(routing).classify(utf8: $0)
                }
                if !isRead(classification, routing: routing) { request = .write }
            case .bind?:
                let body = input.bytes(at: offset + 5, count: length - 4)
                guard let portalEnd = body.firstIndex(of: 0), let nameEnd = body[(portalEnd + 1)...].firstIndex(of: 0)
                else { return decided(.write, routing) }
                let name = String(decoding: body[(portalEnd + 1)..<nameEnd], as: UTF8.self)
                if name.isEmpty {
                    // An unnamed statement lives on the server that parsed it: only one parsed in this unit.
                    if !sawUnnamedParse { request = .write }
                } else if let statement = statements[name] {
                    let classification = statement.queryBytes.withUnsafeBytes { classifier(routing).classify(utf8: $0) }
                    if !isRead(classification, routing: routing) {
                        request = .write
                    }
                } else {
                    request = .write
                }
            case .describe?, .execute?, .close?:
                break
            default:
                // A Flush (the client waits for answers before its Sync), a Query, anything else.
                return decided(.write, routing)
            }
            if request == .write { return decided(.write, routing) }
            offset += 1 + length
        }
    }

    private func classifier(_ routing: ClientRouting) -> StatementClassifier {
        if let known = routing.classifier { return known }
        let found = proxy.classifier(for: pool)
        routing.classifier = found
        return found
    }

    private func moreOf(unitAt needed: Int, _ routing: ClientRouting) -> UnitRouting {
        if needed > proxy.holdWholeLimit { return decided(.write, routing) }
        input.reserveWritable(max(0, needed - input.readableBytes))
        return .needMoreInput
    }

    /// The client's own setting wins over the statement's class; a held BEGIN goes where it is sent.
    private func decided(_ request: RouteRequest, _ routing: ClientRouting, writes: Bool? = nil) -> UnitRouting {
        let writes = writes ?? (request == .write)
        switch routing.localSetting ?? routing.setting {
        case .primary: return .route(.write, writes: writes)
        case .replica: return .route(.read, writes: writes)
        case .auto: return .route(request, writes: writes)
        }
    }

    private func isRead(_ classification: Classification, routing: ClientRouting) -> Bool {
        switch classification.hint {
        case .primary?: return false
        case .replica?: return true
        case nil: return classification.statementClass == .read
        }
    }

    private func routeQuery(
        _ classification: Classification, text bytes: ArraySlice<UInt8>, header: MessageHeader, routing: ClientRouting
    ) -> UnitRouting {
        if let hint = classification.hint, routing.heldBegin == nil {
            return decided(
                hint == .primary ? .write : .read, routing, writes: classification.statementClass != .read)
        }
        switch classification.statementClass {
        case .read:
            return decided(routing.heldBegin == nil ? .read : .write, routing)
        case .write:
            return decided(.write, routing)
        case .begin(let modes):
            guard routing.heldBegin == nil else { return decided(.write, routing) }
            if modes.readOnly == nil {
                // Held: the statement after it says whether the transaction may run on a standby.
                routing.heldBegin = String(decoding: bytes, as: UTF8.self)
                input.moveReaderIndex(forwardBy: header.totalLength)
                answerLocally(tag: "BEGIN", status: .inTransaction)
                return .answered
            }
            return decided(modes.readOnly == true && modes.isolationLevel != "serializable" ? .read : .write, routing)
        case .setTransaction(let modes):
            guard routing.heldBegin != nil else { return decided(.write, routing) }
            return decided(modes.readOnly == true && modes.isolationLevel != "serializable" ? .read : .write, routing)
        case .endTransaction:
            let text = String(decoding: bytes, as: UTF8.self)
            guard routing.heldBegin != nil, !text.lowercased().contains("chain") else {
                return decided(.write, routing)
            }
            // Nothing ran: the transaction ends where it began, in Sluice.
            routing.heldBegin = nil
            let lowered = text.lowercased()
            let rolledBack = lowered.contains("rollback") || lowered.contains("abort")
            input.moveReaderIndex(forwardBy: header.totalLength)
            answerLocally(tag: rolledBack ? "ROLLBACK" : "COMMIT", status: .idle)
            return .answered
        // TODO: a `SET sluice.route` inside a longer Query is not seen (the classifier calls the whole text a
        // write): it reaches PostgreSQL as a custom setting and routes nothing.
        case .setRoute(let setting, let local):
            input.moveReaderIndex(forwardBy: header.totalLength)
            guard let setting else {
                takeSpareOutput()
                output.writeErrorResponse(
                    .error(
                        .invalidParameterValue, "invalid value for parameter \"sluice.route\"",
                        hint: "Available values: primary, replica, auto."))
                output.writeReadyForQuery(transactionStatus == .idle ? .idle : .failed)
                if transactionStatus != .idle { transactionStatus = .failed }
                return .answered
            }
            if !local {
                routing.setting = setting
            } else if routing.heldBegin != nil {
                // SET LOCAL inside a held transaction: it chooses where that transaction runs.
                routing.localSetting = setting
            }
            // SET LOCAL outside a transaction does nothing, as in PostgreSQL (which also warns).
            answerLocally(tag: "SET", status: transactionStatus)
            return .answered
        case .showRoute:
            input.moveReaderIndex(forwardBy: header.totalLength)
            takeSpareOutput()
            AdminResult(columns: [.init("sluice.route", .text)], rows: [[routing.setting.rawValue]]).encode(
                into: &output)
            output.writeReadyForQuery(transactionStatus)
            return .answered
        }
    }

    private func answerLocally(tag: String, status: TransactionStatus) {
        takeSpareOutput()
        AdminResult.command(tag).encode(into: &output)
        output.writeReadyForQuery(status)
        transactionStatus = status
    }
}
