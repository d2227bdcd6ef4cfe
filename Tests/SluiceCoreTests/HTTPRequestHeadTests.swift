import Testing

@testable import SluiceCore

@Suite("HTTP request head")
struct HTTPRequestHeadTests {
    private func parse(_ text: String, limit: Int = 8192) -> HTTPRequestHead.ParseResult {
        HTTPRequestHead.parse(Array(text.utf8), limit: limit)
    }

    private func head(_ text: String) -> HTTPRequestHead? {
        guard case .complete(let head, _) = parse(text) else { return nil }
        return head
    }

    private func error(_ text: String, limit: Int = 8192) -> HTTPRequestError? {
        guard case .failed(let error) = parse(text, limit: limit) else { return nil }
        return error
    }

    private func isIncomplete(_ text: String, limit: Int = 8192) -> Bool {
        guard case .incomplete = parse(text, limit: limit) else { return false }
        return true
    }

    @Test("a GET with CRLF line endings yields method, target, version, headers and the head's length")
    func simpleGet() throws {
        let text = "GET /metrics HTTP/1.1\r\nHost: localhost:9127\r\nAccept: text/plain\r\n\r\n"
        guard case .complete(let head, let length) = parse(text + "extra") else {
            Issue.record("not complete")
            return
        }
        #expect(length == text.utf8.count)
        #expect(head.method == "GET" && head.target == "/metrics" && head.path == "/metrics")
        #expect(head.version == .http1_1 && head.query.isEmpty)
        #expect(head.headers.map(\.name) == ["Host", "Accept"])
        #expect(head.headers.map(\.value) == ["localhost:9127", "text/plain"])
    }

    @Test("bare LF line endings are accepted, and so are empty lines before the request line")
    func bareLineFeeds() {
        guard case .complete(let head, let length) = parse("\r\n\nHEAD /health HTTP/1.0\nX-A: 1\n\n") else {
            Issue.record("not complete")
            return
        }
        #expect(head.method == "HEAD" && head.path == "/health" && head.version == .http1_0)
        #expect(head.header("x-a") == "1")
        #expect(length == 33)
    }

    @Test("a head is incomplete until its blank line arrives, at every split point")
    func incremental() {
        let text = "GET /pools?database=app HTTP/1.1\r\nHost: h\r\n\r\n"
        let bytes = Array(text.utf8)
        for end in 0..<bytes.count {
            guard case .incomplete = HTTPRequestHead.parse(Array(bytes[..<end])) else {
                Issue.record("prefix of \(end) bytes was not incomplete")
                return
            }
        }
        #expect(head(text)?.query == ["database": "app"])
    }

    @Test("the buffer overload reads the same bytes")
    func rawBuffer() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        let result = bytes.withUnsafeBytes { HTTPRequestHead.parse($0) }
        guard case .complete(let head, 27) = result else {
            Issue.record("not complete: \(result)")
            return
        }
        #expect(head.path == "/")
    }

    @Test("header lookup ignores case and returns the first field of that name; values lose surrounding whitespace")
    func headerLookup() {
        let parsed = head("GET / HTTP/1.1\r\nHost: h\r\nX-Thing: \t first \t\r\nx-thing: second\r\nEmpty:\r\n\r\n")
        #expect(parsed?.header("X-THING") == "first")
        #expect(parsed?.header("empty") == "")
        #expect(parsed?.header("missing") == nil)
    }

    @Test("the path is percent-decoded and the query split into first values, with + as a space")
    func pathAndQuery() {
        let parsed = head("GET /pools/my%20db?name=a+b%26c&flag&name=second&&x=%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(parsed?.target == "/pools/my%20db?name=a+b%26c&flag&name=second&&x=%C3%A9")
        #expect(parsed?.path == "/pools/my db")
        #expect(parsed?.query == ["name": "a b&c", "flag": "", "x": "é"])
    }

    @Test("a + in the path stays a +")
    func plusInPath() {
        #expect(head("GET /a+b HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "/a+b")
    }

    @Test("absolute-form and asterisk-form targets are read; other forms are malformed")
    func targetForms() {
        #expect(head("GET http://localhost:9127/metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "/metrics")
        #expect(head("GET HTTPS://localhost:9127 HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "/")
        #expect(head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")?.path == "*")
        #expect(error("CONNECT localhost:9127 HTTP/1.1\r\nHost: h\r\n\r\n") == .malformedRequestLine)
        #expect(error("GET metrics HTTP/1.1\r\nHost: h\r\n\r\n") == .malformedRequestLine)
        #expect(error("GET http:///metrics HTTP/1.1\r\nHost: h\r\n\r\n") == .malformedRequestLine)
        #expect(error("GET /metrics#top HTTP/1.1\r\nHost: h\r\n\r\n") == .malformedRequestLine)
    }

    @Test(
        "bad percent-encoding, invalid UTF-8 and decoded control characters are malformed",
        arguments: [
            "/a%2", "/a%zz", "/%FF", "/a%00b", "/?k=%0A", "/?%1=v",
        ])
    func badPercentEncoding(target: String) {
        #expect(error("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n") == .malformedRequestLine)
    }

    @Test(
        "a request line that is not three parts separated by single spaces is malformed",
        arguments: [
            "GET  / HTTP/1.1", "GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET\t/ HTTP/1.1", "GET / HTTP/1.1 extra",
            "GET", "G(T / HTTP/1.1", "GET /a\u{7F} HTTP/1.1", "GET /é HTTP/1.1", "GET / http/1.1", "GET / HTTP/1.10",
            "GET / HTTP/11", "GET / HTTP/1.x",
        ])
    func malformedRequestLine(line: String) {
        #expect(error(line + "\r\nHost: h\r\n\r\n") == .malformedRequestLine)
    }

    @Test(
        "control characters and NUL in the request line fail as soon as they arrive",
        arguments: [
            "GET /\0", "GET /\r ", "\u{16}\u{03}\u{01}\u{02}\0", "GE\u{1B}",
        ])
    func earlyRejection(prefix: String) {
        #expect(error(prefix) == .malformedRequestLine)
    }

    @Test("a partial request line ending in CR is still incomplete")
    func trailingCarriageReturn() {
        #expect(isIncomplete("GET / HTTP/1.1\r"))
        #expect(isIncomplete("\r"))
    }

    @Test(
        "HTTP/0.9, HTTP/2's preface and HTTP/3 are unsupported versions",
        arguments: [
            "GET /\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "GET / HTTP/3.0\r\nHost: h\r\n\r\n",
            "GET / HTTP/0.9\r\n\r\n", "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        ])
    func unsupportedVersions(text: String) {
        #expect(error(text) == .unsupportedVersion)
        #expect(error(text)?.statusCode == 505)
    }

    @Test("an HTTP/1.x minor version above 1 is read as HTTP/1.1")
    func laterMinorVersion() {
        #expect(head("GET / HTTP/1.2\r\nHost: h\r\n\r\n")?.version == .http1_1)
    }

    @Test(
        "obs-fold, names that are not tokens, missing colons and control characters in values are malformed",
        arguments: [
            "X-A: 1\r\n continued", "X-A: 1\r\n\tcontinued", "X-A : 1", "X A: 1", ": 1", "NoColon", "X-A: a\0b",
            "X-A: a\rb", "X-A: a\u{1B}b", "X-A: a\u{7F}", "Bad\"Name: 1", "Ünï: 1",
        ])
    func malformedHeaders(lines: String) {
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(lines)\r\n\r\n") == .malformedHeader)
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(lines)\r\n\r\n")?.statusCode == 400)
    }

    @Test("a header line directly after the request line that starts with whitespace is malformed")
    func leadingWhitespaceAfterRequestLine() {
        #expect(error("GET / HTTP/1.1\r\n Host: h\r\n\r\n") == .malformedHeader)
    }

    @Test("tabs and non-ASCII bytes are allowed inside header values")
    func obsText() {
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb ü\r\n\r\n")?.header("X-A") == "a\tb ü")
    }

    @Test("HTTP/1.1 needs exactly one Host header; HTTP/1.0 may go without")
    func hostHeader() {
        #expect(error("GET / HTTP/1.1\r\n\r\n") == .missingOrRepeatedHost)
        #expect(error("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n") == .missingOrRepeatedHost)
        #expect(error("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == .missingOrRepeatedHost)
        #expect(head("GET / HTTP/1.0\r\n\r\n") != nil)
        #expect(HTTPRequestError.missingOrRepeatedHost.statusCode == 400)
    }

    @Test("a request announcing a body is refused with 413; Content-Length 0 is fine")
    func bodies() {
        #expect(error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello") == .bodyNotAccepted)
        #expect(error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") == .bodyNotAccepted)
        #expect(
            error("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n") == .bodyNotAccepted)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n") != nil)
        #expect(HTTPRequestError.bodyNotAccepted.statusCode == 413)
    }

    @Test("a Content-Length that is not digits is malformed", arguments: ["", "-1", "1,1", "0x10", "1 2"])
    func badContentLength(value: String) {
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\n") == .malformedHeader)
    }

    @Test("a head that has not ended within the limit is too large; one that ends exactly at it is complete")
    func headTooLarge() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        let length = bytes.count
        let withoutBlankLine = Array(bytes.dropLast(2))
        guard case .failed(.headTooLarge) = HTTPRequestHead.parse(withoutBlankLine, limit: length - 2),
            case .incomplete = HTTPRequestHead.parse(withoutBlankLine, limit: length - 1),
            case .failed(.headTooLarge) = HTTPRequestHead.parse(bytes, limit: length - 1),
            case .complete(_, length) = HTTPRequestHead.parse(bytes, limit: length)
        else {
            Issue.record("the limit was not applied to the bytes up to the head's end")
            return
        }
        let padded = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + String(repeating: "a", count: 9000)
        #expect(error(padded) == .headTooLarge)
        #expect(HTTPRequestError.headTooLarge.statusCode == 431)
    }

    @Test("more than 100 header fields is too many; 100 is fine")
    func headerCount() {
        let hundred = (1...99).map { "X-\($0): v\r\n" }.joined()
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\n\(hundred)\r\n")?.headers.count == 100)
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\n\(hundred)X-100: v\r\n\r\n") == .tooManyHeaders)
        #expect(HTTPRequestError.tooManyHeaders.statusCode == 431)
    }

    @Test("an error in a complete line is reported before the head ends")
    func earlyHeaderError() {
        #expect(error("GET / HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\nX-A") == .malformedHeader)
    }

    @Test("a bearer token is read from Authorization with the scheme in any case")
    func bearerToken() {
        func token(_ value: String) -> String? {
            head("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: \(value)\r\n\r\n")?.bearerToken
        }
        #expect(token("Bearer abc.DEF-123_~+/==") == "abc.DEF-123_~+/==")
        #expect(token("bearer  xyz") == "xyz")
        #expect(token("Basic dXNlcjpwYXNz") == nil)
        #expect(token("Bearer") == nil)
        #expect(token("Bearer ") == nil)
        #expect(token("Bearer a b") == nil)
        #expect(token("Bearer ==") == nil)
        #expect(token("Bearer a=b") == nil)
        #expect(token("Bearerabc") == nil)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.bearerToken == nil)
    }

    @Test("every error names its status and says what went wrong")
    func errorStatuses() {
        #expect(HTTPRequestError.malformedRequestLine.statusCode == 400)
        #expect(HTTPRequestError.malformedHeader.statusCode == 400)
        #expect(HTTPRequestError.unsupportedVersion.description == "only HTTP/1.0 and HTTP/1.1 are supported")
        #expect(HTTPRequestError.tooManyHeaders.description == "more than 100 header fields")
    }
}
