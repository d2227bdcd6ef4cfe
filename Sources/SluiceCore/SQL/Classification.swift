/// What a statement text asks for, as far as read/write routing is concerned.
///
/// Only `.read` may go to a streaming replica on its own merit; every other case either needs the primary or
/// is something Sluice acts on itself (transaction boundaries, `sluice.route`). When in doubt the classifier
/// answers `.write`: sending a read to the primary costs a little load, sending a write to a replica fails
/// the client's statement.
public enum StatementClass: Equatable, Sendable {
    /// Provably read-only: every statement in the text may run on a hot standby. Savepoint commands count as
    /// reads too, since a standby runs them inside a read-only transaction.
    case read
    /// Must run on the primary. The reason is short and meant for logs: "INSERT", "FOR UPDATE",
    /// "volatile function nextval", "not parsable", "multiple statements", …
    case write(reason: String)
    /// `BEGIN` or `START TRANSACTION`, with the modes as written.
    case begin(TransactionModes)
    /// `SET TRANSACTION …` inside a transaction. (`SET SESSION CHARACTERISTICS AS TRANSACTION` changes the
    /// session's defaults for later transactions and is a `.write`, like any other session setting.)
    case setTransaction(TransactionModes)
    /// `COMMIT`, `ROLLBACK`, `END` or `ABORT`, including their `AND CHAIN` forms, which start the next
    /// transaction with the same modes. Two-phase commands (`PREPARE TRANSACTION`, `COMMIT PREPARED`,
    /// `ROLLBACK PREPARED`) are writes: a standby refuses them.
    case endTransaction
    /// `SET [SESSION | LOCAL] sluice.route = 'primary' | 'replica' | 'auto'`, or `RESET sluice.route` and
    /// `SET sluice.route TO DEFAULT` (both `.auto`). The setting is Sluice's own and is never forwarded.
    /// `setting` is nil when the value is not one of the three (or there is more than one value), so Sluice
    /// can answer with SQLSTATE 22023 (invalid_parameter_value) as PostgreSQL would; `local` is true for
    /// `SET LOCAL`, which lasts until the end of the current transaction.
    case setRoute(RouteSetting?, local: Bool)
    /// `SHOW sluice.route`, which Sluice answers itself: no server knows the setting.
    case showRoute
}

/// Transaction modes as written in `BEGIN`, `START TRANSACTION` or `SET TRANSACTION`; nil where the text
/// does not say, so the router can tell "not given" (the session default applies) from an explicit choice.
public struct TransactionModes: Equatable, Sendable {
    /// `READ ONLY` (true) or `READ WRITE` (false).
    public var readOnly: Bool?
    /// The isolation level in lower case: "serializable", "repeatable read", "read committed" or
    /// "read uncommitted". A hot standby refuses serializable transactions, so the router must see it.
    public var isolationLevel: String?
    /// `DEFERRABLE` (true) or `NOT DEFERRABLE` (false).
    public var deferrable: Bool?

    public init(readOnly: Bool? = nil, isolationLevel: String? = nil, deferrable: Bool? = nil) {
        self.readOnly = readOnly
        self.isolationLevel = isolationLevel
        self.deferrable = deferrable
    }
}

/// The values of Sluice's `sluice.route` setting.
public enum RouteSetting: String, Sendable {
    /// Every statement goes to the primary.
    case primary
    /// Reads go to a replica even where `auto` would not send them (for example inside a transaction that
    /// did not say READ ONLY); writes still go to the primary.
    case replica
    /// The classifier decides, statement by statement.
    case auto
}

/// A routing hint written in a comment of the statement text: `/* sluice: primary */`,
/// `-- sluice: replica`. Only real comments count: the same words inside a string literal, a quoted
/// identifier or a dollar-quoted body are data, not hints.
public enum RouteHint: Sendable {
    case primary
    case replica
}

/// The classifier's answer for one statement text.
public struct Classification: Equatable, Sendable {
    /// What the statements in the text ask for.
    public var statementClass: StatementClass
    /// The hint found in the text's comments, if any. With several that disagree, `.primary` wins: it is
    /// the one that cannot fail.
    public var hint: RouteHint?

    public init(statementClass: StatementClass, hint: RouteHint? = nil) {
        self.statementClass = statementClass
        self.hint = hint
    }
}
