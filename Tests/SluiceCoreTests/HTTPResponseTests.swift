import Testing

@testable import SluiceCore

@Suite("HTTP response")
struct HTTPResponseTests {
    private func text(_ response: HTTPResponse, includeBody: Bool = true) -> String {
        String(decoding: response.encoded(includeBody: includeBody), as: UTF8.self)
    }

    @Test("a JSON response carries its type, length, close and no-store, and ends its body with a newline")
    func json() {
        let response = HTTPResponse.json(body: ["ok": true])
        #expect(
            text(response)
                == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                + "Connection: close\r\nCache-Control: no-store\r\n\r\n{\"ok\":true}\n")
    }

    @Test("a HEAD answer announces the body's length but leaves the body out")
    func head() {
        let response = HTTPResponse.text(status: 200, body: "hello")
        #expect(
            text(response, includeBody: false)
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
                + "Connection: close\r\nCache-Control: no-store\r\n\r\n")
    }

    @Test("a Prometheus scrape uses the 0.0.4 text content type")
    func prometheus() {
        let response = HTTPResponse.prometheus(body: "x 1\n")
        #expect(response.status == 200)
        #expect(response.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(text(response).hasSuffix("\r\n\r\nx 1\n"))
    }

    @Test("a 401 challenges for a bearer token")
    func unauthorized() {
        let encoded = text(.text(status: 401, body: "no\n"))
        #expect(encoded.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"))
        #expect(encoded.contains("\r\nWWW-Authenticate: Bearer realm=\"sluice\"\r\n"))
        #expect(!encoded.contains("Allow:"))
    }

    @Test("a 405 lists the allowed methods")
    func methodNotAllowed() {
        let encoded = text(.text(status: 405, body: ""))
        #expect(encoded.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(encoded.contains("\r\nAllow: GET, HEAD\r\n"))
        #expect(encoded.contains("\r\nContent-Length: 0\r\n"))
        #expect(!encoded.contains("WWW-Authenticate"))
    }

    @Test("a 204 carries neither Content-Length nor a body")
    func noContent() {
        var response = HTTPResponse(status: 204)
        response.body = Array("ignored".utf8)
        #expect(text(response) == "HTTP/1.1 204 No Content\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n")
    }

    @Test("the standard reason phrases; an unknown status has an empty one")
    func reasonPhrases() {
        let expected: [Int: String] = [
            200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
            505: "HTTP Version Not Supported",
        ]
        for (status, reason) in expected {
            #expect(HTTPResponse.reasonPhrase(status) == reason)
            #expect(HTTPResponse(status: status).reason == reason)
        }
        #expect(text(HTTPResponse(status: 299)).hasPrefix("HTTP/1.1 299 \r\n"))
    }

    @Test("extra headers follow the fixed ones, and CR, LF and NUL in them become spaces")
    func extraHeaders() {
        let response = HTTPResponse(
            status: 200, headers: [("X-Sluice", "a\r\nSet-Cookie: b\0"), ("Bad\nName", "v")])
        let encoded = text(response)
        #expect(encoded.hasSuffix("Cache-Control: no-store\r\nX-Sluice: a  Set-Cookie: b \r\nBad Name: v\r\n\r\n"))
    }

    @Test("a refused request head is answered with its status and a one-line reason")
    func errorResponse() {
        let response = HTTPResponse(error: .headTooLarge)
        #expect(response.status == 431 && response.reason == "Request Header Fields Too Large")
        #expect(response.body == Array("request head too large\n".utf8))
        #expect(response.contentType == "text/plain; charset=utf-8")
    }
}
