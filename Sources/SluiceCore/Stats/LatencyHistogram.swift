/// Counts of durations, in microseconds, in fixed buckets fine enough for percentiles and coarse enough to
/// keep per pool: nine bounds per decade (1, 1.5, 2, 2.5, 3, 4, 5, 6 and 7.5 times a power of ten) from
/// 10 µs to 7.5 s, then 10 s, then everything longer.
///
/// Recording is a binary search and an increment on an array allocated once, cheap enough to do under the
/// pool lock for every query. Histograms add up (`+=`) across event loops and subtract
/// (`subtracting(_:)`) into the counts of one period, like the counters of `PoolStats`.
public struct LatencyHistogram: Equatable, Sendable {
    /// The buckets' inclusive upper bounds in microseconds, ascending; a last bucket without a bound follows.
    public static let upperBounds: [UInt64] = {
        let multipliers: [UInt64] = [10, 15, 20, 25, 30, 40, 50, 60, 75]
        var bounds: [UInt64] = []
        var scale: UInt64 = 1
        for _ in 1...6 {
            bounds += multipliers.map { $0 * scale }
            scale *= 10
        }
        return bounds + [10_000_000]
    }()

    /// The bounds `prometheusBuckets()` reports, in microseconds: the usual 1-2.5-5 series from 10 µs to 10 s.
    /// Each is one of `upperBounds`, so the coarser counts are exact.
    static let prometheusBounds: [UInt64] = [
        10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000,
    ]

    private static let prometheusBoundIndices: [Int] = prometheusBounds.map { bound in
        guard let index = upperBounds.firstIndex(of: bound) else { fatalError("\(bound) µs is not a bucket bound") }
        return index
    }

    /// Per-bucket counts, one more than `upperBounds` for the durations above the last bound.
    public private(set) var counts: [UInt64]
    /// How many durations were recorded.
    public private(set) var count: UInt64 = 0
    /// The sum of the recorded durations, wrapping like the `PoolStats` totals.
    public private(set) var sumMicros: UInt64 = 0
    /// The longest duration recorded. After `subtracting(_:)`, the longest up to the later histogram, which
    /// bounds the period's from above.
    public private(set) var maxMicros: UInt64 = 0

    /// A histogram with nothing recorded; the only allocation it makes.
    public init() {
        counts = Array(repeating: 0, count: Self.upperBounds.count + 1)
    }

    /// The sum of the recorded durations in seconds, the unit of a Prometheus histogram's `_sum`.
    public var sumSeconds: Double { Double(sumMicros) / 1_000_000 }

    /// The index of the bucket holding `micros`: the first whose upper bound is not below it, as Prometheus's
    /// `le` ("less than or equal") reads.
    public static func bucketIndex(micros: UInt64) -> Int {
        var low = 0
        var high = upperBounds.count
        while low < high {
            let middle = (low + high) / 2
            if upperBounds[middle] < micros {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    /// Records one duration.
    public mutating func record(micros: UInt64) {
        counts[Self.bucketIndex(micros: micros)] &+= 1
        count &+= 1
        sumMicros &+= micros
        maxMicros = max(maxMicros, micros)
    }

    /// Records `times` durations of `micros` each.
    public mutating func record(micros: UInt64, times: UInt64) {
        guard times > 0 else { return }
        counts[Self.bucketIndex(micros: micros)] &+= times
        count &+= times
        sumMicros &+= micros &* times
        maxMicros = max(maxMicros, micros)
    }

    /// Adds the durations of `rhs`, as when totals of several event loops are combined.
    public static func += (lhs: inout LatencyHistogram, rhs: LatencyHistogram) {
        for index in lhs.counts.indices {
            lhs.counts[index] &+= rhs.counts[index]
        }
        lhs.count &+= rhs.count
        lhs.sumMicros &+= rhs.sumMicros
        lhs.maxMicros = max(lhs.maxMicros, rhs.maxMicros)
    }

    /// What was recorded since `earlier`, a copy of this histogram taken before. The maximum stays this
    /// histogram's: the longest duration of the period alone is not known.
    public func subtracting(_ earlier: LatencyHistogram) -> LatencyHistogram {
        var difference = self
        for index in counts.indices {
            difference.counts[index] = counts[index] &- earlier.counts[index]
        }
        difference.count = count &- earlier.count
        difference.sumMicros = sumMicros &- earlier.sumMicros
        return difference
    }

    /// The duration below which `percent` of the recorded ones fall (0 to 100, clamped), or nil when nothing
    /// was recorded.
    ///
    /// Within the bucket holding that rank the durations are taken as spread evenly, so the answer lies
    /// between the bucket's bounds, and never above `maxMicros`. In the last bucket, which has no upper
    /// bound, the answer is `maxMicros`.
    public func percentile(_ percent: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let fraction = percent.isNaN ? 0 : min(max(percent, 0), 100) / 100
        let rank = fraction * Double(count)
        var below: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            guard Double(below + bucketCount) >= rank else {
                below += bucketCount
                continue
            }
            guard index < Self.upperBounds.count else { return maxMicros }
            let lower = index == 0 ? 0 : Double(Self.upperBounds[index - 1])
            let upper = Double(Self.upperBounds[index])
            let within = min(max((rank - Double(below)) / Double(bucketCount), 0), 1)
            let estimate = UInt64((lower + within * (upper - lower)).rounded())
            return min(estimate, max(maxMicros, UInt64(lower)))
        }
        return maxMicros
    }

    /// Cumulative counts at the bounds of `prometheusBounds`, in seconds, for
    /// `PrometheusExposition.histogram`, which adds the `+Inf` bucket from `count`.
    public func prometheusBuckets() -> [(upperBound: Double, cumulativeCount: UInt64)] {
        var buckets: [(upperBound: Double, cumulativeCount: UInt64)] = []
        buckets.reserveCapacity(Self.prometheusBounds.count)
        var cumulative: UInt64 = 0
        var next = 0
        for (bound, index) in zip(Self.prometheusBounds, Self.prometheusBoundIndices) {
            while next <= index {
                cumulative &+= counts[next]
                next += 1
            }
            buckets.append((Double(bound) / 1_000_000, cumulative))
        }
        return buckets
    }
}
