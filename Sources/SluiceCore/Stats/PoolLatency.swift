/// A pool's latency histograms: how long requests took (query), how long transactions lasted, and how
/// long clients waited for a server. Kept beside ``PoolStats`` rather than in it: the totals are copied
/// and reset on every transaction, the histograms only added to.
public struct PoolLatency: Equatable, Sendable {
    public var query = LatencyHistogram()
    public var transaction = LatencyHistogram()
    public var wait = LatencyHistogram()

    public init() {}

    /// Records what a server's batch of requests added to the totals. A batch usually holds one request;
    /// for a pipelined batch every request is recorded at the batch's mean, the only figure kept per batch.
    public mutating func record(_ delta: PoolStats) {
        if delta.queries > 0 { query.record(micros: delta.queryMicros / delta.queries, times: delta.queries) }
        if delta.transactions > 0 {
            transaction.record(micros: delta.transactionMicros / delta.transactions, times: delta.transactions)
        }
    }

    /// What was recorded after `earlier`.
    public func subtracting(_ earlier: PoolLatency) -> PoolLatency {
        var result = PoolLatency()
        result.query = query.subtracting(earlier.query)
        result.transaction = transaction.subtracting(earlier.transaction)
        result.wait = wait.subtracting(earlier.wait)
        return result
    }

    public static func += (lhs: inout PoolLatency, rhs: PoolLatency) {
        lhs.query += rhs.query
        lhs.transaction += rhs.transaction
        lhs.wait += rhs.wait
    }
}
