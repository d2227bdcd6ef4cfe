/// A pool's running totals, in the units of PgBouncer's `SHOW STATS` (`total_*` columns): counts,
/// bytes and microseconds since start. Kept with the pool registry's lock held, so one reader holding
/// the lock sees every event loop's work up to the same moment.
public struct PoolStats: Equatable, Sendable {
    /// Transactions: from a client's request to the server being idle outside a transaction again.
    public var transactions: UInt64 = 0
    /// Requests answered with ReadyForQuery: a simple Query, or extended messages up to a Sync.
    public var queries: UInt64 = 0
    /// Bytes read from clients of the pool.
    public var received: UInt64 = 0
    /// Bytes written to clients of the pool.
    public var sent: UInt64 = 0
    public var transactionMicros: UInt64 = 0
    public var queryMicros: UInt64 = 0
    /// Time clients spent waiting for a server.
    public var waitMicros: UInt64 = 0
    /// Times a server was lent to a client.
    public var serverAssignments: UInt64 = 0
    /// Parse messages clients sent, and Parse messages that reached servers (a tracked statement is parsed
    /// once per server that needs it, whatever the client sends).
    public var clientParses: UInt64 = 0
    public var serverParses: UInt64 = 0
    /// Bind messages clients sent.
    public var binds: UInt64 = 0
    /// Clients that logged in.
    public var logins: UInt64 = 0
    /// ErrorResponses that reached clients.
    public var errors: UInt64 = 0

    public init() {}

    public static func += (lhs: inout PoolStats, rhs: PoolStats) {
        lhs.transactions &+= rhs.transactions
        lhs.queries &+= rhs.queries
        lhs.received &+= rhs.received
        lhs.sent &+= rhs.sent
        lhs.transactionMicros &+= rhs.transactionMicros
        lhs.queryMicros &+= rhs.queryMicros
        lhs.waitMicros &+= rhs.waitMicros
        lhs.serverAssignments &+= rhs.serverAssignments
        lhs.clientParses &+= rhs.clientParses
        lhs.serverParses &+= rhs.serverParses
        lhs.binds &+= rhs.binds
        lhs.logins &+= rhs.logins
        lhs.errors &+= rhs.errors
    }

    /// The twelve statistics in the order of PgBouncer's `SHOW STATS_TOTALS` columns
    /// (``AdminColumns/statNames``).
    public var pgbouncerTotals: [UInt64] {
        [
            serverAssignments, transactions, queries, received, sent, transactionMicros, queryMicros, waitMicros,
            clientParses, serverParses, binds, logins,
        ]
    }

    /// Whole microseconds in `seconds`, never negative (clocks of different loops are read at different
    /// moments, so a difference can come out a hair below zero).
    public static func micros(_ seconds: Double) -> UInt64 {
        seconds > 0 ? UInt64((seconds * 1_000_000).rounded()) : 0
    }

    /// What happened between `earlier` and these totals, as PgBouncer's `avg_*` columns show it: counts
    /// and bytes per second, times per transaction or query, and waiting time per second.
    public func averages(since earlier: PoolStats, over seconds: Double) -> Averages {
        let transactions = self.transactions &- earlier.transactions
        let queries = self.queries &- earlier.queries
        let span = max(seconds, 1e-9)
        func perSecond(_ value: UInt64) -> UInt64 { UInt64((Double(value) / span).rounded()) }
        return Averages(
            transactionsPerSecond: perSecond(transactions),
            queriesPerSecond: perSecond(queries),
            receivedPerSecond: perSecond(received &- earlier.received),
            sentPerSecond: perSecond(sent &- earlier.sent),
            transactionMicros: transactions == 0 ? 0 : (transactionMicros &- earlier.transactionMicros) / transactions,
            queryMicros: queries == 0 ? 0 : (queryMicros &- earlier.queryMicros) / queries,
            waitMicrosPerSecond: perSecond(waitMicros &- earlier.waitMicros),
            serverAssignmentsPerSecond: perSecond(serverAssignments &- earlier.serverAssignments),
            clientParsesPerSecond: perSecond(clientParses &- earlier.clientParses),
            serverParsesPerSecond: perSecond(serverParses &- earlier.serverParses),
            bindsPerSecond: perSecond(binds &- earlier.binds),
            loginsPerSecond: perSecond(logins &- earlier.logins))
    }

    public struct Averages: Equatable, Sendable {
        public var transactionsPerSecond: UInt64
        public var queriesPerSecond: UInt64
        public var receivedPerSecond: UInt64
        public var sentPerSecond: UInt64
        public var transactionMicros: UInt64
        public var queryMicros: UInt64
        public var waitMicrosPerSecond: UInt64
        public var serverAssignmentsPerSecond: UInt64 = 0
        public var clientParsesPerSecond: UInt64 = 0
        public var serverParsesPerSecond: UInt64 = 0
        public var bindsPerSecond: UInt64 = 0
        public var loginsPerSecond: UInt64 = 0

        /// The twelve averages in the order of ``AdminColumns/statNames``, as `SHOW STATS_AVERAGES` shows them.
        public var pgbouncerAverages: [UInt64] {
            [
                serverAssignmentsPerSecond, transactionsPerSecond, queriesPerSecond, receivedPerSecond,
                sentPerSecond, transactionMicros, queryMicros, waitMicrosPerSecond, clientParsesPerSecond,
                serverParsesPerSecond, bindsPerSecond, loginsPerSecond,
            ]
        }
    }
}

/// Where a server connection's transaction stands, for the transaction counters. A value the server
/// connection keeps and advances at each ReadyForQuery it forwards; it returns what to add to the totals.
public struct TransactionClock: Sendable {
    /// When the open transaction's first request started, while the server is inside a transaction.
    public private(set) var openedAt: Double?

    public init() {}

    /// A client request that started at `startedAt` was answered at `now` with ReadyForQuery carrying
    /// `status`. Returns the totals to add: one query, and one transaction when it is over.
    public mutating func requestAnswered(startedAt: Double, now: Double, status: TransactionStatus) -> PoolStats {
        var delta = PoolStats()
        delta.queries = 1
        delta.queryMicros = PoolStats.micros(now - startedAt)
        switch status {
        case .idle:
            delta.transactions = 1
            delta.transactionMicros = PoolStats.micros(now - (openedAt ?? startedAt))
            openedAt = nil
        case .inTransaction, .failed:
            if openedAt == nil { openedAt = startedAt }
        }
        return delta
    }

    /// The server left its client mid-transaction (closed, or reset for another client): nothing open.
    public mutating func reset() { openedAt = nil }
}
