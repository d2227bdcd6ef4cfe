import Testing

@testable import SluiceCore

@Suite("auth_file parsing")
struct UserListTests {
    @Test("fields are quoted, doubled quotes are literal and extra fields are ignored")
    func quoting() throws {
        let list = try UserList.parse(
            """
            "alice" "pa""ss" "ignored" more
            "bo""b"   "x"
            "carol"\t"with space"
            """, file: "users.txt")
        #expect(list["alice"] == .plain("pa\"ss"))
        #expect(list["bo\"b"] == .plain("x"))
        #expect(list["carol"] == .plain("with space"))
    }

    @Test("comments, blank lines and CRLF are skipped")
    func comments() throws {
        let list = try UserList.parse("; comment\r\n# comment\r\n\r\n   \r\n  \"a\" \"b\"\r\n", file: "users.txt")
        #expect(list.users == ["a": .plain("b")])
    }

    @Test("secrets are classified by shape")
    func kinds() throws {
        let verifier = SCRAMVerifier.make(password: "pencil", salt: RFC7677.salt, iterations: 4096)
        let list = try UserList.parse(
            """
            "plain" "hello"
            "hash" "md553f48b7c4b76a86ce72276c5755f217d"
            "scram" "\(verifier.render())"
            "empty" ""
            """, file: "users.txt")
        #expect(list["plain"] == .plain("hello"))
        #expect(list["hash"] == .md5("md553f48b7c4b76a86ce72276c5755f217d"))
        #expect(list["scram"] == .scram(verifier))
        #expect(list["empty"] == .plain(""))
    }

    @Test("a later line for the same user wins")
    func duplicates() throws {
        let list = try UserList.parse("\"a\" \"1\"\n\"a\" \"2\"\n", file: "users.txt")
        #expect(list["a"] == .plain("2"))
    }

    @Test("names are case-sensitive and may hold any character")
    func names() throws {
        let list = try UserList.parse("\"Alice\" \"1\"\n\"alice\" \"2\"\n\"ünï côdé\" \"3\"\n", file: "users.txt")
        #expect(list.users.count == 3)
        #expect(list["ünï côdé"] == .plain("3"))
    }

    @Test(
        "broken lines are errors naming file and line",
        arguments: [
            ("alice \"x\"", "expected a double-quoted user name"),
            ("\"alice \"x\"", "expected a double-quoted secret"),
            ("\"alice", "no closing double quote"),
            ("\"alice\"", "expected a double-quoted secret"),
            ("\"alice\" x", "expected a double-quoted secret"),
            ("\"alice\" \"x", "has no closing double quote"),
            ("\"\" \"x\"", "empty user name"),
            ("\"alice\" \"SCRAM-SHA-256$4096:broken\"", "not a valid"),
        ])
    func errors(line: String, fragment: String) {
        let error = configError { _ = try UserList.parse("\"ok\" \"ok\"\n\n\(line)\n", file: "/etc/users.txt") }
        #expect(error?.file == "/etc/users.txt")
        #expect(error?.line == 3)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("errors and descriptions do not reveal secrets")
    func noLeaks() throws {
        let error = configError { _ = try UserList.parse("\"alice\" \"hunter2", file: "u") }
        #expect(error?.description.contains("hunter2") == false)
        let list = try UserList.parse("\"alice\" \"hunter2\"", file: "u")
        #expect(!"\(list)".contains("hunter2"))
    }
}
