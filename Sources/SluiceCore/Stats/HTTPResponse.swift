/// A response of the stats port: status, content type, extra headers and a body, encoded in one piece.
///
/// Every response closes the connection (`Connection: close`), so the port never has to read a second
/// request or keep idle sockets, and forbids caching (`Cache-Control: no-store`), since the numbers are
/// stale a moment later and some replies reveal pool names.
public struct HTTPResponse: Sendable {
    /// The status code. Changing it after `init` leaves `reason` as it was.
    public var status: Int
    /// The reason phrase of the status line; empty for a status without a standard one, which RFC 9112 §4
    /// allows.
    public var reason: String
    /// The media type of the body, nil for a response without one.
    public var contentType: String?
    /// Headers besides the ones `encoded` always writes. Names should be tokens; a CR, LF or NUL in a name
    /// or value is written as a space, so no header can end the head early or add a line of its own.
    public var headers: [(name: String, value: String)]
    /// The payload, which `encoded` writes only when asked to and never for a 204.
    public var body: [UInt8]

    /// A response with the standard reason phrase of `status`.
    public init(
        status: Int, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.status = status
        self.reason = Self.reasonPhrase(status)
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// A JSON document, followed by a newline so a reply printed by `curl` leaves the prompt on its own line.
    public static func json(status: Int = 200, body: JSONValue) -> HTTPResponse {
        var text = body.serialized()
        text += "\n"
        return HTTPResponse(status: status, contentType: "application/json", body: Array(text.utf8))
    }

    /// Plain UTF-8 text: error explanations and the health check's answer.
    public static func text(status: Int, body: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(body.utf8))
    }

    /// A scrape in the Prometheus text exposition format, version 0.0.4, whose content type Prometheus uses
    /// to pick the parser.
    public static func prometheus(body: String) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(body.utf8))
    }

    /// The answer to a request head that could not be served: its status and a one-line explanation.
    public init(error: HTTPRequestError) {
        self = .text(status: error.statusCode, body: error.description + "\n")
    }

    /// The standard reason phrase of the statuses the stats port sends (RFC 9110 §15), empty for others.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }

    /// The status line, headers and, when `includeBody` is true, the body. `Content-Length` is always the
    /// body's length, so the answer to a HEAD request (`includeBody: false`) announces what GET would send.
    ///
    /// A 204 carries neither body nor `Content-Length`, which RFC 9110 §8.6 forbids for it. A 401 adds the
    /// `WWW-Authenticate` challenge RFC 9110 §11.6.1 requires, and a 405 the `Allow` header §15.5.6 requires.
    public func encoded(includeBody: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.sanitized(reason))\r\n"
        if let contentType { head += "Content-Type: \(Self.sanitized(contentType))\r\n" }
        if status != 204 { head += "Content-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n"
        head += "Cache-Control: no-store\r\n"
        if status == 401 { head += "WWW-Authenticate: Bearer realm=\"sluice\"\r\n" }
        if status == 405 { head += "Allow: GET, HEAD\r\n" }
        for (name, value) in headers {
            head += "\(Self.sanitized(name)): \(Self.sanitized(value))\r\n"
        }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if includeBody, status != 204 { bytes += body }
        return bytes
    }

    private static func sanitized(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) else { return text }
        return String(
            String.UnicodeScalarView(text.unicodeScalars.map { [0x0D, 0x0A, 0x00].contains($0.value) ? " " : $0 }))
    }
}
