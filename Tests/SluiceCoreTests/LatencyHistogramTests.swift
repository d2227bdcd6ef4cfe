import Testing

@testable import SluiceCore

@Suite("Latency histogram")
struct LatencyHistogramTests {
    @Test("the bounds run 10, 15, 20, 25, 30, 40, 50, 60, 75 per decade from 10 µs to 7.5 s, then 10 s")
    func bounds() {
        let bounds = LatencyHistogram.upperBounds
        #expect(bounds.count == 55)
        #expect(Array(bounds.prefix(10)) == [10, 15, 20, 25, 30, 40, 50, 60, 75, 100])
        #expect(Array(bounds.suffix(3)) == [6_000_000, 7_500_000, 10_000_000])
        #expect(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 })
        #expect(LatencyHistogram().counts.count == 56)
    }

    @Test("a duration equal to a bound goes into that bound's bucket, one above it into the next")
    func boundaries() {
        #expect(LatencyHistogram.bucketIndex(micros: 0) == 0)
        #expect(LatencyHistogram.bucketIndex(micros: 10) == 0)
        #expect(LatencyHistogram.bucketIndex(micros: 11) == 1)
        #expect(LatencyHistogram.bucketIndex(micros: 15) == 1)
        #expect(LatencyHistogram.bucketIndex(micros: 7_500_000) == 53)
        #expect(LatencyHistogram.bucketIndex(micros: 10_000_000) == 54)
        #expect(LatencyHistogram.bucketIndex(micros: 10_000_001) == 55)
        #expect(LatencyHistogram.bucketIndex(micros: .max) == 55)
        for (index, bound) in LatencyHistogram.upperBounds.enumerated() {
            #expect(LatencyHistogram.bucketIndex(micros: bound) == index)
            #expect(LatencyHistogram.bucketIndex(micros: bound + 1) == index + 1)
        }
    }

    @Test("recording keeps counts, the sum and the maximum")
    func recording() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 12)
        histogram.record(micros: 20_000_000)
        histogram.record(micros: 100, times: 3)
        histogram.record(micros: 1_000_000_000, times: 0)
        #expect(histogram.count == 5)
        #expect(histogram.sumMicros == 12 + 20_000_000 + 300)
        #expect(histogram.maxMicros == 20_000_000)
        #expect(histogram.counts[1] == 1 && histogram.counts[9] == 3 && histogram.counts[55] == 1)
        #expect(histogram.counts.reduce(0, +) == 5)
        #expect(histogram.sumSeconds == 20.000312)
    }

    @Test("an empty histogram has no percentiles and all-zero Prometheus buckets")
    func empty() {
        let histogram = LatencyHistogram()
        #expect(histogram.percentile(50) == nil)
        #expect(histogram.percentile(0) == nil)
        #expect(histogram.count == 0 && histogram.sumMicros == 0 && histogram.maxMicros == 0)
        #expect(histogram.prometheusBuckets().allSatisfy { $0.cumulativeCount == 0 })
    }

    @Test("percentiles of evenly spread durations come out exact at bucket bounds and interpolated between")
    func uniformPercentiles() {
        var histogram = LatencyHistogram()
        for micros in UInt64(1)...1000 { histogram.record(micros: micros) }
        #expect(histogram.percentile(50) == 500)
        #expect(histogram.percentile(99) == 990)
        #expect(histogram.percentile(90) == 900)
        #expect(histogram.percentile(100) == 1000)
        #expect(histogram.percentile(1) == 10)
        #expect(histogram.percentile(0) == 0)
    }

    @Test("a percentile stays inside its bucket and never exceeds the maximum recorded")
    func clamping() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 1200, times: 10)
        // All ten are in (1000, 1500]: the interpolation runs from 1000, but no answer exceeds 1200.
        #expect(histogram.percentile(10) == 1050)
        #expect(histogram.percentile(20) == 1100)
        #expect(histogram.percentile(50) == 1200)
        #expect(histogram.percentile(100) == 1200)
        #expect(histogram.percentile(250) == 1200)
        #expect(histogram.percentile(-5) == 1000)
        #expect(histogram.percentile(.nan) == 1000)
    }

    @Test("a percentile in a two-valued distribution lands in the bucket of its rank, capped by the maximum")
    func bimodal() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 95, times: 90)
        histogram.record(micros: 48_000, times: 10)
        #expect(histogram.percentile(50) == 89)
        #expect(histogram.percentile(90) == 100)
        #expect(histogram.percentile(95) == 45_000)
        #expect(histogram.percentile(99) == 48_000)
    }

    @Test("the bucket above 10 s reports the longest duration recorded")
    func overflow() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 5, times: 98)
        histogram.record(micros: 12_000_000)
        histogram.record(micros: 30_000_000)
        #expect(histogram.percentile(99) == 30_000_000)
        #expect(histogram.percentile(100) == 30_000_000)
        #expect(histogram.percentile(50) == 5)
    }

    @Test("adding histograms adds counts and sums and keeps the larger maximum")
    func adding() {
        var first = LatencyHistogram()
        first.record(micros: 30)
        var second = LatencyHistogram()
        second.record(micros: 30, times: 2)
        second.record(micros: 4_000)
        first += second
        #expect(first.count == 4 && first.sumMicros == 4_090 && first.maxMicros == 4_000)
        #expect(first.counts[4] == 3)
    }

    @Test("subtracting an earlier copy leaves what was recorded since, with the later maximum")
    func subtracting() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 9_000_000)
        histogram.record(micros: 40, times: 5)
        let earlier = histogram
        histogram.record(micros: 40, times: 2)
        histogram.record(micros: 600)
        let period = histogram.subtracting(earlier)
        #expect(period.count == 3 && period.sumMicros == 680)
        #expect(period.counts[5] == 2 && period.counts[16] == 1 && period.counts.reduce(0, +) == 3)
        #expect(period.maxMicros == 9_000_000)
        #expect(period.percentile(50) == 38)
        let nothing = histogram.subtracting(histogram)
        #expect(nothing.count == 0 && nothing.sumMicros == 0 && nothing.counts.allSatisfy { $0 == 0 })
        #expect(nothing.maxMicros == 9_000_000)
    }

    @Test("Prometheus buckets are cumulative counts at the 1-2.5-5 bounds in seconds")
    func prometheusBuckets() {
        var histogram = LatencyHistogram()
        histogram.record(micros: 10)
        histogram.record(micros: 11)
        histogram.record(micros: 25)
        histogram.record(micros: 600, times: 4)
        histogram.record(micros: 10_000_000)
        histogram.record(micros: 10_000_001)
        let buckets = histogram.prometheusBuckets()
        #expect(
            buckets.map(\.upperBound) == [
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                0.25, 0.5, 1, 2.5, 5, 10,
            ])
        #expect(
            buckets.map(\.cumulativeCount) == [1, 3, 3, 3, 3, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8])
        #expect(histogram.count == 9)
    }

    @Test("Prometheus buckets agree with a count of the recorded durations at or below each bound")
    func prometheusBucketsAgainstCounting() {
        var histogram = LatencyHistogram()
        var recorded: [UInt64] = []
        var micros: UInt64 = 1
        while micros < 20_000_000 {
            histogram.record(micros: micros)
            recorded.append(micros)
            micros = micros * 13 / 10 + 1
        }
        for bucket in histogram.prometheusBuckets() {
            let bound = UInt64((bucket.upperBound * 1_000_000).rounded())
            #expect(bucket.cumulativeCount == UInt64(recorded.count { $0 <= bound }))
        }
    }
}
