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
}

/// Tracks, for one server connection, which ReadyForQuery messages are still owed and to whom.
///
/// Every simple Query, FunctionCall and Sync makes the server send exactly one ReadyForQuery, whatever
/// fails in between (on an error in an extended-protocol batch the server skips to the next Sync). So a
/// FIFO of owners, one entry per such message sent, tells whose reply is arriving, and the server is
/// free only when the FIFO is empty, no extended-protocol message waits for its Sync, and the last
/// ReadyForQuery said idle. Flush is deliberately not a boundary: the client will send Bind or Execute
/// to the same server later.
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

    public init() {}

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
        case .parse, .bind, .describe, .execute, .close, .flush:
            hasUnsyncedExtendedMessages = true
        case .copyDone, .copyFail:
            copyInEndSent()
        case .copyData, .password, .terminate, nil:
            break
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
    }
}
