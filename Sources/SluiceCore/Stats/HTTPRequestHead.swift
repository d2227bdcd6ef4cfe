/// The request line and header fields of an HTTP/1.0 or HTTP/1.1 request (RFC 9112), as the stats port
/// reads them.
///
/// The port answers only GET and HEAD and closes the connection after each response, so the parser reads
/// exactly one head and refuses any request that announces a body instead of skipping it. It is strict
/// where leniency has let requests be smuggled past other servers: no obs-fold, no whitespace before a
/// header's colon, no control characters, no ambiguous `Content-Length`.
public struct HTTPRequestHead: Sendable {
    /// The protocol versions the port speaks. A request naming HTTP/1.2 or later minor versions is read as
    /// HTTP/1.1, as RFC 9110 §2.5 asks of a recipient.
    public enum Version: Sendable, Equatable {
        case http1_0
        case http1_1
    }

    /// What `parse` made of the bytes received so far.
    public enum ParseResult: Sendable {
        /// The head has not ended yet and nothing wrong has been seen: read more and parse again from the
        /// first byte.
        case incomplete
        /// A whole head; its `headLength` bytes, the blank line included, are consumed.
        case complete(HTTPRequestHead, headLength: Int)
        /// The request cannot be served; answer with the error's status and close.
        case failed(HTTPRequestError)
    }

    /// How many header fields a head may carry. A scraper or `curl` sends fewer than ten.
    public static let maximumHeaderCount = 100

    /// The method, case-sensitive as RFC 9110 §9.1 has it: `get` is not `GET`.
    public var method: String
    /// The request target exactly as sent, for logs.
    public var target: String
    /// The target's path, percent-decoded, without the query. `*` for an asterisk-form target; for an
    /// absolute-form target (`http://host/path`), just its path.
    public var path: String
    /// The query's parameters, percent-decoded with `+` read as a space. A repeated key keeps its first value;
    /// a key without `=` has the empty value.
    public var query: [String: String]
    /// The version the request line names; HTTP/1.0 requests may omit `Host`.
    public var version: Version
    /// The header fields in the order received, values without their surrounding whitespace.
    public var headers: [(name: String, value: String)]

    /// A head with the given parts, for tests and for handlers that build one; `parse` derives `path` and
    /// `query` from `target` itself.
    public init(
        method: String, target: String, path: String, query: [String: String] = [:], version: Version = .http1_1,
        headers: [(name: String, value: String)] = []
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
    }

    /// The value of the first header field called `name`, compared without regard to ASCII case.
    public func header(_ name: String) -> String? {
        headers.first { Self.equalIgnoringASCIICase($0.name, name) }?.value
    }

    /// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or nil when there is none or
    /// the credentials are not a well-formed token68.
    public var bearerToken: String? {
        guard let credentials = header("Authorization") else { return nil }
        let bytes = Array(credentials.utf8)
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")),
            Self.equalIgnoringASCIICase(String(decoding: bytes[..<space], as: UTF8.self), "Bearer")
        else { return nil }
        let token = bytes[space...].drop { $0 == UInt8(ascii: " ") }
        let padding = token.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        let body = token.dropLast(padding)
        guard !body.isEmpty, body.allSatisfy(Self.isToken68Character) else { return nil }
        return String(decoding: token, as: UTF8.self)
    }

    /// Parses the head at the start of `bytes`. Call again with all the bytes received whenever more arrive,
    /// until the result is not `.incomplete`.
    ///
    /// Only the first `limit` bytes are looked at: a head that has not ended by then is `.headTooLarge`.
    /// Each line is checked as soon as it is complete, and the request line even before, so a client
    /// speaking TLS or another protocol is turned away at once rather than after the read timeout.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int = 8192) -> ParseResult {
        var parser = HeadParser(bytes: bytes, end: min(bytes.count, limit))
        switch parser.parse() {
        case .success(let parsed?):
            return .complete(parsed.head, headLength: parsed.length)
        case .success(nil):
            return bytes.count >= limit ? .failed(.headTooLarge) : .incomplete
        case .failure(let error):
            return .failed(error)
        }
    }

    /// Parses the head at the start of `bytes`; see `parse(_:limit:)` for buffers.
    public static func parse(_ bytes: [UInt8], limit: Int = 8192) -> ParseResult {
        bytes.withUnsafeBytes { parse($0, limit: limit) }
    }

    static func equalIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8) { lowercasedASCII($0) == lowercasedASCII($1) }
    }

    static func lowercasedASCII(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }

    /// `tchar` of RFC 9110 §5.6.2: the characters of methods and header names.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `token68` of RFC 9110 §11.2, less its trailing `=` padding.
    static func isToken68Character(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~+/".utf8.contains(byte)
        }
    }
}

/// Why a request head was refused, with the status code to answer it with.
public enum HTTPRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not `method SP target SP HTTP/x.y`, or a target that is not a path, an absolute URL or `*`, or has
    /// a bad percent-encoding.
    case malformedRequestLine
    /// A header line without a colon, with a name that is not a token, with a control character in its value,
    /// or folded onto a following line (obs-fold); or a `Content-Length` that is not a number.
    case malformedHeader
    /// An HTTP/1.1 request without a `Host` header, or any request with more than one (RFC 9112 §3.2).
    case missingOrRepeatedHost
    /// The head did not end within the size limit.
    case headTooLarge
    /// More than `HTTPRequestHead.maximumHeaderCount` header fields.
    case tooManyHeaders
    /// HTTP/0.9 (a request line without a version), HTTP/2's connection preface, or HTTP/3 and later.
    case unsupportedVersion
    /// A `Content-Length` above zero or a `Transfer-Encoding`: the stats port takes no request bodies.
    case bodyNotAccepted

    /// The response status for this error.
    public var statusCode: Int {
        switch self {
        case .malformedRequestLine, .malformedHeader, .missingOrRepeatedHost: 400
        case .headTooLarge, .tooManyHeaders: 431
        case .unsupportedVersion: 505
        case .bodyNotAccepted: 413
        }
    }

    /// A sentence for the response body and the log line, telling the client what to change.
    public var description: String {
        switch self {
        case .malformedRequestLine: "malformed request line"
        case .malformedHeader: "malformed header field"
        case .missingOrRepeatedHost: "an HTTP/1.1 request needs exactly one Host header"
        case .headTooLarge: "request head too large"
        case .tooManyHeaders: "more than \(HTTPRequestHead.maximumHeaderCount) header fields"
        case .unsupportedVersion: "only HTTP/1.0 and HTTP/1.1 are supported"
        case .bodyNotAccepted: "this port accepts no request bodies"
        }
    }
}

/// One pass over the bytes of a head; the state of `HTTPRequestHead.parse`.
private struct HeadParser {
    let bytes: UnsafeRawBufferPointer
    /// The first byte not to look at: the smaller of the byte count and the size limit.
    let end: Int

    private var method = ""
    private var target = ""
    private var path = ""
    private var query: [String: String] = [:]
    private var version = HTTPRequestHead.Version.http1_1
    private var headers: [(name: String, value: String)] = []

    init(bytes: UnsafeRawBufferPointer, end: Int) {
        self.bytes = bytes
        self.end = end
    }

    /// The head and its length, nil when the bytes end before the head does.
    mutating func parse() -> Result<(head: HTTPRequestHead, length: Int)?, HTTPRequestError> {
        // RFC 9112 §2.2: a server should ignore empty lines received before the request line.
        var cursor = 0
        while cursor < end {
            if bytes[cursor] == .lineFeed {
                cursor += 1
            } else if bytes[cursor] == .carriageReturn, cursor + 1 < end, bytes[cursor + 1] == .lineFeed {
                cursor += 2
            } else {
                break
            }
        }
        var sawRequestLine = false
        while let lineFeed = nextLineFeed(from: cursor) {
            var lineEnd = lineFeed
            if lineEnd > cursor, bytes[lineEnd - 1] == .carriageReturn { lineEnd -= 1 }
            let line = cursor..<lineEnd
            cursor = lineFeed + 1
            if !sawRequestLine {
                if let error = readRequestLine(line) { return .failure(error) }
                sawRequestLine = true
            } else if line.isEmpty {
                if let error = checkFraming() { return .failure(error) }
                let head = HTTPRequestHead(
                    method: method, target: target, path: path, query: query, version: version, headers: headers)
                return .success((head, cursor))
            } else {
                if let error = readHeaderLine(line) { return .failure(error) }
            }
        }
        if !sawRequestLine, !isPlausibleRequestLineStart(cursor..<end) { return .failure(.malformedRequestLine) }
        return .success(nil)
    }

    private func nextLineFeed(from start: Int) -> Int? {
        var index = start
        while index < end {
            if bytes[index] == .lineFeed { return index }
            index += 1
        }
        return nil
    }

    /// Whether the start of a request line could still become a valid one. A request line is visible ASCII
    /// and spaces, so a TLS ClientHello or a PostgreSQL startup packet fails here with its first bytes.
    private func isPlausibleRequestLineStart(_ range: Range<Int>) -> Bool {
        range.allSatisfy { index in
            let byte = bytes[index]
            return (0x20...0x7E).contains(byte) || (byte == .carriageReturn && index == range.upperBound - 1)
        }
    }

    /// RFC 9112 §3: `method SP request-target SP HTTP-version`, single spaces, nothing else.
    private mutating func readRequestLine(_ line: Range<Int>) -> HTTPRequestError? {
        var parts: [Range<Int>] = []
        var partStart = line.lowerBound
        for index in line {
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") {
                parts.append(partStart..<index)
                partStart = index + 1
            } else if !(0x21...0x7E).contains(byte) {
                return .malformedRequestLine
            }
        }
        parts.append(partStart..<line.upperBound)
        guard parts.allSatisfy({ !$0.isEmpty }), parts.count == 2 || parts.count == 3 else {
            return .malformedRequestLine
        }
        guard parts[0].allSatisfy({ HTTPRequestHead.isTokenCharacter(bytes[$0]) }) else {
            return .malformedRequestLine
        }
        method = string(parts[0])
        target = string(parts[1])
        guard readTarget(parts[1]) else { return .malformedRequestLine }
        // HTTP/0.9's request line is `GET path`; its client would wait for a reply without headers.
        guard parts.count == 3 else { return .unsupportedVersion }
        return readVersion(parts[2])
    }

    /// RFC 9112 §2.3: `HTTP/` DIGIT `.` DIGIT, case-sensitive.
    private mutating func readVersion(_ range: Range<Int>) -> HTTPRequestError? {
        let text = Array(UnsafeRawBufferPointer(rebasing: bytes[range]))
        guard text.count == 8, text[0..<5].elementsEqual("HTTP/".utf8), text[6] == UInt8(ascii: "."),
            let major = digitValue(text[5]), let minor = digitValue(text[7])
        else { return .malformedRequestLine }
        guard major == 1 else { return .unsupportedVersion }
        version = minor == 0 ? .http1_0 : .http1_1
        return nil
    }

    /// RFC 9112 §3.2: origin-form (`/path?query`), absolute-form (`http://host/path?query`) or asterisk-form.
    /// A fragment is not part of any of them.
    private mutating func readTarget(_ range: Range<Int>) -> Bool {
        let text = Array(UnsafeRawBufferPointer(rebasing: bytes[range]))
        guard !text.contains(UInt8(ascii: "#")) else { return false }
        if text == [UInt8(ascii: "*")] {
            path = "*"
            return true
        }
        var pathStart = 0
        if text.first != UInt8(ascii: "/") {
            guard let schemeEnd = absoluteFormSchemeLength(text) else { return false }
            pathStart =
                text[schemeEnd...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? text.count
        }
        let queryStart = text[pathStart...].firstIndex(of: UInt8(ascii: "?")) ?? text.count
        let rawPath = text[pathStart..<queryStart]
        guard let decodedPath = percentDecoded(rawPath.isEmpty ? ArraySlice("/".utf8) : rawPath, plusIsSpace: false)
        else { return false }
        path = decodedPath
        if queryStart < text.count {
            for pair in text[(queryStart + 1)...].split(separator: UInt8(ascii: "&")) {
                let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
                guard let key = percentDecoded(pair[..<equals], plusIsSpace: true),
                    let value = percentDecoded(pair[equals...].dropFirst(), plusIsSpace: true)
                else { return false }
                if query[key] == nil { query[key] = value }
            }
        }
        return true
    }

    /// The length of `http://` or `https://` (scheme in any case) followed by a non-empty authority.
    private func absoluteFormSchemeLength(_ text: [UInt8]) -> Int? {
        for scheme in ["http://", "https://"] {
            let prefix = text.prefix(scheme.utf8.count)
            if prefix.count == scheme.utf8.count,
                prefix.elementsEqual(scheme.utf8, by: { HTTPRequestHead.lowercasedASCII($0) == $1 }),
                text.count > prefix.count, text[prefix.count] != UInt8(ascii: "/"),
                text[prefix.count] != UInt8(ascii: "?")
            {
                return prefix.count
            }
        }
        return nil
    }

    /// RFC 3986 §2.1 percent-decoding. Nil for a `%` without two hex digits, for bytes that are not UTF-8,
    /// and for decoded control characters, which no path or parameter of the stats port contains.
    private func percentDecoded(_ text: ArraySlice<UInt8>, plusIsSpace: Bool) -> String? {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < text.endIndex, let high = hexValue(text[index + 1]),
                    let low = hexValue(text[index + 2])
                else { return nil }
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        guard !decoded.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return String(validating: decoded, as: UTF8.self)
    }

    /// RFC 9112 §5: `field-name ":" OWS field-value OWS`.
    private mutating func readHeaderLine(_ line: Range<Int>) -> HTTPRequestError? {
        // A line that starts with whitespace continues the previous field (obs-fold, RFC 9112 §5.2), which
        // a server must reject or unfold; other servers disagree on how to unfold, so it is rejected.
        guard bytes[line.lowerBound] != UInt8(ascii: " "), bytes[line.lowerBound] != .tab,
            let colon = line.first(where: { bytes[$0] == UInt8(ascii: ":") }), colon > line.lowerBound,
            (line.lowerBound..<colon).allSatisfy({ HTTPRequestHead.isTokenCharacter(bytes[$0]) })
        else { return .malformedHeader }
        var valueStart = colon + 1
        var valueEnd = line.upperBound
        while valueStart < valueEnd, isWhitespace(bytes[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart, isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
        // Field values are visible characters, spaces, tabs and obs-text (RFC 9110 §5.5).
        guard (valueStart..<valueEnd).allSatisfy({ bytes[$0] == .tab || (bytes[$0] >= 0x20 && bytes[$0] != 0x7F) })
        else { return .malformedHeader }
        guard headers.count < HTTPRequestHead.maximumHeaderCount else { return .tooManyHeaders }
        headers.append((string(line.lowerBound..<colon), string(valueStart..<valueEnd)))
        return nil
    }

    /// Host and body framing, once all header fields are known.
    private func checkFraming() -> HTTPRequestError? {
        let hostCount = headers.count { HTTPRequestHead.equalIgnoringASCIICase($0.name, "Host") }
        if hostCount > 1 || (hostCount == 0 && version == .http1_1) { return .missingOrRepeatedHost }
        var announcesBody = false
        for (name, value) in headers {
            if HTTPRequestHead.equalIgnoringASCIICase(name, "Transfer-Encoding") {
                announcesBody = true
            } else if HTTPRequestHead.equalIgnoringASCIICase(name, "Content-Length") {
                // Only the digits matter: any that is not zero means a body, however long the number.
                guard !value.isEmpty, value.utf8.allSatisfy({ digitValue($0) != nil }) else { return .malformedHeader }
                if value.utf8.contains(where: { $0 != UInt8(ascii: "0") }) { announcesBody = true }
            }
        }
        return announcesBody ? .bodyNotAccepted : nil
    }

    private func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == .tab
    }

    private func digitValue(_ byte: UInt8) -> UInt8? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? byte - UInt8(ascii: "0") : nil
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension UInt8 {
    fileprivate static let tab = UInt8(ascii: "\t")
    fileprivate static let lineFeed = UInt8(ascii: "\n")
    fileprivate static let carriageReturn = UInt8(ascii: "\r")
}
