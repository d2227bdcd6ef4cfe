import Testing

@testable import SluiceCore

@Suite("Config file syntax")
struct ConfigIniTests {
    @Test("comments, blank lines and both section names are understood")
    func commentsAndSections() throws {
        let config = try parseConfig(
            """
            ; a comment
            # another comment
               ; indented comment

            [pgbouncer]
            listen_port = 7000
            [SLUICE]
            listen_addr = 127.0.0.1 ; not a comment
            """)
        #expect(config.listenPort == 7000)
        // Comment characters mean nothing after the start of a line, as in PgBouncer.
        #expect(config.listenAddresses == ["127.0.0.1 ; not a comment"])
    }

    @Test("keys are case-insensitive and the last of duplicate keys wins")
    func caseAndDuplicates() throws {
        let config = try parseConfig(
            """
            [sluice]
            Listen_Port = 7000
            LISTEN_PORT = 7001
            listen_addr = 127.0.0.1
            """)
        #expect(config.listenPort == 7001)
    }

    @Test("values are verbatim: quotes stay part of the value")
    func valuesVerbatim() throws {
        let config = try parseConfig(
            """
            [sluice]
            listen_addr = 127.0.0.1
            server_reset_query = "DISCARD ALL"
            admin_users =   alice , bob,,
            """)
        #expect(config.serverResetQuery == "\"DISCARD ALL\"")
        #expect(config.adminUsers == ["alice", "bob"])
    }

    @Test("CRLF line endings and a byte-order mark are accepted")
    func crlf() throws {
        let config = try parseConfig("\u{FEFF}[sluice]\r\nlisten_port = 7002\r\nlisten_addr = ::1\r\n")
        #expect(config.listenPort == 7002)
        #expect(config.listenAddresses == ["::1"])
    }

    @Test("%include reads a file relative to the including file and keeps the section")
    func include() throws {
        let config = try parseConfig(
            """
            [sluice]
            %include conf.d/listen.ini
            otherdb = host=other
            """,
            files: [
                "/etc/sluice/conf.d/listen.ini":
                    "listen_port = 7003\n%include more.ini\n[databases]\nappdb = host=db\n",
                "/etc/sluice/conf.d/more.ini": "listen_addr = 10.0.0.1\n",
            ])
        #expect(config.listenPort == 7003)
        #expect(config.listenAddresses == ["10.0.0.1"])
        #expect(config.databases["appdb"]?.host == "db")
        // The include switched to [databases]; the includer's next line is read in that section.
        #expect(config.databases["otherdb"]?.host == "other")
    }

    @Test("an absolute %include path is used as is")
    func absoluteInclude() throws {
        let config = try parseConfig(
            "[sluice]\n%include /opt/common.ini\n", files: ["/opt/common.ini": "listen_port = 7004\nlisten_addr=*\n"])
        #expect(config.listenPort == 7004)
        #expect(config.listenAddresses == ["*"])
    }

    @Test("a missing include names the including file and line")
    func missingInclude() {
        let error = configError { _ = try parseConfig("[sluice]\n\n%include nowhere.ini\n") }
        #expect(error?.file == "/etc/sluice/sluice.ini")
        #expect(error?.line == 3)
        #expect(error?.message.contains("/etc/sluice/nowhere.ini") == true)
    }

    @Test("an include cycle stops with an error")
    func includeCycle() {
        let error = configError {
            _ = try parseConfig("[sluice]\n%include loop.ini\n", files: ["/etc/sluice/loop.ini": "%include loop.ini\n"])
        }
        #expect(error?.file == "/etc/sluice/loop.ini")
        #expect(error?.message.contains("nested") == true)
    }

    @Test(
        "syntax errors carry file and line",
        arguments: [
            ("[sluice]\nlisten_port 7000\n", 2, "expected '='"),
            ("listen_port = 1\n", 1, "before any section"),
            ("[sluice\n", 1, "must end with ']'"),
            ("[sluice]\n%exclude x\n", 2, "unknown directive"),
            ("[nonsense]\n", 1, "unknown section [nonsense]"),
            ("[peers]\n1 = host=/tmp\n", 1, "[peers] is not supported"),
            ("[sluice]\nno_such_key = 1\n", 2, "unknown setting 'no_such_key'"),
            ("[sluice]\nlisten_port = many\n", 2, "listen_port = 'many' is not an integer"),
            ("[sluice]\nlisten_port = 70000\n", 2, "must be an integer in 1...65535"),
            ("[sluice]\ndefault_pool_size = -1\n", 2, "must be an integer in 0"),
            ("[sluice]\nserver_idle_timeout = -5\n", 2, "non-negative number of seconds"),
            ("[sluice]\nlog_connections = maybe\n", 2, "is not a boolean"),
            ("[sluice]\npool_mode = sometimes\n", 2, "is not one of session, transaction, statement"),
            ("[databases]\nmy db = host=x\n", 2, "expected '=' after 'my'"),
            ("[databases]\n\"open = host=x\n", 2, "unterminated quoted name"),
            ("[databases]\nédb = host=x\n", 2, "need double quotes"),
        ])
    func syntaxErrors(text: String, line: Int, fragment: String) {
        let error = configError { _ = try parseConfig(text) }
        #expect(error?.file == "/etc/sluice/sluice.ini")
        #expect(error?.line == line)
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
    }

    @Test("error descriptions read file:line: message")
    func errorDescription() {
        #expect(ConfigError(file: "a.ini", line: 3, message: "bad").description == "a.ini:3: bad")
        #expect(ConfigError(file: "environment", line: nil, message: "bad").description == "environment: bad")
    }

    @Test("integers follow strtol base 0 like PgBouncer")
    func integerSyntax() {
        #expect(ConfigValue.integer("0777") == 511)
        #expect(ConfigValue.integer("0x1F") == 31)
        #expect(ConfigValue.integer("-12") == -12)
        #expect(ConfigValue.integer("0") == 0)
        #expect(ConfigValue.integer("08") == nil)
        #expect(ConfigValue.integer("12abc") == nil)
        #expect(ConfigValue.integer("") == nil)
        #expect(ConfigValue.seconds("1.5") == 1.5)
        #expect(ConfigValue.seconds("inf") == nil)
        #expect(ConfigValue.boolean("on") == true)
        #expect(ConfigValue.boolean("0") == false)
    }
}
