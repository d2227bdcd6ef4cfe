import Foundation
import Testing

/// The startup phase byte by byte: encryption requests, protocol versions and startup parameters,
/// answered the way PostgreSQL (or, where Sluice must differ, PgBouncer) answers them.
@Suite("Raw protocol: startup")
struct RawProtocolStartupTests {
    @Test("a client logs in with each auth_type", arguments: ["trust", "plain", "md5", "scram-sha-256"])
    func loginWithAuthType(authType: String) throws {
        try withRawSluice(authType: authType) { target in
            let client = try target.connect()
            #expect(client.backendKey != nil, "no BackendKeyData")
            #expect(client.parameters["server_version"] != nil, "no server_version: \(client.parameters)")
            #expect(client.parameters["client_encoding"] == "UTF8")
            #expect(try client.queryValue("SELECT current_user") == target.user)
        }
    }

    @Test("SSLRequest is answered 'N' and a plain startup on the same connection then works")
    func sslRequestDeclined() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.sslRequest() }
            #expect(try client.readByte() == UInt8(ascii: "N"))
            try target.login(client)
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("GSSENCRequest is answered 'N' and a plain startup on the same connection then works")
    func gssEncRequestDeclined() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.gssEncRequest() }
            #expect(try client.readByte() == UInt8(ascii: "N"))
            try target.login(client)
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("GSSENCRequest and then SSLRequest are both declined and the startup then works")
    func gssThenSSLDeclined() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.gssEncRequest() }
            #expect(try client.readByte() == UInt8(ascii: "N"))
            try client.send { $0.sslRequest() }
            #expect(try client.readByte() == UInt8(ascii: "N"))
            try target.login(client)
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("bytes sent behind an SSLRequest in the same write are refused with 08P01")
    func dataBehindSSLRequest() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send {
                $0.sslRequest()
                $0.startup([("user", target.user), ("database", target.database)])
            }
            // PostgreSQL first answers the SSLRequest with 'N', then notices the extra bytes; a
            // pooler that checks before answering is just as safe.
            if try client.peekByte() == UInt8(ascii: "N") {
                _ = try client.readByte()
            }
            let replies = try client.waitForClose()
            #expect(replies.first?.sqlState == "08P01", "got \(replies)")
            #expect(!replies.contains { $0.authenticationCode != nil }, "Sluice went on with the login: \(replies)")
            try target.expectServing()
        }
    }

    @Test(
        "a 3.x startup is negotiated to 3.0 or 3.2 and then logs in",
        arguments: [(minor: 1, negotiated: 0), (minor: 3, negotiated: 2), (minor: 99, negotiated: 2)])
    func newerMinorVersionNegotiated(version: (minor: Int, negotiated: Int)) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send {
                $0.startup(
                    [("user", target.user), ("database", target.database)], major: 3, minor: UInt16(version.minor))
            }
            let first = try client.read()
            let negotiated = try #require(first.negotiatedProtocol, "expected NegotiateProtocolVersion, got \(first)")
            // The field is the newest version the server supports for the major asked for; PostgreSQL 15 sends
            // 0x00030000. The minor part is the low 16 bits.
            #expect(negotiated.newestMinor & 0xffff == Int32(version.negotiated))
            #expect(negotiated.unrecognized.isEmpty)
            try client.authenticate(user: target.user, password: target.password)
            #expect(client.backendKey?.secretKey.count == (version.negotiated == 2 ? 32 : 4))
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test(
        "protocol 3.2 is spoken as asked: no negotiation, a 32-byte cancel key that cancels, its first 4 bytes do not")
    func protocol32() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send { $0.startup([("user", target.user), ("database", target.database)], major: 3, minor: 2) }
            try client.authenticate(user: target.user, password: target.password)
            let key = try #require(client.backendKey)
            #expect(key.secretKey.count == 32)
            // The short key alone is not enough.
            try client.send { $0.query("SELECT pg_sleep(1.5)") }
            sleep(for: .milliseconds(300))
            let shortCanceller = try RawClient(port: target.port)
            try shortCanceller.send {
                $0.cancelRequest(processID: key.processID, secretKey: Array(key.secretKey.prefix(4)))
            }
            var replies = try client.readUntilReadyForQuery(timeout: .seconds(10))
            #expect(!replies.contains { $0.isError }, "a 4-byte key cancelled a 3.2 client's query: \(replies)")
            try client.send { $0.query("SELECT pg_sleep(5)") }
            sleep(for: .milliseconds(300))
            let canceller = try RawClient(port: target.port)
            try canceller.send { $0.cancelRequest(processID: key.processID, secretKey: key.secretKey) }
            replies = try client.readUntilReadyForQuery(timeout: .seconds(10))
            #expect(replies.first { $0.isError }?.sqlState == "57014", "\(replies)")
        }
    }

    @Test("a protocol option (_pq_.*) is reported back as unrecognized and the login goes on", arguments: [0, 2])
    func protocolOptionNegotiated(minor: Int) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send {
                $0.startup(
                    [("user", target.user), ("database", target.database), ("_pq_.sluice_test", "on")],
                    major: 3, minor: UInt16(minor))
            }
            let first = try client.read()
            let negotiated = try #require(first.negotiatedProtocol, "expected NegotiateProtocolVersion, got \(first)")
            #expect(negotiated.newestMinor & 0xffff == Int32(minor))
            #expect(negotiated.unrecognized == ["_pq_.sluice_test"])
            try client.authenticate(user: target.user, password: target.password)
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("a startup with protocol 2.0 or 4.0 is refused with 0A000, as PostgreSQL does", arguments: [(2, 0), (4, 0)])
    func unsupportedMajorVersionRefused(version: (major: Int, minor: Int)) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send {
                $0.startup(
                    [("user", target.user), ("database", target.database)],
                    major: UInt16(version.major), minor: UInt16(version.minor))
            }
            let replies = try client.waitForClose()
            // PostgreSQL answers "unsupported frontend protocol" with 0A000; PgBouncer says 08P01. Drivers treat
            // both as fatal, and Sluice follows the server.
            #expect(replies.count == 1 && replies[0].sqlState == "0A000", "got \(replies)")
            try target.expectServing()
        }
    }

    @Test("an unknown startup parameter fails the client with 42704 naming it, never silently dropped")
    func unknownStartupParameterFails() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            // PostgreSQL refuses this login at once (FATAL 42704). Sluice learns it when it first applies the
            // setting on a server, and must then say so rather than run the client without it.
            var replies: [BackendMessage] = []
            do {
                try target.login(client, parameters: [("sluice_foo", "bar")])
                try client.send { $0.query("SELECT 1") }
                replies = try client.waitForClose(timeout: .seconds(5))
            } catch {
                guard let refusal = client.lastLoginError else { throw error }
                replies = [refusal]
            }
            let failure = try #require(replies.first { $0.isError }, "got \(replies)")
            #expect(failure.sqlState == "42704", "got \(failure)")
            #expect(failure.errorMessage?.contains("sluice_foo") == true, "message does not name it: \(failure)")
            #expect(!replies.contains { $0.dataRowColumns != nil }, "the query ran without the setting: \(replies)")
            try target.expectServing()
        }
    }

    @Test("a startup parameter listed in ignore_startup_parameters is accepted")
    func ignoredStartupParameterAccepted() throws {
        try withRawSluice(settings: ["ignore_startup_parameters": "sluice_foo, extra_float_digits"]) { target in
            let client = try RawClient(port: target.port)
            try target.login(client, parameters: [("sluice_foo", "bar"), ("extra_float_digits", "3")])
            #expect(try client.queryValue("SELECT 1") == "1")
        }
    }

    @Test("tracked startup parameters reach the server", arguments: [("application_name", "raw_protocol_test")])
    func trackedStartupParameterApplied(parameter: (name: String, value: String)) throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try target.login(client, parameters: [(parameter.name, parameter.value)])
            #expect(try client.queryValue("SHOW \(parameter.name)") == parameter.value)
        }
    }

    @Test("a query pipelined behind the startup packet is answered after the login")
    func queryPipelinedBehindStartup() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            try client.send {
                $0.startup([("user", target.user), ("database", target.database)])
                $0.query("SELECT 'pipelined'")
            }
            try client.authenticate(user: target.user, password: target.password)
            let replies = try client.expect(types: "TDCZ")
            #expect(replies[1].dataRowColumns == ["pipelined"])
        }
    }

    @Test("an SSLRequest and a startup packet dribbled one byte per write still log in")
    func startupDribbled() throws {
        try withRawSluice { target in
            let client = try RawClient(port: target.port)
            var batch = FrontendBatch()
            batch.sslRequest()
            batch.startup([("user", target.user), ("database", target.database), ("application_name", "dribbled")])
            for (index, byte) in batch.bytes.enumerated() {
                try client.sendRaw([byte])
                sleep(for: .milliseconds(1))
                if index == 7 {
                    #expect(try client.readByte() == UInt8(ascii: "N"))
                }
            }
            try client.authenticate(user: target.user, password: target.password)
            #expect(try client.queryValue("SHOW application_name") == "dribbled")
        }
    }

    @Test("every client gets its own BackendKeyData")
    func distinctCancelKeys() throws {
        try withRawSluice(poolSize: 1) { target in
            let clients = try (0..<5).map { _ in try target.connect() }
            let keys = clients.compactMap { $0.backendKey.map { "\($0.processID)/\($0.secretKey)" } }
            #expect(keys.count == clients.count, "some clients got no BackendKeyData")
            #expect(Set(keys).count == keys.count, "clients share cancel keys: \(keys)")
        }
    }
}
