import Foundation
import Testing

@testable import SluiceCore

@Suite("Prometheus exposition")
struct PrometheusExpositionTests {
    private static let promtool = "/usr/bin/promtool"

    /// Gauges, a counter, a histogram from `LatencyHistogram`, escapes in help and label values, and a family
    /// that is returned to after others were started.
    private static func sampleExposition() -> String {
        var latency = LatencyHistogram()
        latency.record(micros: 8)
        latency.record(micros: 480, times: 3)
        latency.record(micros: 12_000_000)
        var exposition = PrometheusExposition()
        exposition.family("sluice_client_connections", type: .gauge, help: "Client connections by state.")
        exposition.sample(labels: [("database", "app"), ("state", "active")], value: 3)
        exposition.sample(labels: [("database", "we\"ird\\db\nname"), ("state", "waiting")], value: 0)
        exposition.family(
            "sluice_queries_total", type: .counter, help: "Queries answered,\nwith a \\ and a \"quote\".")
        exposition.sample(labels: [("database", "app")], value: UInt64(12_345))
        exposition.family("sluice_query_duration_seconds", type: .histogram, help: "Query durations.")
        exposition.histogram(
            labels: [("database", "app")], buckets: latency.prometheusBuckets(), sum: latency.sumSeconds,
            count: latency.count)
        exposition.family("sluice_client_connections", type: .gauge, help: "Client connections by state.")
        exposition.sample(labels: [("database", "other"), ("state", "active")], value: 1.5)
        exposition.family("sluice_pool_mode_info", type: .gauge, help: "Pool mode.")
        exposition.sample(value: 1)
        return exposition.rendered()
    }

    @Test("each family is one block of HELP, TYPE and its samples, in the order the families were first named")
    func grouping() {
        var exposition = PrometheusExposition()
        exposition.family("a_total", type: .counter, help: "A.")
        exposition.sample(labels: [("x", "1")], value: 1)
        exposition.family("b", type: .gauge, help: "B.")
        exposition.sample(value: Int64(-2))
        exposition.family("a_total", type: .counter, help: "A.")
        exposition.sample(labels: [("x", "2")], value: 3)
        exposition.family("c", type: .untyped, help: "C.")
        #expect(
            exposition.rendered() == """
                # HELP a_total A.
                # TYPE a_total counter
                a_total{x="1"} 1
                a_total{x="2"} 3
                # HELP b B.
                # TYPE b gauge
                b -2
                # HELP c C.
                # TYPE c untyped

                """)
        #expect(PrometheusExposition().rendered() == "")
    }

    @Test("label values escape backslash, double quote and newline; help escapes backslash and newline only")
    func escaping() {
        var exposition = PrometheusExposition()
        exposition.family("g", type: .gauge, help: "line\\one\nline \"two\"")
        exposition.sample(
            labels: [("a", "back\\slash"), ("b", "\"quoted\""), ("c", "new\nline"), ("d", "é")], value: 1)
        #expect(
            exposition.rendered() == #"""
                # HELP g line\\one\nline "two"
                # TYPE g gauge
                g{a="back\\slash",b="\"quoted\"",c="new\nline",d="é"} 1

                """#)
    }

    @Test("numbers: integers plain, integral floats without a fraction, others shortest, infinities and NaN named")
    func numbers() {
        #expect(PrometheusExposition.formatted(10) == "10")
        #expect(PrometheusExposition.formatted(-0.0) == "0")
        #expect(PrometheusExposition.formatted(0.0005) == "0.0005")
        #expect(PrometheusExposition.formatted(0.001) == "0.001")
        #expect(PrometheusExposition.formatted(2.5) == "2.5")
        #expect(PrometheusExposition.formatted(0.00001) == "1e-05")
        #expect(PrometheusExposition.formatted(0.1 + 0.2) == "0.30000000000000004")
        #expect(PrometheusExposition.formatted(123_456_789_012_345) == "123456789012345")
        #expect(PrometheusExposition.formatted(1e15) == "1000000000000000")
        #expect(PrometheusExposition.formatted(-0x1p53 + 1) == "-9007199254740991")
        #expect(PrometheusExposition.formatted(1e16) == "1e+16")
        #expect(PrometheusExposition.formatted(.infinity) == "+Inf")
        #expect(PrometheusExposition.formatted(-.infinity) == "-Inf")
        #expect(PrometheusExposition.formatted(.nan) == "NaN")
        var exposition = PrometheusExposition()
        exposition.family("n", type: .gauge, help: "N.")
        exposition.sample(value: UInt64.max)
        exposition.sample(value: Int64.min)
        exposition.sample(value: Double.nan)
        #expect(exposition.rendered().hasSuffix("n 18446744073709551615\nn -9223372036854775808\nn NaN\n"))
    }

    @Test("a histogram writes its buckets with le last, a +Inf bucket equal to the count, then sum and count")
    func histogram() {
        var exposition = PrometheusExposition()
        exposition.family("d_seconds", type: .histogram, help: "D.")
        exposition.histogram(
            labels: [("db", "x")], buckets: [(0.0005, 1), (0.001, 2), (2.5, 4), (10, 4), (.infinity, 99)], sum: 3.25,
            count: 5)
        exposition.histogram(buckets: [], sum: 0, count: 0)
        #expect(
            exposition.rendered() == """
                # HELP d_seconds D.
                # TYPE d_seconds histogram
                d_seconds_bucket{db="x",le="0.0005"} 1
                d_seconds_bucket{db="x",le="0.001"} 2
                d_seconds_bucket{db="x",le="2.5"} 4
                d_seconds_bucket{db="x",le="10"} 4
                d_seconds_bucket{db="x",le="+Inf"} 5
                d_seconds_sum{db="x"} 3.25
                d_seconds_count{db="x"} 5
                d_seconds_bucket{le="+Inf"} 0
                d_seconds_sum 0
                d_seconds_count 0

                """)
    }

    @Test("a latency histogram's buckets are written at the standard bounds in seconds")
    func latencyBuckets() {
        let rendered = Self.sampleExposition()
        let expectedBounds = [
            "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
            "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
        ]
        let bucketLines = rendered.split(separator: "\n").filter {
            $0.hasPrefix("sluice_query_duration_seconds_bucket")
        }
        #expect(bucketLines.count == expectedBounds.count)
        for (line, bound) in zip(bucketLines, expectedBounds) {
            #expect(line.contains("{database=\"app\",le=\"\(bound)\"}"))
        }
        #expect(bucketLines.first?.hasSuffix(" 1") == true)
        #expect(bucketLines[5].hasSuffix(" 4"))
        #expect(bucketLines.last?.hasSuffix(" 5") == true)
        #expect(rendered.contains("\nsluice_query_duration_seconds_sum{database=\"app\"} 12.001448\n"))
        #expect(rendered.contains("\nsluice_query_duration_seconds_count{database=\"app\"} 5\n"))
    }

    @Test("names: metric names may hold colons, label names may not, and the __ prefix is reserved")
    func names() {
        #expect(PrometheusExposition.isMetricName("sluice:rate_5m"))
        #expect(PrometheusExposition.isMetricName("_x9"))
        #expect(!PrometheusExposition.isMetricName("9x"))
        #expect(!PrometheusExposition.isMetricName(""))
        #expect(!PrometheusExposition.isMetricName("a-b"))
        #expect(PrometheusExposition.isLabelName("database"))
        #expect(!PrometheusExposition.isLabelName("a:b"))
        #expect(!PrometheusExposition.isLabelName("__name__"))
        #expect(!PrometheusExposition.isLabelName("é"))
    }

    @Test(
        "promtool check metrics accepts the exposition without a lint complaint",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: promtool),
            "promtool is not installed (Debian package prometheus)"))
    func promtoolAccepts() throws {
        let exposition = Self.sampleExposition()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.promtool)
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(exposition.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "promtool: \(report)\n\(exposition)")
        #expect(report.isEmpty, "promtool: \(report)")
    }
}
