import Foundation
import Testing

/// Malformed or hostile input before login. Each test ends by checking that Sluice still accepts
/// and serves a well-behaved client.
@Suite("Bad input: before login")
struct BadInputStartupTests {
    @Test("an HTTP request instead of a startup packet is refused without harm")
    func httpRequestLine() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.sendRaw(Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
            let replies = try client.waitForClose(timeout: .seconds(5))
            for reply in replies {
                #expect(reply.isError && reply.sqlState == "08P01", "unexpected reply to garbage: \(reply)")
            }
            try target.expectServing()
        }
    }

    @Test("random bytes instead of a startup packet are refused without harm")
    func randomBytes() throws {
        try withRawSluice { target in
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<10 {
                let client = try RawClient(port: target.port)
                let garbage = (0..<Int.random(in: 1...64, using: &rng)).map { _ in
                    UInt8.random(in: 0...255, using: &rng)
                }
                try client.sendRaw(garbage)
                // The first four bytes may read as a plausible length, and then Sluice rightly waits
                // for the rest until client_login_timeout; closing our end must be harmless too.
                sleep(for: .milliseconds(50))
                client.close()
            }
            try target.expectServing()
        }
    }

    @Test("a startup packet shorter than 8 bytes is refused with 08P01", arguments: [0, 4, 7])
    func startupTooShort(length: Int32) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            var bytes: [UInt8] = []
            bytes.appendInt32(length)
            bytes.appendInt32(196_608)
            try client.sendRaw(bytes)
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(replies.count == 1 && replies[0].sqlState == "08P01", "got \(replies)")
            try target.expectServing()
        }
    }

    @Test("a startup packet longer than 10000 bytes is refused with 08P01", arguments: [10_001, 1_000_000, Int32.max])
    func startupTooLong(length: Int32) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            var bytes: [UInt8] = []
            bytes.appendInt32(length)
            bytes.appendInt32(196_608)
            try client.sendRaw(bytes)
            // Sluice must decide from the length word alone, without waiting for the body.
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(replies.count == 1 && replies[0].sqlState == "08P01", "got \(replies)")
            try target.expectServing()
        }
    }

    @Test("a startup packet whose parameters are not NUL-terminated is refused with 08P01")
    func startupUnterminatedParameters() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            var body: [UInt8] = []
            body.appendInt32(196_608)
            body.append(contentsOf: Array("user".utf8) + [0] + Array(target.user.utf8))
            var bytes: [UInt8] = []
            bytes.appendInt32(Int32(body.count + 4))
            bytes.append(contentsOf: body)
            try client.sendRaw(bytes)
            let replies = try client.waitForClose(timeout: .seconds(5))
            #expect(replies.count == 1 && replies[0].sqlState == "08P01", "got \(replies)")
            try target.expectServing()
        }
    }

    @Test("a startup without a user is refused with 08P01")
    func startupWithoutUser() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.startup([("database", target.database)]) }
            let replies = try client.waitForClose(timeout: .seconds(5))
            let failure = try #require(replies.first { $0.isError }, "got \(replies)")
            #expect(failure.sqlState == "08P01" || failure.sqlState == "28000", "got \(failure)")
            try target.expectServing()
        }
    }

    @Test(
        "an invalid value for a tracked startup parameter ends in 22023, never in a silent close",
        arguments: [("client_encoding", "bogus"), ("DateStyle", "nonsense"), ("TimeZone", "Mars/Olympus")]
    )
    func invalidStartupParameterValue(parameter: (name: String, value: String)) throws {
        try withRawSluice(poolSize: 1) { target in
            let client = try RawClient(port: target.port)
            // PostgreSQL refuses the login itself (FATAL 22023). A pooler that learns about the bad
            // value only when it first applies it on a server may fail later, but must say why.
            var replies: [BackendMessage] = []
            do {
                try target.login(client, parameters: [(parameter.name, parameter.value)])
                try client.send { $0.query("SELECT 1") }
                replies = try client.waitForClose(timeout: .seconds(5))
            } catch {
                guard let refusal = client.lastLoginError else { throw error }
                replies = [refusal]
            }
            let failure = try #require(replies.first { $0.isError }, "no ErrorResponse, got \(replies)")
            #expect(failure.sqlState == "22023", "got \(failure)")
            try target.expectServing()
        }
    }

    @Test("an unknown database is refused with 3D000")
    func unknownDatabase() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.startup([("user", target.user), ("database", "no_such_db_\(getpid())")]) }
            let replies = try client.waitForClose(timeout: .seconds(10))
            let failure = try #require(replies.first { $0.isError }, "got \(replies)")
            #expect(failure.sqlState == "3D000", "got \(failure)")
            #expect(!replies.contains { $0.readyStatus != nil }, "login went through: \(replies)")
            try target.expectServing()
        }
    }

    @Test("a wrong password is refused with 28P01")
    func wrongPassword() throws {
        try withRawSluice(authType: "md5") { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.startup([("user", target.user), ("database", target.database)]) }
            let challenge = try client.read()
            #expect(challenge.authenticationCode == 5, "expected an md5 challenge, got \(challenge)")
            let wrong = "md5" + String(repeating: "0", count: 32)
            try client.send { $0.password(wrong) }
            let replies = try client.waitForClose(timeout: .seconds(10))
            let failure = try #require(replies.first { $0.isError }, "got \(replies)")
            #expect(failure.sqlState == "28P01", "got \(failure)")
            #expect(failure.errorMessage?.contains(wrong) != true, "the error echoes the password: \(failure)")
            // The right password still works.
            let good = try target.connect()
            #expect(try good.queryValue("SELECT 1") == "1")
        }
    }

    @Test("a CancelRequest of the wrong length is dropped without harm", arguments: [12, 20])
    func malformedCancelRequest(length: Int32) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            var bytes: [UInt8] = []
            bytes.appendInt32(length)
            bytes.appendInt32(80_877_102)
            bytes.append(contentsOf: [UInt8](repeating: 7, count: Int(length) - 8))
            try client.sendRaw(bytes)
            _ = try client.waitForClose(timeout: .seconds(5))
            try target.expectServing()
        }
    }

    @Test("a client that connects and says nothing does not block others")
    func silentClient() throws {
        try withRawSluice { target in
            let silent = try RawClient(port: target.port)
            let halfHeader = try RawClient(port: target.port)
            try halfHeader.sendRaw([0, 0])
            try target.expectServing()
            silent.close()
            halfHeader.close()
        }
    }
}
