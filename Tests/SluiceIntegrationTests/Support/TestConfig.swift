/// Builders for the files Sluice reads, so tests state only what they care about.
enum TestConfig {
    /// A config file in PgBouncer's ini dialect listening on 127.0.0.1:`port`.
    ///
    /// `databases` maps a client-visible name to its connection string; `settings` adds or replaces
    /// keys of the `[sluice]` section (defaults: SCRAM client auth from `userlist.txt`,
    /// transaction pooling, pool size 5, no stats port, no health checks).
    /// A settings value that removes the key from the file, defaults included.
    static let omitted = "@OMIT@"

    static func ini(port: Int, databases: [String: String], settings: [String: String] = [:]) -> String {
        var main: [String: String] = [
            "listen_addr": "127.0.0.1",
            "listen_port": String(port),
            "auth_type": "scram-sha-256",
            "auth_file": "userlist.txt",
            "pool_mode": "transaction",
            "default_pool_size": "5",
            // Off unless a test is about them: the stats port's fixed default port would clash between tests
            // run side by side, and a health check's own connection would show up in tests counting backends.
            "stats_listen_port": "0",
            "health_check_period": "0",
        ]
        main.merge(settings) { _, new in new }
        // A test that needs a key absent, as in a file that never mentions it, says so.
        main = main.filter { $0.value != omitted }
        var lines = ["[databases]"]
        lines += databases.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
        lines += ["", "[sluice]"]
        lines += main.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A `[databases]` connection string to the test cluster's primary.
    static func database(
        _ cluster: TestCluster, dbname: String, extra: [String: String] = [:]
    ) -> String {
        var parts = ["host=\(cluster.host)", "port=\(cluster.port)", "dbname=\(dbname)"]
        parts += extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return parts.joined(separator: " ")
    }

    /// A userlist in PgBouncer's format: `"user" "secret"` a line, quotes doubled inside.
    static func userlist(_ entries: [(user: String, secret: String)]) -> String {
        let quote = { (text: String) in "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return entries.map { "\(quote($0.user)) \(quote($0.secret))" }.joined(separator: "\n") + "\n"
    }
}
