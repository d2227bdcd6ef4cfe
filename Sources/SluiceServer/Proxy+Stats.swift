import SluiceCore
import SluiceIO

/// Reading the pools' totals: `log_stats` lines now, the admin console and the stats port later.
extension Proxy {

    /// Every pool's totals summed per database (as PgBouncer's `SHOW STATS` groups them). Read with the
    /// registry's lock held, which every loop also holds when it adds to them: one coherent picture of
    /// all loops at one moment.
    func statsByDatabase() -> [String: PoolStats] {
        shared.lock.withLock {
            var byDatabase: [String: PoolStats] = [:]
            for pool in pools.values { byDatabase[pool.key.database, default: PoolStats()] += pool.stats }
            return byDatabase
        }
    }

    /// Closes a `stats_period` for every pool: the period just ended becomes the one the console's averages
    /// describe. Loop 0's tick calls this with the lock held.
    func rollStatsPeriodIfDue(_ now: Double) {
        if shared.statsPeriodStartedAt == 0 { shared.statsPeriodStartedAt = now }
        let elapsed = now - shared.statsPeriodStartedAt
        guard elapsed >= Double(max(1, config.statsPeriod)) else { return }
        for pool in pools.values {
            pool.lastPeriod = (pool.periodStart, pool.stats)
            pool.periodStart = pool.stats
            pool.lastPeriodLatency = pool.latency.subtracting(pool.periodStartLatency)
            pool.periodStartLatency = pool.latency
        }
        shared.lastStatsPeriodLength = elapsed
        shared.statsPeriodStartedAt = now
    }

    /// The latency the console and `/stats` report: the last whole `stats_period`, or, until the first one
    /// has ended, everything since start (an empty answer for the first minute would tell an operator
    /// nothing). Lock held.
    func recentLatency(of pool: Pool) -> PoolLatency {
        shared.lastStatsPeriodLength > 0 ? pool.lastPeriodLatency : pool.latency
    }

    /// `log_stats`: every `stats_period` seconds, one line with the averages of the period across all
    /// pools, as PgBouncer writes it. Loop 0's tick calls this with the lock held.
    func logStatsIfDue(_ now: Double) {
        guard config.logStats else { return }
        if statsLog.loggedAt == 0 { statsLog.loggedAt = now }
        let elapsed = now - statsLog.loggedAt
        guard elapsed >= Double(config.statsPeriod) else { return }
        var total = shared.freedPoolTotals
        for databaseTotals in statsByDatabase().values { total += databaseTotals }
        let averages = total.averages(since: statsLog.totals, over: elapsed)
        statsLog = (now, total)
        logger.info(
            "stats",
            [
                ("xacts_per_s", String(averages.transactionsPerSecond)),
                ("queries_per_s", String(averages.queriesPerSecond)),
                ("in_bytes_per_s", String(averages.receivedPerSecond)),
                ("out_bytes_per_s", String(averages.sentPerSecond)),
                ("xact_us", String(averages.transactionMicros)),
                ("query_us", String(averages.queryMicros)),
                ("wait_us", String(averages.waitMicrosPerSecond)),
                ("total_xacts", String(total.transactions)),
                ("total_queries", String(total.queries)),
            ])
    }
}
