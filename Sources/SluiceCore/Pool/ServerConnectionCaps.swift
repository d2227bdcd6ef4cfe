/// Server-connection budgets shared by every pool of one database (`max_db_connections`) and of one
/// user (`max_user_connections`).
///
/// Each pool's ``PoolStateMachine`` decides when it wants another server; before opening it, the driver
/// takes a slot here. Every open server holds one slot of its database and one of its user, whatever
/// the limits are, so a limit raised or lowered by a reload is judged against the true count. A pool
/// refused a slot is remembered in arrival order, and ``blockedPools(database:user:)`` hands the
/// longest-blocked first to whoever frees a slot, so one busy pool cannot starve the others.
public struct ServerConnectionCaps<PoolID: Hashable & Sendable>: Sendable {
    private struct Budget: Sendable {
        var used = 0
        /// Pools refused a slot, oldest first, each once.
        var blocked: [PoolID] = []
    }

    private var databases: [String: Budget] = [:]
    private var users: [String: Budget] = [:]
    /// Entries in all `blocked` lists: zero almost always, which spares the per-release check two
    /// dictionary look-ups keyed by strings.
    private var blockedEntries = 0

    public init() {}

    /// Servers open or opening for a database.
    public func used(database: String) -> Int { databases[database]?.used ?? 0 }
    /// Servers open or opening for a user.
    public func used(user: String) -> Int { users[user]?.used ?? 0 }

    /// Whether a database or user is at its limit (0 means no limit).
    public func isFull(database: String, limit: Int) -> Bool { limit > 0 && used(database: database) >= limit }
    public func isFull(user: String, limit: Int) -> Bool { limit > 0 && used(user: user) >= limit }

    /// Takes one slot for a new server of `pool` when both limits allow. Otherwise the pool is
    /// remembered as blocked on each full budget and the result is false.
    public mutating func take(
        for pool: PoolID, database: String, databaseLimit: Int, user: String, userLimit: Int
    ) -> Bool {
        let databaseFull = isFull(database: database, limit: databaseLimit)
        let userFull = isFull(user: user, limit: userLimit)
        if databaseFull || userFull {
            if databaseFull { Self.block(pool, in: &databases[database, default: Budget()], entries: &blockedEntries) }
            if userFull { Self.block(pool, in: &users[user, default: Budget()], entries: &blockedEntries) }
            return false
        }
        databases[database, default: Budget()].used += 1
        users[user, default: Budget()].used += 1
        unblock(pool, database: database, user: user)
        return true
    }

    /// A server of this database and user closed (or never got connected): its slot is free again.
    public mutating func release(database: String, user: String) {
        precondition(used(database: database) > 0 && used(user: user) > 0, "released a slot nobody held")
        databases[database]?.used -= 1
        users[user]?.used -= 1
    }

    /// Drops the budgets of a database and a user that hold no slot and block no pool, so that names seen
    /// once (through a `*` entry) leave nothing behind; a later `take` starts them afresh.
    public mutating func forgetUnused(database: String, user: String) {
        if let budget = databases[database], budget.used == 0, budget.blocked.isEmpty { databases[database] = nil }
        if let budget = users[user], budget.used == 0, budget.blocked.isEmpty { users[user] = nil }
    }

    /// Pools waiting for a slot of this database or this user, longest-blocked first, without duplicates.
    public func blockedPools(database: String, user: String) -> [PoolID] {
        var result = databases[database]?.blocked ?? []
        for pool in users[user]?.blocked ?? [] where !result.contains(pool) { result.append(pool) }
        return result
    }

    /// Whether any pool waits for a slot of this database or user.
    public func hasBlocked(database: String, user: String) -> Bool {
        guard blockedEntries > 0 else { return false }
        return !(databases[database]?.blocked.isEmpty ?? true) || !(users[user]?.blocked.isEmpty ?? true)
    }

    /// The pool no longer waits for a slot (it got one, or its clients left).
    public mutating func unblock(_ pool: PoolID, database: String, user: String) {
        guard blockedEntries > 0 else { return }
        if let i = databases[database]?.blocked.firstIndex(of: pool) {
            databases[database]!.blocked.remove(at: i)
            blockedEntries -= 1
        }
        if let i = users[user]?.blocked.firstIndex(of: pool) {
            users[user]!.blocked.remove(at: i)
            blockedEntries -= 1
        }
    }

    private static func block(_ pool: PoolID, in budget: inout Budget, entries: inout Int) {
        if !budget.blocked.contains(pool) {
            budget.blocked.append(pool)
            entries += 1
        }
    }
}
