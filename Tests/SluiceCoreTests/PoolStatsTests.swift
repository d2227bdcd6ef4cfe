import Testing

@testable import SluiceCore

@Suite("Pool statistics")
struct PoolStatsTests {
    @Test("a one-statement transaction is one query and one transaction of the same length")
    func singleStatement() {
        var clock = TransactionClock()
        let delta = clock.requestAnswered(startedAt: 10, now: 10.002, status: .idle)
        #expect(delta.queries == 1 && delta.transactions == 1)
        #expect(delta.queryMicros == 2000 && delta.transactionMicros == 2000)
        #expect(clock.openedAt == nil)
    }

    @Test("a transaction block counts once, from its first request to the ReadyForQuery that leaves it")
    func transactionBlock() {
        var clock = TransactionClock()
        var total = PoolStats()
        total += clock.requestAnswered(startedAt: 1.0, now: 1.001, status: .inTransaction)
        total += clock.requestAnswered(startedAt: 1.5, now: 1.6, status: .failed)
        #expect(total.transactions == 0 && clock.openedAt == 1.0)
        total += clock.requestAnswered(startedAt: 2.0, now: 2.001, status: .idle)
        #expect(total.transactions == 1 && total.queries == 3)
        #expect(total.transactionMicros == 1_001_000)
        #expect(total.queryMicros == 1000 + 100_000 + 1000)
    }

    @Test("a reset forgets the open transaction of a client that left")
    func reset() {
        var clock = TransactionClock()
        _ = clock.requestAnswered(startedAt: 1, now: 2, status: .inTransaction)
        clock.reset()
        let delta = clock.requestAnswered(startedAt: 50, now: 50.5, status: .idle)
        #expect(delta.transactionMicros == 500_000)
    }

    @Test("averages are per second for counts, bytes and waiting, per item for times")
    func averages() {
        var earlier = PoolStats()
        earlier.transactions = 100
        earlier.queries = 200
        var now = earlier
        now.transactions += 20
        now.queries += 40
        now.received = 4000
        now.sent = 8000
        now.transactionMicros = 20 * 1500
        now.queryMicros = 40 * 500
        now.waitMicros = 10_000
        let averages = now.averages(since: earlier, over: 2)
        #expect(averages.transactionsPerSecond == 10 && averages.queriesPerSecond == 20)
        #expect(averages.receivedPerSecond == 2000 && averages.sentPerSecond == 4000)
        #expect(averages.transactionMicros == 1500 && averages.queryMicros == 500)
        #expect(averages.waitMicrosPerSecond == 5000)
        #expect(
            PoolStats().averages(since: PoolStats(), over: 60)
                == PoolStats.Averages(
                    transactionsPerSecond: 0, queriesPerSecond: 0, receivedPerSecond: 0, sentPerSecond: 0,
                    transactionMicros: 0, queryMicros: 0, waitMicrosPerSecond: 0))
    }

    @Test("a negative time difference counts as zero")
    func negativeTime() {
        #expect(PoolStats.micros(-0.000001) == 0)
        #expect(PoolStats.micros(0.0000015) == 2)
    }
}
