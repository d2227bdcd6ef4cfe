import Foundation
import Testing

/// Backends that stop, come back, get promoted and rebuilt, on a primary and standby of the test's own (the
/// shared test cluster's replica must stay a replica for the other tests).
@Suite("Read/write routing: replica outage, split brain, failover")
struct RoutingFailoverTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `scripts/pg-cluster` with these arguments; throws with its output when it fails.
    static func pgCluster(_ arguments: [String]) throws {
        let result = try run(
            "bash", [root.appendingPathComponent("scripts/pg-cluster").path] + arguments, timeout: .seconds(120))
        guard result.succeeded else {
            throw HarnessError("pg-cluster \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        }
    }

    @Test(
        "replica stopped and restarted, two primaries, primary lost and replica promoted, old primary rebuilt"
    )
    func outageAndFailover() throws {
        let directory = try makeTemporaryDirectory("sluice-failover")
        let (primaryPort, replicaPort) = (try LoopbackPort.free(), try LoopbackPort.free())
        try Self.pgCluster(["start", directory.path, String(primaryPort), String(replicaPort)])
        defer { _ = try? Self.pgCluster(["stop", directory.path]) }
        let password = randomPassword()
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(
                    port: port,
                    databases: [
                        "app": "host=127.0.0.1 port=\(primaryPort) dbname=postgres replicas=127.0.0.1:\(replicaPort)"
                    ],
                    settings: [
                        "routing_check_period": "0.2", "replica_ban_time": "1", "primary_wait_timeout": "1",
                        "server_login_retry": "0",
                    ])
            },
            userlist: TestConfig.userlist([("postgres", password)]))
        defer { sluice.stop() }
        let connect = { try PQConn.connect(port: sluice.port, user: "postgres", password: password, dbname: "app") }
        func readLandsOnStandby() throws -> Bool? {
            let reader = try connect()
            defer { reader.close() }
            return try reader.value("SELECT pg_is_in_recovery()").map { $0 == "t" }
        }
        #expect(try waitUntil(timeout: .seconds(20)) { try readLandsOnStandby() == true }, "reads reach the standby")
        let writer = try connect()
        try writer.exec("CREATE TABLE events (id serial, note text)")

        // The standby stops: reads go to the primary, without errors once Sluice has noticed.
        try Self.pgCluster(["server", directory.path, "replica", "stop"])
        #expect(
            waitUntil(timeout: .seconds(10)) { (try? readLandsOnStandby()) == false }, "reads moved to the primary")
        for _ in 0..<5 { #expect(try readLandsOnStandby() == false) }
        // It comes back: reads return once its ban is over.
        try Self.pgCluster(["server", directory.path, "replica", "start"])
        #expect(try waitUntil(timeout: .seconds(15)) { try readLandsOnStandby() == true }, "reads came back")

        // Promoted while the primary still runs: two primaries. Writes stop, with a clear error.
        try Self.pgCluster(["server", directory.path, "replica", "promote"])
        let refused = waitUntil(timeout: .seconds(10)) {
            do {
                try connect().exec("INSERT INTO events (note) VALUES ('split')")
                return false
            } catch let error as PQError {
                return error.description.contains("more than one backend claims to be the primary")
            } catch {
                return false
            }
        }
        #expect(refused, "writes refused while two backends claim to be the primary\n\(sluice.logTail())")
        #expect(sluice.stderrText.contains("more than one backend claims to be the primary"))

        // The old primary goes away: the promoted one takes the writes, and none fails with 25006.
        try Self.pgCluster(["server", directory.path, "primary", "stop"])
        let writesResumed = waitUntil(timeout: .seconds(15)) {
            (try? connect().exec("INSERT INTO events (note) VALUES ('after failover')")) != nil
        }
        #expect(writesResumed, "writes follow the new primary\n\(sluice.logTail())")
        for index in 0..<20 {
            do {
                try connect().exec("INSERT INTO events (note) VALUES ('write \(index)')")
            } catch let error as PQError {
                Issue.record("write failed after the failover: \(error)")
            }
        }
        // The old primary comes back as a standby of the new one, and serves reads.
        try Self.pgCluster(["rebuild-standby", directory.path, "primary", String(replicaPort)])
        #expect(
            try waitUntil(timeout: .seconds(20)) { try readLandsOnStandby() == true }, "reads reach the rebuilt standby"
        )
        let reader = try connect()
        #expect(try reader.value("SELECT count(*) FROM events WHERE note LIKE 'write %'") == "20")
        #expect(sluice.stderrText.contains("backend changed role"))
    }
}
