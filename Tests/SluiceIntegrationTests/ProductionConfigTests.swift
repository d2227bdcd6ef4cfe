import Foundation
import Testing

/// A pgbouncer.ini as a production deployment writes it, with every pooling, limit, timeout, startup
/// parameter and network key set: it loads unchanged and Sluice serves through it.
@Suite("A production pgbouncer.ini")
struct ProductionConfigTests {
    static func ini(port: Int, socketDir: String, cluster: TestCluster, database: String, user: String) -> String {
        """
        ;; written the way operators write them: comments, a [pgbouncer] section, every knob set
        [databases]
        app = host=\(cluster.host) port=\(cluster.port) dbname=\(database) pool_size=4 min_pool_size=1 \
        reserve_pool=1 max_db_connections=6 max_db_client_connections=100 server_lifetime=1800 \
        query_wait_timeout=20 client_encoding=UTF8 timezone=UTC application_name=prod_app
        app_ro = host=localhost,\(cluster.host) port=\(cluster.port) dbname=\(database) load_balance_hosts=disable \
        pool_mode=statement

        [users]
        \(user) = pool_mode=transaction max_user_connections=8 max_user_client_connections=100 query_timeout=30 \
        idle_transaction_timeout=60 transaction_timeout=120 client_idle_timeout=3600

        [pgbouncer]
        listen_addr = 127.0.0.1,::1
        listen_port = \(port)
        unix_socket_dir = \(socketDir)
        unix_socket_mode = 0770
        auth_type = scram-sha-256
        auth_file = userlist.txt
        pool_mode = transaction
        default_pool_size = 4
        min_pool_size = 0
        reserve_pool_size = 1
        reserve_pool_timeout = 2
        max_client_conn = 200
        max_db_connections = 10
        max_user_connections = 10
        server_round_robin = 1
        server_lifetime = 3600
        server_idle_timeout = 300
        server_connect_timeout = 5
        server_login_retry = 3
        server_check_delay = 10
        server_check_query = select 1
        server_fast_close = 1
        server_reset_query = DISCARD ALL
        query_timeout = 60
        query_wait_timeout = 30
        idle_transaction_timeout = 120
        transaction_timeout = 600
        client_idle_timeout = 0
        client_login_timeout = 30
        cancel_wait_timeout = 5
        ignore_startup_parameters = extra_float_digits
        track_extra_parameters = IntervalStyle
        tcp_keepalive = 1
        tcp_keepidle = 60
        tcp_keepintvl = 10
        tcp_keepcnt = 5
        tcp_user_timeout = 30000
        dns_max_ttl = 30
        dns_nxdomain_ttl = 10
        log_connections = 1
        log_disconnections = 1
        """
    }

    @Test("loads unchanged, refuses nothing, and carries traffic in each pool mode it declares")
    func productionFile() throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "prod")
        let database = try cluster.makeDatabase(owner: role.name)
        let socketDir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-prod-\(getpid())").path
        try FileManager.default.createDirectory(atPath: socketDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: socketDir) }
        let sluice = try SluiceProcess(
            config: { port in
                Self.ini(port: port, socketDir: socketDir, cluster: cluster, database: database, user: role.name)
            },
            userlist: TestConfig.userlist([(role.name, role.password)]))
        defer { sluice.stop() }
        #expect(!sluice.stderrText.contains("level=warning"), "\(sluice.logTail())")

        let app = try PQConn.connect(
            port: sluice.port, user: role.name, password: role.password, dbname: "app",
            extra: ["options": "-c search_path=public"])
        #expect(try app.value("SELECT current_setting('TimeZone')") == "UTC")
        _ = try app.exec("BEGIN")
        #expect(try app.value("SELECT 1") == "1")
        _ = try app.exec("COMMIT")

        let overSocket = try PQConn.connect(
            host: socketDir, port: sluice.port, user: role.name, password: role.password, dbname: "app")
        #expect(try overSocket.value("SELECT 2") == "2")

        let statementMode = try PQConn.connect(
            port: sluice.port, user: role.name, password: role.password, dbname: "app_ro")
        #expect(try statementMode.value("SELECT 3") == "3")
    }
}
