import Foundation
import Testing

/// Client authentication against the userlist, with each kind of stored secret.
@Suite("Client authentication")
struct AuthTests {
    /// How the userlist stores the role's password.
    enum Secret: String, Sendable {
        /// The password itself.
        case plain
        /// `md5` + md5(password + user), as PgBouncer's userlist allows.
        case md5
        /// The role's SCRAM secret copied from `pg_authid`: Sluice must log in to the server with
        /// the keys the client's proof reveals, since it never learns the password.
        case scram
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var authType: String
        var secret: Secret
        var testDescription: String { "auth_type=\(authType), \(secret.rawValue) secret" }
    }

    static let cases = [
        Case(authType: "md5", secret: .plain),
        Case(authType: "md5", secret: .md5),
        // PgBouncer answers with SCRAM when auth_type is md5 and the userlist holds a SCRAM secret.
        Case(authType: "md5", secret: .scram),
        Case(authType: "scram-sha-256", secret: .plain),
        Case(authType: "scram-sha-256", secret: .scram),
    ]

    @Test("the right password logs in and the wrong one gets 28P01", arguments: cases)
    func passwordCheck(_ authCase: Case) throws {
        let cluster = try TestCluster.current()
        let role = try cluster.makeRole(prefix: "auth")
        let database = try cluster.makeDatabase(owner: role.name)
        let secret: String
        var serverLogin: [String: String] = [:]
        switch authCase.secret {
        case .plain:
            secret = role.password
        case .md5:
            secret = try cluster.md5Secret(user: role.name, password: role.password)
            // An MD5 hash cannot answer the server's SCRAM challenge: give Sluice the password for that.
            serverLogin = ["user": role.name, "password": role.password]
        case .scram:
            secret = try cluster.scramSecret(of: role.name)
            #expect(secret.hasPrefix("SCRAM-SHA-256$"))
        }
        let entry = TestConfig.database(cluster, dbname: database, extra: serverLogin)
        let sluice = try SluiceProcess(
            config: { port in
                TestConfig.ini(port: port, databases: [database: entry], settings: ["auth_type": authCase.authType])
            },
            userlist: TestConfig.userlist([(role.name, secret)]))
        defer { sluice.stop() }

        do {
            let connection = try PQConn.connect(
                port: sluice.port, user: role.name, password: role.password, dbname: database)
            #expect(try connection.value("SELECT current_user") == role.name)
        } catch {
            Issue.record("login with the right password failed: \(error)\n--- sluice log ---\n\(sluice.logTail())")
        }

        let wrong = #expect(throws: PQError.self) {
            try PQConn.connect(port: sluice.port, user: role.name, password: "not-the-password", dbname: database)
        }
        #expect(wrong?.sqlState == "28P01", "\(String(describing: wrong))")
        #expect(wrong?.message.contains(role.password) == false, "an error must not echo the password")
    }

    @Test("a user missing from the userlist is refused like a wrong password (28000 or 28P01)")
    func unknownUser() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) {
            try PQConn.connect(
                port: proxied.sluice.port, user: uniqueName("nobody"), password: "whatever", dbname: proxied.database)
        }
        #expect(["28000", "28P01"].contains(error?.sqlState ?? "none"), "\(String(describing: error))")
    }

    @Test("a client that sends no password when one is required is refused")
    func missingPassword() throws {
        let proxied = try ProxiedDatabase()
        defer { proxied.stop() }
        let error = #expect(throws: PQError.self) {
            try PQConn.connect(port: proxied.sluice.port, user: proxied.role.name, dbname: proxied.database)
        }
        #expect(error?.duringConnect == true)
        // The proxy must survive the aborted handshake.
        let connection = try proxied.connect()
        #expect(try connection.value("SELECT 1") == "1")
    }
}
