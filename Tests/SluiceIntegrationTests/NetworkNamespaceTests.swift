import Foundation
import Glibc
import Testing

/// Failures only a real network shows: a link that goes silent, a DNS server that never answers, a
/// name whose address changes.
///
/// Each test builds its own pair of network namespaces joined by a veth link (addresses exist only
/// inside them). Sluice runs in namespace A and takes clients on a Unix socket, which crosses
/// namespaces; its server is a second Sluice in namespace B that relays to the test cluster's Unix
/// socket. Cutting the veth link leaves Sluice with a half-open server connection.
@Suite("Network: cut links and silent DNS", .serialized)
struct NetworkNamespaceTests {
    @Test(
        "tcp_keepidle/tcp_keepintvl/tcp_keepcnt: a server behind a cut link is dropped, the client told, the pool heals"
    )
    func keepaliveDetectsCutLink() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sluice = try lab.startSluice(settings: [
            "tcp_keepidle": "1", "tcp_keepintvl": "1", "tcp_keepcnt": "2", "pool_mode": "session",
        ])
        // Probes start after 1 s of silence, one a second, and two unanswered ones drop the connection:
        // about 3 s. Without the settings, Linux waits two hours before the first probe.
        let cut = try lab.psql(
            sluice,
            [
                "SELECT 'before';", "\\! \(lab.ip) -n \(lab.namespaceB) link set \(lab.linkB) down", "\\! sleep 7",
                "SELECT 'after';",
            ], timeout: .seconds(40))
        #expect(!cut.timedOut, "the dead server was not noticed: \(cut)\n\(lab.log(sluice))")
        #expect(cut.stdout.hasPrefix("before\n"), "\(cut)")
        #expect(cut.stderr.contains("server connection closed unexpectedly"), "\(cut)\n\(lab.log(sluice))")
        try lab.ipCommand(["-n", lab.namespaceB, "link", "set", lab.linkB, "up"])
        let healed = try lab.psql(sluice, ["SELECT 'healed';"], timeout: .seconds(40))
        #expect(healed.succeeded && healed.stdout == "healed\n", "\(healed)\n\(lab.log(sluice))")
    }

    @Test("tcp_user_timeout: a request sent into a cut link fails within the timeout instead of hanging")
    func userTimeoutBoundsUnacknowledgedData() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let sluice = try lab.startSluice(settings: [
            "tcp_keepalive": "0", "tcp_user_timeout": "1500", "pool_mode": "session",
        ])
        let clock = ContinuousClock()
        var sent = clock.now
        let cut = try lab.psql(
            sluice,
            ["SELECT 'before';", "\\! \(lab.ip) -n \(lab.namespaceB) link set \(lab.linkB) down", "SELECT 'after';"],
            timeout: .seconds(40))
        let elapsed = clock.now - sent
        #expect(!cut.timedOut, "unacknowledged data did not time out: \(cut)\n\(lab.log(sluice))")
        #expect(elapsed < .seconds(20), "took \(elapsed)")
        #expect(cut.stderr.contains("server connection closed unexpectedly"), "\(cut)\n\(lab.log(sluice))")
        try lab.ipCommand(["-n", lab.namespaceB, "link", "set", lab.linkB, "up"])
        sent = clock.now
        let healed = try lab.psql(sluice, ["SELECT 'healed';"], timeout: .seconds(40))
        #expect(healed.succeeded && healed.stdout == "healed\n", "\(healed)\n\(lab.log(sluice))")
    }

    @Test("a host name whose DNS server never answers does not hold up other clients, and fails in time")
    func slowDNSDoesNotBlockTheLoop() throws {
        let lab = try NetworkLab(silentNameserver: true)
        defer { lab.tearDown() }
        let slowName = "\(uniqueName("slow")).example.com"
        let sluice = try lab.startSluice(
            settings: ["server_connect_timeout": "8"], extraDatabases: ["slowdb": "host=\(slowName) dbname=postgres"])
        let slow = try lab.psqlInBackground(sluice, database: "slowdb", "SELECT 'never';")
        defer { slow.child.signal(SIGKILL) }
        sleep(for: .milliseconds(500))
        let clock = ContinuousClock()
        let started = clock.now
        let fast = try lab.psql(sluice, ["SELECT 'not blocked';"], timeout: .seconds(20))
        #expect(fast.succeeded && fast.stdout == "not blocked\n", "\(fast)\n\(lab.log(sluice))")
        #expect(clock.now - started < .seconds(4))
        #expect(slow.child.isRunning, "the slow lookup should still be pending")
        let ended = slow.child.wait(timeout: .seconds(30))
        let stderr = (try? String(contentsOfFile: slow.stderrPath, encoding: .utf8)) ?? ""
        #expect(ended != nil && ended != .exited(0), "\(stderr)")
        #expect(stderr.contains("server_connect_timeout") || stderr.contains("could not resolve"), "\(stderr)")
    }

    @Test("dns_max_ttl: a server host name is looked up again once its answer is dns_max_ttl old")
    func dnsMaxTTLBoundsHowLongAnAnswerIsUsed() throws {
        let ttl = 3.0
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        // A second address on B's side where nothing listens: connecting there is refused at once.
        try lab.ipCommand(["-n", lab.namespaceB, "addr", "add", "\(lab.subnet).3/24", "dev", lab.linkB])
        let name = "db.sluice-test"
        // Only namespace A sees this hosts file. Both answers have the same length, so switching rewrites
        // one byte in place and no lookup can see an empty or half-written file (and remember a failure).
        let hosts = { (host: Int) in "127.0.0.1 localhost\n\(lab.subnet).\(host) \(name)\n" }
        try lab.writeHosts(hosts(3))
        // server_login_retry is short so that clients after a refused connect try again instead of being
        // failed fast for the default 15 s.
        let sluice = try lab.startSluice(
            settings: ["dns_max_ttl": "\(ttl)", "server_login_retry": "0.5"],
            extraDatabases: ["byname": "host=\(name) port=5432 dbname=\(lab.database)"])
        let clock = ContinuousClock()
        let firstStarted = clock.now
        let first = try lab.psql(sluice, database: "byname", ["SELECT 'first';"], timeout: .seconds(20))
        #expect(!first.succeeded && first.stderr.contains("refused"), "\(first)\n\(lab.log(sluice))")

        let rewritten = clock.now
        try lab.writeHosts(hosts(2))
        var attempts: [(started: ContinuousClock.Instant, ended: ContinuousClock.Instant, result: RunResult)] = []
        // Past the 15 s default, so an ignored setting shows as a late success rather than none.
        while clock.now - rewritten < .seconds(25) {
            let started = clock.now
            let result = try lab.psql(sluice, database: "byname", ["SELECT 'served';"], timeout: .seconds(20))
            attempts.append((started, clock.now, result))
            if result.succeeded { break }
            sleep(for: .milliseconds(200))
        }
        let served = try #require(attempts.last)
        #expect(served.result.succeeded && served.result.stdout == "served\n", "\(served.result)\n\(lab.log(sluice))")
        // The first client's login looked the name up, no earlier than `firstStarted`, and the answer
        // (.3) is used for dns_max_ttl: every attempt that ended before then must still have been refused.
        for attempt in attempts where attempt.ended < firstStarted + .seconds(ttl) {
            #expect(!attempt.result.succeeded, "served \(attempt.ended - firstStarted) after the first lookup")
        }
        // That answer was at most `ttl` old when the hosts file changed, so a fresh lookup comes soon after.
        let wait = served.ended - rewritten
        #expect(wait < .seconds(ttl + 4), "served \(wait) after the rewrite, dns_max_ttl = \(ttl)\n\(lab.log(sluice))")
    }
}

/// Two network namespaces and a veth link, a relaying Sluice in B, and helpers to run things in A.
private final class NetworkLab {
    let ip: String
    let namespaceA = "sluA" + NetworkLab.suffix()
    let namespaceB = "sluB" + NetworkLab.suffix()
    let linkA = "sva" + NetworkLab.suffix()
    let linkB = "svb" + NetworkLab.suffix()
    /// A private /24 that exists only inside the two namespaces.
    let subnet = "10.213.\(Int.random(in: 1...250))"
    let cluster: TestCluster
    let role: (name: String, password: String)
    let database: String
    let directory: URL
    private var children: [ChildProcess] = []
    /// `/etc/netns/<namespace A>`, once a test has put files there for `ip netns exec` to mount.
    private var etcDirectory: String?

    fileprivate static func suffix() -> String {
        String((0..<8).map { _ in Array("abcdefghijklmnopqrstuvwxyz0123456789").randomElement()! })
    }

    init(silentNameserver: Bool = false) throws {
        ip = try resolveExecutable("ip")
        cluster = try TestCluster.current()
        role = try cluster.makeRole(prefix: "netns")
        database = try cluster.makeDatabase(owner: role.name)
        directory = try makeTemporaryDirectory("sluice-netns")
        do {
            try ipCommand(["netns", "add", namespaceA])
            try ipCommand(["netns", "add", namespaceB])
            try ipCommand(["link", "add", linkA, "type", "veth", "peer", "name", linkB])
            try ipCommand(["link", "set", linkA, "netns", namespaceA])
            try ipCommand(["link", "set", linkB, "netns", namespaceB])
            for (namespace, link, host) in [(namespaceA, linkA, 1), (namespaceB, linkB, 2)] {
                try ipCommand(["-n", namespace, "addr", "add", "\(subnet).\(host)/24", "dev", link])
                try ipCommand(["-n", namespace, "link", "set", link, "up"])
                try ipCommand(["-n", namespace, "link", "set", "lo", "up"])
            }
            if silentNameserver {
                // `ip netns exec` mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf. The
                // nameserver's MAC address is pinned to one nobody has, so queries vanish silently.
                let etc = try namespaceAEtc()
                try "nameserver \(subnet).9\noptions timeout:20 attempts:1\n".write(
                    toFile: etc + "/resolv.conf", atomically: true, encoding: .utf8)
                try ipCommand([
                    "-n", namespaceA, "neigh", "add", "\(subnet).9", "lladdr", "02:00:00:00:00:09", "dev", linkA,
                    "nud", "permanent",
                ])
            }
            try startRelay()
        } catch {
            tearDown()
            throw error
        }
    }

    /// The directory whose files `ip netns exec` mounts over namespace A's `/etc`; made on first use.
    private func namespaceAEtc() throws -> String {
        let etc = "/etc/netns/\(namespaceA)"
        if etcDirectory == nil {
            try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
            etcDirectory = etc
        }
        return etc
    }

    /// Sets the hosts file processes in namespace A see (as /etc/hosts) from their next start on. A file
    /// already there is overwritten in place: running processes see it through a bind mount of its inode,
    /// which a new file would not replace.
    func writeHosts(_ text: String) throws {
        let path = try namespaceAEtc() + "/hosts"
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError("cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        // Written over the old text before truncating, so a reader never finds the file empty.
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, ftruncate(fd, off_t(bytes.count)) == 0 else {
            throw HarnessError("cannot write \(path): errno \(errno)")
        }
    }

    func ipCommand(_ arguments: [String]) throws {
        let result = try run(ip, arguments, timeout: .seconds(20))
        guard result.succeeded else { throw HarnessError("ip failed: \(result)") }
    }

    /// The relay: Sluice in B on `subnet.2:5432`, logging in to the test cluster over its Unix socket.
    private func startRelay() throws {
        let socketDirectory = try NetworkServerTests.socketDirectory(cluster)
        let relay = try launch(
            name: "relay", namespace: namespaceB,
            settings: [
                "listen_addr": "\(subnet).2", "listen_port": "5432", "unix_socket_dir": "", "pool_mode": "session",
                "default_pool_size": "20",
            ],
            databases: [database: "host=\(socketDirectory) port=\(cluster.port) dbname=\(database)"])
        let ready = waitUntil(timeout: .seconds(10)) { logText("relay").contains("listening") || !relay.isRunning }
        guard ready, relay.isRunning else { throw HarnessError("the relay did not start:\n\(logText("relay"))") }
    }

    /// Starts the Sluice under test in A, reachable on a Unix socket in `directory`.
    func startSluice(settings: [String: String], extraDatabases: [String: String] = [:]) throws -> String {
        let name = "sluice"
        var databases = [database: "host=\(subnet).2 port=5432 dbname=\(database)"]
        databases.merge(extraDatabases) { _, new in new }
        let child = try launch(
            name: name, namespace: namespaceA,
            settings: settings.merging(
                ["listen_addr": "", "listen_port": "6432", "unix_socket_dir": directory.path]) { old, _ in old },
            databases: databases)
        let socket = directory.appendingPathComponent(".s.PGSQL.6432").path
        let ready = waitUntil(timeout: .seconds(10)) {
            FileManager.default.fileExists(atPath: socket) || !child.isRunning
        }
        guard ready, child.isRunning else { throw HarnessError("sluice did not start:\n\(logText(name))") }
        return name
    }

    private func launch(
        name: String, namespace: String, settings: [String: String], databases: [String: String]
    ) throws -> ChildProcess {
        let config = directory.appendingPathComponent("\(name).ini")
        var text = TestConfig.ini(port: 0, databases: databases, settings: settings)
        text = text.replacingOccurrences(
            of: "auth_file = userlist.txt", with: "auth_file = \(directory.path)/userlist.txt")
        try text.write(to: config, atomically: true, encoding: .utf8)
        try TestConfig.userlist([(role.name, role.password)]).write(
            to: directory.appendingPathComponent("userlist.txt"), atomically: true, encoding: .utf8)
        let child = try ChildProcess(
            executable: ip, arguments: ["netns", "exec", namespace, try SluiceProcess.binary(), config.path],
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
            stdout: .file(directory.appendingPathComponent("\(name).out").path),
            stderr: .file(directory.appendingPathComponent("\(name).log").path))
        children.append(child)
        return child
    }

    func logText(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    func log(_ name: String) -> String {
        "--- \(name) log ---\n" + logText(name).split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    private func psqlArguments(database: String) -> [String] {
        ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", directory.path, "-p", "6432", "-U", role.name, "-d", database]
    }

    /// Runs psql against the Sluice in A with `lines` on its standard input.
    func psql(_ sluice: String, database: String? = nil, _ lines: [String], timeout: Duration) throws -> RunResult {
        try run(
            "psql", psqlArguments(database: database ?? self.database), environment: ["PGPASSWORD": role.password],
            stdin: lines.joined(separator: "\n") + "\n", timeout: timeout)
    }

    func psqlInBackground(
        _ sluice: String, database: String, _ sql: String
    ) throws -> (child: ChildProcess, stderrPath: String) {
        let stderrPath = directory.appendingPathComponent(uniqueName("psql") + ".err").path
        let child = try ChildProcess(
            executable: try resolveExecutable("psql"), arguments: psqlArguments(database: database) + ["-c", sql],
            environment: childEnvironment(["PGPASSWORD": role.password, "PGCONNECT_TIMEOUT": "60"]),
            stderr: .file(stderrPath))
        return (child, stderrPath)
    }

    func tearDown() {
        for child in children where child.isRunning {
            child.signal(SIGKILL)
            _ = child.wait(timeout: .seconds(10))
        }
        children.removeAll()
        for namespace in [namespaceA, namespaceB] { _ = try? run(ip, ["netns", "del", namespace]) }
        if let etcDirectory { try? FileManager.default.removeItem(atPath: etcDirectory) }
        if ProcessInfo.processInfo.environment["SLUICE_TEST_KEEP_FILES"] == nil {
            try? FileManager.default.removeItem(at: directory)
        }
    }
}
