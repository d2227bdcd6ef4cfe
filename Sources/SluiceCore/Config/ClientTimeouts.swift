/// Timeouts that bound what one client may do, in seconds (0 = off). Set globally and per user.
public struct ClientTimeouts: Sendable, Equatable {
    /// `query_timeout`: one request on the server (from the moment it reaches the server to its
    /// ReadyForQuery), not the transaction. Sluice cancels it on the server.
    public var queryTimeout: Double = 0
    /// `idle_transaction_timeout`: one idle gap inside a transaction, the client holding a server and
    /// sending nothing. The client is disconnected; its transaction is rolled back.
    public var idleTransactionTimeout: Double = 0
    /// `transaction_timeout`: a whole transaction, from its first request to its end.
    public var transactionTimeout: Double = 0
    /// `client_idle_timeout`: a client with no transaction sending nothing for this long is disconnected.
    public var clientIdleTimeout: Double = 0

    public init() {}

    /// These timeouts with a user's `[users]` overrides applied.
    public func overridden(by user: UserConfig?) -> ClientTimeouts {
        guard let user else { return self }
        var result = self
        if let v = user.queryTimeout { result.queryTimeout = v }
        if let v = user.idleTransactionTimeout { result.idleTransactionTimeout = v }
        if let v = user.transactionTimeout { result.transactionTimeout = v }
        if let v = user.clientIdleTimeout { result.clientIdleTimeout = v }
        return result
    }
}
