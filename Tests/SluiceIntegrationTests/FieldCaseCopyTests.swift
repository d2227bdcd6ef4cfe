import Foundation
import Testing

/// COPY that fails while the client is still sending must leave the server clean and in the pool.
@Suite("Field case F7: COPY")
struct FieldCaseCopyTests {
    /// `count` rows of `id` values for COPY text format, in CopyData messages of 1,000 rows, with the
    /// value at `duplicateAt` repeated from the first row.
    static func rows(count: Int, duplicateAt: Int) -> [[UInt8]] {
        stride(from: 0, to: count, by: 1000).map { start in
            var chunk = ""
            for i in start..<min(start + 1000, count) { chunk += "\(i == duplicateAt ? 0 : i)\n" }
            return Array(chunk.utf8)
        }
    }

    @Test(
        "F7: a COPY FROM STDIN that fails at row 5 of 200,000 inside a transaction leaves the server clean",
        arguments: ["simple", "extended"])
    func failedCopyLeavesServerClean(protocolMode: String) throws {
        try withRawSluice(poolSize: 1) { target in
            let a = try target.connect()
            let b = try target.connect()
            _ = try a.simpleQuery("CREATE TABLE f7_copy (id int PRIMARY KEY)")
            _ = try a.simpleQuery("BEGIN")
            try a.send {
                if protocolMode == "simple" {
                    $0.query("COPY f7_copy FROM STDIN")
                } else {
                    $0.extendedQuery("COPY f7_copy FROM STDIN")
                }
            }
            _ = try a.expect(types: protocolMode == "simple" ? "G" : "12G")
            // Everything in one go, without reading: the server fails at the fifth row and must drop the rest.
            try a.send {
                for chunk in Self.rows(count: 200_000, duplicateAt: 4) { $0.copyData(chunk) }
                $0.copyDone()
                if protocolMode == "extended" { $0.sync() }
            }
            let replies = try a.readUntilReadyForQuery(timeout: .seconds(30))
            let error = replies.first { $0.isError }
            #expect(error?.sqlState == "23505", "\(replies)")
            #expect(replies.last?.readyStatus == "E", "\(replies)")
            #expect(try a.simpleQuery("ROLLBACK").last?.readyStatus == "I")
            // The one server is back in the pool, clean: another client is served at once.
            let started = Date()
            let answer = try b.simpleQuery("SELECT count(*) FROM f7_copy").compactMap(\.dataRowColumns).first
            #expect(answer == ["0"])
            #expect(Date().timeIntervalSince(started) < 2)
            try expectNothingMore(from: a)
        }
    }
}
