/// Who the replies a server is sending now belong to.
public enum ReplyOwner: Equatable, Sendable {
    /// The linked client asked for them: forward.
    case client
    /// Sluice sent a request of its own on this connection: consume, never forward.
    case sluice(SluiceRequest)
}

/// Requests Sluice sends to a server on its own account.
public enum SluiceRequest: Equatable, Sendable {
    /// `SET` statements that give the server the parameters of the client it is about to serve.
    case parameterRestore
    /// `server_reset_query` before a session-mode server goes back to the pool.
    case resetQuery
    /// `ROLLBACK` of a transaction a client abandoned by disconnecting.
    case rollback
    /// `server_check_query` before a long-idle server is lent.
    case serverCheck
    /// A ``SessionCheck`` after a transaction that may have changed the session.
    case sessionCheck
    /// Preparing a statement the client deallocates with SQL, so that the `DEALLOCATE` finds it.
    case prepareToDeallocate
    /// The routing monitor's questions (role, WAL position, lag; the catalog of unsafe functions): the rows
    /// are Sluice's.
    case routingProbe
    case routingCatalog
    /// The primary's WAL position after a client's write, for read-your-writes: the row is Sluice's.
    case walPosition
    /// A `BEGIN` Sluice answered itself, sent ahead of the statement that chose the backend.
    case heldBegin
    /// `auth_query` for a user the auth_file does not list: the row is Sluice's.
    case authQuery
}

extension ReplyOwner {
    /// Whether Sluice reads this owner's DataRows.
    public var capturesRows: Bool {
        if case .sluice(let request) = self { return request.capturesRows }
        return false
    }
}

extension SluiceRequest {
    /// Requests whose DataRows Sluice reads (the others return none it needs).
    public var capturesRows: Bool {
        switch self {
        case .routingProbe, .routingCatalog, .walPosition, .authQuery: true
        case .parameterRestore, .resetQuery, .rollback, .serverCheck, .sessionCheck, .prepareToDeallocate, .heldBegin:
            false
        }
    }
}

/// What a Parse or Close written to the server was for, which decides where its reply (ParseComplete,
/// CloseComplete) goes, and what to undo when the server skips it after an error. Statement names
/// called `serverName` are ``PreparedStatement/serverName``s; `clientName` is the client's own.
public enum CompletionRequest: Equatable, Sendable {
    /// The client's own message, as it came: the reply goes to the client.
    case client
    /// The client's Parse of a named statement, sent renamed (`prepared`) or, where the server already
    /// had the statement, as the Parse of an empty statement: the reply goes to the client. Skipped,
    /// the client's name must not exist, as on a direct connection.
    case clientParse(clientName: String, statement: PreparedStatement, prepared: Bool)
    /// The client's Close of a named statement, sent as the Close of one that does not exist: the reply
    /// goes to the client. Skipped, the client's name must exist again.
    case clientClose(clientName: String, statement: PreparedStatement)
    /// Sluice prepares a statement the client's next message uses: the reply is Sluice's.
    case prepare(serverName: String)
    /// Sluice closes a statement to keep the server within `max_prepared_statements`: the reply is Sluice's.
    case close(serverName: String)
    /// Any other message of Sluice's that answers with a completion: the reply is Sluice's.
    case hidden
    /// A Describe of a statement that cannot exist, sent to make the server fail at this point of the
    /// pipeline (skipping to Sync, aborting a transaction) as it would have failed on the client's own
    /// message. Its error is replaced with `error`.
    case errorProbe(ErrorFields)

    /// Whether the server's reply to this request goes to the client.
    public var isForwarded: Bool {
        switch self {
        case .client, .clientParse, .clientClose: true
        case .prepare, .close, .hidden, .errorProbe: false
        }
    }
}

/// Tracks, for one server connection, which ReadyForQuery messages are still owed and to whom.
///
/// Every simple Query, FunctionCall and Sync makes the server send exactly one ReadyForQuery, whatever
/// fails in between (on an error in an extended-protocol batch the server skips to the next Sync). So a
/// FIFO of owners, one entry per such message sent, tells whose reply is arriving, and the server is
/// free only when the FIFO is empty, no extended-protocol message waits for its Sync, and the last
/// ReadyForQuery said idle. Flush is deliberately not a boundary: the client will send Bind or Execute
/// to the same server later.
///
/// Parse and Close are tracked one by one as well, because Sluice adds its own to a client's pipeline
/// (preparing a statement the client's server lacks) and their replies must not reach the client. Each
/// Parse or Close gets exactly one ParseComplete or CloseComplete, in order, unless an error makes the
/// server skip to the next Sync; so a second FIFO, each entry tagged with the Sync that ends its batch,
/// tells whose every completion is.
public struct ServerReplyTracker: Sendable {
    private struct Owed: Sendable {
        var owner: ReplyOwner
        /// Whether a Sync asked for this reply; only those can be swallowed by a COPY.
        var isSync: Bool
        /// Position in the connection's request stream, to name entries across removals.
        var sequence: Int
    }

    private var owed: [Owed] = []
    private var head = 0
    private var nextSequence = 0
    public private(set) var transactionStatus: TransactionStatus = .idle
    /// Parse/Bind/Describe/Execute/Close/Flush were sent since the last Sync.
    public private(set) var hasUnsyncedExtendedMessages = false
    /// Set by CopyInResponse: the first request whose Syncs the server ignores while it reads COPY data.
    private var copyInStartSequence: Int?
    private var copyInStartedByExecute = false
    private struct Completion: Sendable {
        var request: CompletionRequest
        /// The sequence number the Sync ending this completion's batch has, or will have.
        var batch: Int
    }
    private var completions: [Completion] = []
    private var completionsHead = 0
    /// An error arrived before the Sync of its batch was sent: until that Sync, the server skips
    /// whatever arrives.
    private var skippingToSync = false

    public init() {}

    /// A statement no server has: an ``CompletionRequest/errorProbe(_:)`` describes it, and closing it
    /// stands for a client's Close. Server names all carry a digest, so no statement of Sluice's has it.
    public static let absentStatementName = "sluice_absent"

    /// Number of ReadyForQuery messages still to arrive.
    public var owedCount: Int { owed.count - head }

    /// True when some still-owed reply belongs to the client: a query of theirs is running.
    public var clientRequestInFlight: Bool {
        hasUnsyncedExtendedMessages || owed[head...].contains { $0.owner == .client }
    }

    /// The owner of the replies the server is sending now. Replies to extended-protocol messages that
    /// were flushed but not yet synced belong to the client.
    public var currentOwner: ReplyOwner? {
        if head < owed.count { return owed[head].owner }
        return hasUnsyncedExtendedMessages ? .client : nil
    }

    /// The connection can go to another client, or back to the pool.
    public var isIdle: Bool { head == owed.count && !hasUnsyncedExtendedMessages && transactionStatus == .idle }

    /// Nothing is owed, although a transaction may be open.
    public var isQuiet: Bool { head == owed.count && !hasUnsyncedExtendedMessages }

    /// A message from the client was written to the server.
    public mutating func frontendMessageSent(_ code: UInt8) {
        switch FrontendMessageCode(rawValue: code) {
        case .query, .functionCall:
            // Both end any extended-protocol sequence before them with their own ReadyForQuery.
            append(.client, isSync: false)
            hasUnsyncedExtendedMessages = false
        case .sync:
            append(.client, isSync: true)
            hasUnsyncedExtendedMessages = false
            skippingToSync = false
        case .parse, .close:
            hasUnsyncedExtendedMessages = true
            completionSent(.client)
        case .bind, .describe, .execute, .flush:
            hasUnsyncedExtendedMessages = true
        case .copyDone, .copyFail:
            copyInEndSent()
        case .copyData, .password, .terminate, nil:
            break
        }
    }

    /// A Parse or Close (or an error probe) written to the server, with what its reply is for. Returns
    /// false when the server will skip it, because an earlier message of its batch already failed.
    @discardableResult
    public mutating func completionSent(_ request: CompletionRequest) -> Bool {
        hasUnsyncedExtendedMessages = true
        if skippingToSync { return false }
        completions.append(Completion(request: request, batch: nextSequence))
        return true
    }

    /// What the next ParseComplete or CloseComplete answers. Nil when none is expected: the server and
    /// Sluice disagree about the conversation, and the connection cannot be trusted any more.
    public mutating func completionReceived() -> CompletionRequest? {
        guard completionsHead < completions.count else { return nil }
        let request = completions[completionsHead].request
        completionsHead += 1
        compactCompletions()
        return request
    }

    /// The error the server is sending now replaces this one, if the server is failing an error probe.
    /// Whether the error is the probe's own is for the caller to check (the probe may be skipped because
    /// an earlier message failed).
    public var pendingErrorProbe: ErrorFields? {
        guard completionsHead < completions.count, case .errorProbe(let error) = completions[completionsHead].request
        else { return nil }
        return error
    }

    /// An ErrorResponse arrived. In an extended-protocol batch the server now skips everything up to the
    /// batch's Sync: the Parse and Close requests that will never be answered are removed and returned.
    public mutating func errorReceived() -> [CompletionRequest] {
        guard completionsHead < completions.count || hasUnsyncedExtendedMessages else { return [] }
        let limit: Int
        if head < owed.count {
            // An error of a simple Query ends that statement only.
            guard owed[head].isSync else { return [] }
            limit = owed[head].sequence
        } else {
            // The batch's Sync has not been sent: what the client sends until then is skipped too.
            skippingToSync = true
            limit = Int.max
        }
        var skipped: [CompletionRequest] = []
        while completionsHead < completions.count, completions[completionsHead].batch <= limit {
            skipped.append(completions[completionsHead].request)
            completionsHead += 1
        }
        compactCompletions()
        return skipped
    }

    private mutating func compactCompletions() {
        if completionsHead == completions.count {
            completions.removeAll(keepingCapacity: true)
            completionsHead = 0
        }
    }

    /// The server sent CopyInResponse for the request now at the head: it reads COPY data from here on.
    public mutating func copyInResponseReceived() {
        guard head < owed.count else { return }
        copyInStartSequence = owed[head].sequence
        // Replies to an Execute are owed through the Sync behind it; a simple Query owes its own.
        copyInStartedByExecute = owed[head].isSync
    }

    /// In copy-in mode the server ignores Sync and Flush (protocol "COPY Operations"). libpq sends a Sync
    /// right behind the Execute of a COPY and another after CopyDone, and only the last one is answered,
    /// so the Syncs sent between the COPY's start and its end are owed nothing. A CopyDone or CopyFail
    /// outside COPY is ignored by the server, and here too.
    private mutating func copyInEndSent() {
        guard let start = copyInStartSequence else { return }
        copyInStartSequence = nil
        var kept: [Owed] = Array(owed[..<head])
        for entry in owed[head...] where !(entry.isSync && entry.owner == .client && entry.sequence >= start) {
            kept.append(entry)
        }
        owed = kept
        // The Execute that began the COPY now waits for the client's next Sync.
        hasUnsyncedExtendedMessages = copyInStartedByExecute
    }

    /// Sluice wrote a simple Query of its own.
    public mutating func sluiceQuerySent(_ request: SluiceRequest) {
        append(.sluice(request), isSync: false)
    }

    /// Sluice wrote a Sync of its own, ending extended-protocol messages of its own (never a client's:
    /// call only when none of the client's wait for a Sync).
    public mutating func sluiceSyncSent(_ request: SluiceRequest) {
        append(.sluice(request), isSync: true)
        hasUnsyncedExtendedMessages = false
        skippingToSync = false
    }

    private mutating func append(_ owner: ReplyOwner, isSync: Bool) {
        owed.append(Owed(owner: owner, isSync: isSync, sequence: nextSequence))
        nextSequence += 1
    }

    /// A ReadyForQuery arrived; returns whose it was. Nil means the server sent one nobody asked for,
    /// which is a protocol violation by the server.
    public mutating func readyForQueryReceived(_ status: TransactionStatus) -> ReplyOwner? {
        transactionStatus = status
        // Whatever COPY was running has ended on the server's side (a simple-protocol COPY that failed).
        copyInStartSequence = nil
        guard head < owed.count else { return nil }
        let owner = owed[head].owner
        // Completions of a batch that ended without them (the server skipped them after an error) go, so
        // that the next batch's completions stay matched to their own requests.
        while completionsHead < completions.count && completions[completionsHead].batch <= owed[head].sequence {
            completionsHead += 1
        }
        compactCompletions()
        head += 1
        if head == owed.count {
            owed.removeAll(keepingCapacity: true)
            head = 0
        }
        return owner
    }

    /// Forget everything, for a connection that has just logged in.
    public mutating func reset() {
        owed.removeAll(keepingCapacity: true)
        head = 0
        transactionStatus = .idle
        hasUnsyncedExtendedMessages = false
        copyInStartSequence = nil
        completions.removeAll(keepingCapacity: true)
        completionsHead = 0
        skippingToSync = false
    }
}
