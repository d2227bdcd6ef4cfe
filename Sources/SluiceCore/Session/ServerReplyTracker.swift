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
    private var owed: [ReplyOwner] = []
    private var head = 0
    public private(set) var transactionStatus: TransactionStatus = .idle
    /// Parse/Bind/Describe/Execute/Close/Flush were sent since the last Sync.
    public private(set) var hasUnsyncedExtendedMessages = false
    /// Syncs sent since the last Execute or Query: those a COPY started there made the server ignore.
    private var syncsSinceCopyStart = 0
    private var unsyncedAtCopyStart = false

    public init() {}

    /// Number of ReadyForQuery messages still to arrive.
    public var owedCount: Int { owed.count - head }

    /// True when some still-owed reply belongs to the client: a query of theirs is running.
    public var clientRequestInFlight: Bool {
        hasUnsyncedExtendedMessages || owed[head...].contains(.client)
    }

    /// The owner of the replies the server is sending now. Replies to extended-protocol messages that
    /// were flushed but not yet synced belong to the client.
    public var currentOwner: ReplyOwner? {
        if head < owed.count { return owed[head] }
        return hasUnsyncedExtendedMessages ? .client : nil
    }

    /// The connection can go to another client, or back to the pool.
    public var isIdle: Bool { head == owed.count && !hasUnsyncedExtendedMessages && transactionStatus == .idle }

    /// Nothing is owed, although a transaction may be open.
    public var isQuiet: Bool { head == owed.count && !hasUnsyncedExtendedMessages }

    /// A message from the client was written to the server.
    public mutating func frontendMessageSent(_ code: UInt8) {
        switch FrontendMessageCode(rawValue: code) {
        case .query:
            // A simple Query ends any extended-protocol sequence before it with its own ReadyForQuery.
            owed.append(.client)
            hasUnsyncedExtendedMessages = false
            syncsSinceCopyStart = 0
            unsyncedAtCopyStart = false
        case .functionCall:
            owed.append(.client)
        case .sync:
            owed.append(.client)
            hasUnsyncedExtendedMessages = false
            syncsSinceCopyStart += 1
        case .execute:
            hasUnsyncedExtendedMessages = true
            syncsSinceCopyStart = 0
            unsyncedAtCopyStart = true
        case .parse, .bind, .describe, .close, .flush:
            hasUnsyncedExtendedMessages = true
        case .copyDone, .copyFail:
            // A COPY FROM STDIN began at the last Execute or Query, and in copy-in mode the server ignores
            // Sync (protocol "COPY Operations"): libpq sends one right behind the Execute and another
            // after CopyDone, yet only the last produces a ReadyForQuery.
            let ignored = min(syncsSinceCopyStart, owedCount)
            for _ in 0..<ignored where owed.last == .client { owed.removeLast() }
            syncsSinceCopyStart = 0
            // Flushes were ignored too: the sequence is as synced as it was when the COPY began.
            hasUnsyncedExtendedMessages = unsyncedAtCopyStart
        case .copyData, .password, .terminate, nil:
            break
        }
    }

    /// Sluice wrote a simple Query of its own.
    public mutating func sluiceQuerySent(_ request: SluiceRequest) {
        owed.append(.sluice(request))
    }

    /// A ReadyForQuery arrived; returns whose it was. Nil means the server sent one nobody asked for,
    /// which is a protocol violation by the server.
    public mutating func readyForQueryReceived(_ status: TransactionStatus) -> ReplyOwner? {
        transactionStatus = status
        guard head < owed.count else { return nil }
        let owner = owed[head]
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
        syncsSinceCopyStart = 0
    }
}
