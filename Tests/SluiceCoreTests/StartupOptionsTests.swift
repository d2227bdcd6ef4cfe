import Testing

@testable import SluiceCore

@Suite("Startup options")
struct StartupOptionsTests {
    @Test("-c, -cname and --name forms all give settings, in order")
    func forms() throws {
        let settings = try StartupOptions.parse("-c search_path=tenant_42 -cstatement_timeout=5s --work-mem=64MB")
        #expect(settings.map(\.name) == ["search_path", "statement_timeout", "work_mem"])
        #expect(settings.map(\.value) == ["tenant_42", "5s", "64MB"])
    }

    @Test("a backslash keeps a space inside a value")
    func escapes() throws {
        let settings = try StartupOptions.parse(#"-c search_path=a,\ b  -c application_name=x\\y"#)
        #expect(settings.map(\.value) == ["a, b", #"x\y"#])
    }

    @Test("blank options give nothing")
    func blank() throws {
        #expect(try StartupOptions.parse("   ").isEmpty)
    }

    @Test("other backend switches and malformed settings are refused", arguments: ["-B 100", "-c", "-c =x", "-c foo"])
    func refused(text: String) {
        #expect(throws: ProtocolViolation.self) { try StartupOptions.parse(text) }
    }
}
