import Foundation
import Glibc
import SluiceCore

/// Why a raw protocol exchange failed. Thrown errors fail the calling test, so every message
/// carries enough context (what was expected, what arrived) to debug from the test log alone.
struct RawClientError: Error, CustomStringConvertible {
    var description: String
    /// True when a read's deadline passed: the peer is alive but silent.
    var isTimeout = false

    init(_ description: String, isTimeout: Bool = false) {
        self.description = description
        self.isTimeout = isTimeout
    }

    static func system(_ call: String, _ code: Int32 = errno) -> RawClientError {
        RawClientError("\(call) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

// MARK: - Backend messages

/// One message from the server (or from Sluice pretending to be one): its type byte and the
/// payload after the length word.
struct BackendMessage: CustomStringConvertible {
    var type: UInt8
    var payload: [UInt8]

    var typeChar: Character { Character(UnicodeScalar(type)) }

    /// The fields of an ErrorResponse or NoticeResponse, keyed by field code ('S', 'C', 'M', ...).
    var fields: [Character: String] {
        var result: [Character: String] = [:]
        var reader = RawPayloadReader(payload)
        while let code = reader.byte(), code != 0 {
            result[Character(UnicodeScalar(code))] = reader.cString() ?? ""
        }
        return result
    }

    var isError: Bool { type == UInt8(ascii: "E") }

    /// SQLSTATE of an ErrorResponse or NoticeResponse.
    var sqlState: String? { fields["C"] }

    /// Primary human-readable message of an ErrorResponse or NoticeResponse.
    var errorMessage: String? { fields["M"] }

    /// Severity ('S' field, localized) of an ErrorResponse or NoticeResponse.
    var severity: String? { fields["S"] }

    /// Transaction status of a ReadyForQuery: 'I' idle, 'T' in transaction, 'E' failed transaction.
    var readyStatus: Character? {
        guard type == UInt8(ascii: "Z"), payload.count == 1 else { return nil }
        return Character(UnicodeScalar(payload[0]))
    }

    /// Process id and secret key of a BackendKeyData. The key is kept as bytes because protocol
    /// 3.2 made its length variable.
    var backendKey: (processID: Int32, secretKey: [UInt8])? {
        guard type == UInt8(ascii: "K") else { return nil }
        var reader = RawPayloadReader(payload)
        guard let pid = reader.int32() else { return nil }
        return (pid, reader.rest())
    }

    /// Columns of a DataRow, decoded as UTF-8 text; `nil` stands for SQL NULL.
    var dataRowColumns: [String?]? {
        guard type == UInt8(ascii: "D") else { return nil }
        var reader = RawPayloadReader(payload)
        guard let count = reader.int16() else { return nil }
        var columns: [String?] = []
        for _ in 0..<Int(count) {
            guard let length = reader.int32() else { return nil }
            if length < 0 {
                columns.append(nil)
            } else {
                guard let bytes = reader.bytes(Int(length)) else { return nil }
                columns.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        return columns
    }

    /// Name and value of a ParameterStatus.
    var parameterStatus: (name: String, value: String)? {
        guard type == UInt8(ascii: "S") else { return nil }
        var reader = RawPayloadReader(payload)
        guard let name = reader.cString(), let value = reader.cString() else { return nil }
        return (name, value)
    }

    /// Tag of a CommandComplete, e.g. "SELECT 1".
    var commandTag: String? {
        guard type == UInt8(ascii: "C") else { return nil }
        var reader = RawPayloadReader(payload)
        return reader.cString()
    }

    /// Request code of an Authentication message (0 ok, 3 cleartext, 5 md5, 10 SASL, ...).
    var authenticationCode: Int32? {
        guard type == UInt8(ascii: "R") else { return nil }
        var reader = RawPayloadReader(payload)
        return reader.int32()
    }

    /// Everything after the request code of an Authentication message: the md5 salt, the SASL
    /// mechanism list or the SASL server data.
    var authenticationData: [UInt8] {
        Array(payload.dropFirst(4))
    }

    /// Newest supported minor version and the rejected options of a NegotiateProtocolVersion.
    var negotiatedProtocol: (newestMinor: Int32, unrecognized: [String])? {
        guard type == UInt8(ascii: "v") else { return nil }
        var reader = RawPayloadReader(payload)
        guard let minor = reader.int32(), let count = reader.int32() else { return nil }
        var options: [String] = []
        for _ in 0..<max(0, Int(count)) {
            guard let option = reader.cString() else { return nil }
            options.append(option)
        }
        return (minor, options)
    }

    var description: String {
        switch typeChar {
        case "E", "N":
            let f = fields
            // Clipped: a test that fails on a 2 MB notice should not print 2 MB.
            let text = f["M"] ?? ""
            let clipped = text.count > 300 ? text.prefix(300) + "…(\(text.count) chars)" : text
            return "\(typeChar)(\(f["S"] ?? "?") \(f["C"] ?? "?"): \(clipped))"
        case "Z": return "Z(\(readyStatus.map(String.init) ?? "?"))"
        case "C": return "C(\(commandTag ?? "?"))"
        case "D" where payload.count > 300: return "D[\(payload.count) bytes]"
        case "D": return "D(\(dataRowColumns.map { $0.map { $0 ?? "NULL" } } ?? []))"
        case "S":
            guard let status = parameterStatus else { return "S(?)" }
            return "S(\(status.name)=\(status.value))"
        case "R": return "R(\(authenticationCode.map(String.init) ?? "?"))"
        default: return "\(typeChar)[\(payload.count)]"
        }
    }
}

/// A cursor over a message payload; every accessor returns nil instead of reading past the end.
struct RawPayloadReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func byte() -> UInt8? {
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func int16() -> Int16? {
        guard let b = self.bytes(2) else { return nil }
        return Int16(bitPattern: UInt16(b[0]) << 8 | UInt16(b[1]))
    }

    mutating func int32() -> Int32? {
        guard let b = self.bytes(4) else { return nil }
        return Int32(bitPattern: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, index + count <= bytes.count else { return nil }
        defer { index += count }
        return Array(bytes[index..<index + count])
    }

    mutating func cString() -> String? {
        guard let end = bytes[index...].firstIndex(of: 0) else { return nil }
        defer { index = end + 1 }
        return String(decoding: bytes[index..<end], as: UTF8.self)
    }

    mutating func rest() -> [UInt8] {
        defer { index = bytes.count }
        return Array(bytes[index...])
    }
}

// MARK: - Frontend messages

/// Frontend messages encoded back to back, so that a test controls exactly which messages share
/// one TCP write. Names follow the "Message Formats" section of the PostgreSQL protocol docs.
struct FrontendBatch {
    private(set) var bytes: [UInt8] = []

    init() {}

    // Untyped messages: sent before the startup completes, length word first.

    mutating func startup(_ parameters: [(String, String)], major: UInt16 = 3, minor: UInt16 = 0) {
        var body: [UInt8] = []
        body.appendInt16(Int16(bitPattern: major))
        body.appendInt16(Int16(bitPattern: minor))
        for (name, value) in parameters {
            body.appendCString(name)
            body.appendCString(value)
        }
        body.append(0)
        untyped(body)
    }

    mutating func sslRequest() {
        untyped(requestCode: 80_877_103)
    }

    mutating func gssEncRequest() {
        untyped(requestCode: 80_877_104)
    }

    mutating func cancelRequest(processID: Int32, secretKey: [UInt8]) {
        var body: [UInt8] = []
        body.appendInt32(80_877_102)
        body.appendInt32(processID)
        body.append(contentsOf: secretKey)
        untyped(body)
    }

    private mutating func untyped(requestCode: Int32) {
        var body: [UInt8] = []
        body.appendInt32(requestCode)
        untyped(body)
    }

    private mutating func untyped(_ body: [UInt8]) {
        bytes.appendInt32(Int32(body.count + 4))
        bytes.append(contentsOf: body)
    }

    // Typed messages.

    mutating func query(_ sql: String) {
        message("Q") { $0.appendCString(sql) }
    }

    mutating func parse(_ sql: String, name: String = "", parameterTypes: [Int32] = []) {
        message("P") {
            $0.appendCString(name)
            $0.appendCString(sql)
            $0.appendInt16(Int16(parameterTypes.count))
            for oid in parameterTypes { $0.appendInt32(oid) }
        }
    }

    /// Bind with every parameter in text format; `nil` binds SQL NULL.
    mutating func bind(
        portal: String = "", statement: String = "", parameters: [String?] = [], resultFormats: [Int16] = []
    ) {
        message("B") {
            $0.appendCString(portal)
            $0.appendCString(statement)
            $0.appendInt16(0)
            $0.appendInt16(Int16(parameters.count))
            for parameter in parameters {
                if let parameter {
                    let utf8 = Array(parameter.utf8)
                    $0.appendInt32(Int32(utf8.count))
                    $0.append(contentsOf: utf8)
                } else {
                    $0.appendInt32(-1)
                }
            }
            $0.appendInt16(Int16(resultFormats.count))
            for format in resultFormats { $0.appendInt16(format) }
        }
    }

    mutating func describeStatement(_ name: String = "") {
        message("D") {
            $0.append(UInt8(ascii: "S"))
            $0.appendCString(name)
        }
    }

    mutating func describePortal(_ name: String = "") {
        message("D") {
            $0.append(UInt8(ascii: "P"))
            $0.appendCString(name)
        }
    }

    mutating func execute(portal: String = "", maxRows: Int32 = 0) {
        message("E") {
            $0.appendCString(portal)
            $0.appendInt32(maxRows)
        }
    }

    mutating func closeStatement(_ name: String = "") {
        message("C") {
            $0.append(UInt8(ascii: "S"))
            $0.appendCString(name)
        }
    }

    mutating func closePortal(_ name: String = "") {
        message("C") {
            $0.append(UInt8(ascii: "P"))
            $0.appendCString(name)
        }
    }

    mutating func sync() { message("S") { _ in } }

    mutating func flush() { message("H") { _ in } }

    mutating func terminate() { message("X") { _ in } }

    mutating func copyData(_ data: [UInt8]) { message("d") { $0.append(contentsOf: data) } }

    mutating func copyDone() { message("c") { _ in } }

    mutating func copyFail(_ reason: String) { message("f") { $0.appendCString(reason) } }

    mutating func password(_ password: String) { message("p") { $0.appendCString(password) } }

    mutating func saslInitialResponse(mechanism: String, data: [UInt8]?) {
        message("p") {
            $0.appendCString(mechanism)
            if let data {
                $0.appendInt32(Int32(data.count))
                $0.append(contentsOf: data)
            } else {
                $0.appendInt32(-1)
            }
        }
    }

    mutating func saslResponse(_ data: [UInt8]) { message("p") { $0.append(contentsOf: data) } }

    /// FunctionCall (the legacy fast-path interface) with text-format arguments and result.
    mutating func functionCall(oid: Int32, arguments: [String?]) {
        message("F") {
            $0.appendInt32(oid)
            $0.appendInt16(1)
            $0.appendInt16(0)
            $0.appendInt16(Int16(arguments.count))
            for argument in arguments {
                if let argument {
                    $0.appendInt32(Int32(argument.utf8.count))
                    $0.append(contentsOf: argument.utf8)
                } else {
                    $0.appendInt32(-1)
                }
            }
            $0.appendInt16(0)
        }
    }

    /// Parse/Bind/Execute/Sync of one statement with no parameters: a minimal extended query.
    mutating func extendedQuery(_ sql: String, parameters: [String?] = [], describe: Bool = false) {
        parse(sql)
        if describe { describeStatement() }
        bind(parameters: parameters)
        execute()
        sync()
    }

    /// A typed message with an arbitrary type byte and payload; the length word is computed.
    mutating func message(type: UInt8, payload: [UInt8]) {
        bytes.append(type)
        bytes.appendInt32(Int32(payload.count + 4))
        bytes.append(contentsOf: payload)
    }

    /// Bytes appended verbatim, for malformed input.
    mutating func raw(_ data: [UInt8]) {
        bytes.append(contentsOf: data)
    }

    private mutating func message(_ type: Character, _ build: (inout [UInt8]) -> Void) {
        var payload: [UInt8] = []
        build(&payload)
        message(type: type.asciiValue!, payload: payload)
    }
}

extension [UInt8] {
    mutating func appendInt16(_ value: Int16) {
        let v = UInt16(bitPattern: value)
        append(UInt8(v >> 8))
        append(UInt8(v & 0xff))
    }

    mutating func appendInt32(_ value: Int32) {
        let v = UInt32(bitPattern: value)
        append(UInt8(v >> 24))
        append(UInt8((v >> 16) & 0xff))
        append(UInt8((v >> 8) & 0xff))
        append(UInt8(v & 0xff))
    }

    mutating func appendCString(_ string: String) {
        append(contentsOf: string.utf8)
        append(0)
    }
}

// MARK: - The client

/// A deliberately low-level PostgreSQL v3 client over a blocking loopback TCP socket.
///
/// Unlike libpq it never hides the wire: a test decides which messages share one write and reads
/// the replies one at a time. Every read has a deadline, so a proxy that stops answering fails
/// the test instead of hanging the suite.
final class RawClient {
    /// How long a single read waits when the caller names no timeout.
    static let defaultTimeout: Duration = .seconds(10)

    let port: Int
    private var fd: Int32
    private var inbox: [UInt8] = []
    private var inboxStart = 0
    private var sawEOF = false

    /// BackendKeyData received during startup, for CancelRequest.
    private(set) var backendKey: (processID: Int32, secretKey: [UInt8])?
    /// The ErrorResponse that ended the last failed `authenticate`.
    private(set) var lastLoginError: BackendMessage?
    /// ParameterStatus values received so far.
    private(set) var parameters: [String: String] = [:]

    /// Opens a TCP connection to 127.0.0.1:`port` without sending anything.
    init(port: Int, timeout: Duration = defaultTimeout) throws {
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawClientError.system("socket") }
        var one: Int32 = 1
        // Nagle would hold back a second small write until the first is acknowledged; tests that
        // want messages in one segment put them in one write instead.
        _ = setsockopt(fd, Int32(IPPROTO_TCP), 1 /* TCP_NODELAY */, &one, socklen_t(MemoryLayout<Int32>.size))
        // Bounds connect and every send the way `poll` bounds reads: a peer that stops reading
        // (or a full listen backlog) fails the test instead of hanging it.
        var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            let code = errno
            Glibc.close(fd)
            fd = -1
            throw RawClientError.system("connect to 127.0.0.1:\(port)", code)
        }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Opens a connection, sends a StartupMessage and answers authentication until the first
    /// ReadyForQuery. Throws with the server's ErrorResponse if login fails.
    static func connect(
        port: Int, user: String, password: String? = nil, database: String,
        parameters extra: [(String, String)] = [], timeout: Duration = defaultTimeout
    ) throws -> RawClient {
        let client = try RawClient(port: port)
        try client.startup(user: user, password: password, database: database, parameters: extra, timeout: timeout)
        return client
    }

    /// Sends a 3.0 StartupMessage and completes the login; see `connect`.
    func startup(
        user: String, password: String? = nil, database: String, parameters extra: [(String, String)] = [],
        timeout: Duration = defaultTimeout
    ) throws {
        var batch = FrontendBatch()
        batch.startup([("user", user), ("database", database)] + extra)
        try send(batch)
        try authenticate(user: user, password: password, timeout: timeout)
    }

    /// Answers Authentication requests until ReadyForQuery, recording BackendKeyData and
    /// ParameterStatus on the way.
    func authenticate(user: String, password: String?, timeout: Duration = defaultTimeout) throws {
        var scram: SCRAMClient?
        while true {
            let message = try read(timeout: timeout)
            switch message.typeChar {
            case "R":
                try answer(authentication: message, user: user, password: password, scram: &scram)
            case "E":
                lastLoginError = message
                throw RawClientError("login as \(user) failed: \(message)")
            case "Z":
                return
            case "K", "S", "N", "v":
                continue
            default:
                throw RawClientError("unexpected message during login: \(message)")
            }
        }
    }

    private func answer(
        authentication message: BackendMessage, user: String, password: String?, scram: inout SCRAMClient?
    ) throws {
        guard let code = message.authenticationCode else { throw RawClientError("malformed \(message)") }
        let data = message.authenticationData
        var batch = FrontendBatch()
        switch code {
        case 0:
            if let scram, !scram.isComplete {
                throw RawClientError("AuthenticationOk before the server proved itself in SCRAM")
            }
            return
        case 3:
            guard let password else { throw RawClientError("server asked for a cleartext password; none given") }
            batch.password(password)
        case 5:
            guard let password else { throw RawClientError("server asked for an md5 password; none given") }
            guard data.count == 4 else { throw RawClientError("md5 request without a 4-byte salt: \(message)") }
            batch.password(md5Response(password: password, user: user, salt: data))
        case 10:
            guard let password else { throw RawClientError("server asked for SASL; no password given") }
            let mechanisms = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard mechanisms.contains("SCRAM-SHA-256") else {
                throw RawClientError("no SASL mechanism RawClient knows among \(mechanisms)")
            }
            let client = SCRAMClient(credentials: .password(password))
            batch.saslInitialResponse(mechanism: "SCRAM-SHA-256", data: client.clientFirstMessage)
            scram = client
        case 11:
            guard var client = scram else { throw RawClientError("SASLContinue without SASL") }
            batch.saslResponse(try client.serverFirstMessageReceived(data))
            scram = client
        case 12:
            guard var client = scram else { throw RawClientError("SASLFinal without SASL") }
            try client.serverFinalMessageReceived(data)
            scram = client
            return
        default:
            throw RawClientError("authentication request \(code) is not supported by RawClient")
        }
        try send(batch)
    }

    // MARK: Writing

    /// Writes the whole batch with as few `send` calls as the kernel allows (one, for anything
    /// that fits in the socket buffer).
    func send(_ batch: FrontendBatch) throws {
        try sendRaw(batch.bytes)
    }

    /// Writes arbitrary bytes.
    func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw RawClientError("send blocked: the peer stopped reading", isTimeout: true)
                }
                throw RawClientError.system("send")
            }
            offset += sent
        }
    }

    /// Convenience: sends a batch built by `build` in one write.
    func send(_ build: (inout FrontendBatch) -> Void) throws {
        var batch = FrontendBatch()
        build(&batch)
        try send(batch)
    }

    /// Half-closes nothing and says goodbye: sends Terminate and closes the socket.
    func terminate() {
        var batch = FrontendBatch()
        batch.terminate()
        try? send(batch)
        close()
    }

    /// Closes the socket abruptly, without Terminate.
    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    // MARK: Reading

    /// Reads one backend message, waiting at most `timeout`.
    func read(timeout: Duration = defaultTimeout) throws -> BackendMessage {
        let deadline = ContinuousClock.now + timeout
        try fill(atLeast: 5, deadline: deadline, what: "a message header")
        let length = Int(
            Int32(
                bitPattern: UInt32(inbox[inboxStart + 1]) << 24 | UInt32(inbox[inboxStart + 2]) << 16
                    | UInt32(inbox[inboxStart + 3]) << 8 | UInt32(inbox[inboxStart + 4])))
        let type = inbox[inboxStart]
        guard length >= 4, length < 1 << 30 else {
            throw RawClientError("backend message '\(Character(UnicodeScalar(type)))' has invalid length \(length)")
        }
        try fill(atLeast: 1 + length, deadline: deadline, what: "the body of '\(Character(UnicodeScalar(type)))'")
        let payload = Array(inbox[(inboxStart + 5)..<(inboxStart + 1 + length)])
        consume(1 + length)
        let message = BackendMessage(type: type, payload: payload)
        if let key = message.backendKey { backendKey = key }
        if let status = message.parameterStatus { parameters[status.name] = status.value }
        return message
    }

    /// Reads a single byte: the answer to an SSLRequest or GSSENCRequest.
    func readByte(timeout: Duration = defaultTimeout) throws -> UInt8 {
        try fill(atLeast: 1, deadline: ContinuousClock.now + timeout, what: "a single byte")
        let byte = inbox[inboxStart]
        consume(1)
        return byte
    }

    /// The next byte without consuming it (to tell an SSLRequest answer from a message).
    func peekByte(timeout: Duration = defaultTimeout) throws -> UInt8 {
        try fill(atLeast: 1, deadline: ContinuousClock.now + timeout, what: "a single byte")
        return inbox[inboxStart]
    }

    /// Reads until (and including) a ReadyForQuery.
    func readUntilReadyForQuery(timeout: Duration = defaultTimeout) throws -> [BackendMessage] {
        let deadline = ContinuousClock.now + timeout
        var messages: [BackendMessage] = []
        while true {
            let message: BackendMessage
            do {
                message = try read(timeout: max(.zero, deadline - ContinuousClock.now))
            } catch let error as RawClientError {
                // What came before the failure (often a FATAL ErrorResponse) is the useful part.
                throw RawClientError("after \(messages): \(error)", isTimeout: error.isTimeout)
            }
            messages.append(message)
            if message.type == UInt8(ascii: "Z") { return messages }
        }
    }

    /// Reads exactly `types.count` messages and checks their types in order ("1tT2DCZ"). A
    /// NoticeResponse ('N') is skipped unless `types` mentions it. Throws with the full sequence
    /// received on the first mismatch, reading on to the next ReadyForQuery for context.
    @discardableResult
    func expect(types: String, timeout: Duration = defaultTimeout) throws -> [BackendMessage] {
        let deadline = ContinuousClock.now + timeout
        let skipNotices = !types.contains("N")
        var messages: [BackendMessage] = []
        var expected = Array(types)[...]
        while let next = expected.first {
            let message: BackendMessage
            do {
                message = try read(timeout: max(.zero, deadline - ContinuousClock.now))
            } catch {
                throw RawClientError("expected \(types), got \(messages) then: \(error)")
            }
            if skipNotices && message.typeChar == "N" { continue }
            messages.append(message)
            if message.typeChar != next {
                var context = messages
                if message.typeChar != "Z" {
                    context += (try? readUntilReadyForQuery(timeout: .seconds(2))) ?? []
                }
                throw RawClientError("expected \(types), got \(context)")
            }
            expected.removeFirst()
        }
        return messages
    }

    /// Runs one simple query and returns its messages up to and including ReadyForQuery; throws
    /// if the server answers with an ErrorResponse.
    @discardableResult
    func simpleQuery(_ sql: String, timeout: Duration = defaultTimeout) throws -> [BackendMessage] {
        try send { $0.query(sql) }
        let messages: [BackendMessage]
        do {
            messages = try readUntilReadyForQuery(timeout: timeout)
        } catch {
            throw RawClientError("\(sql): \(error)")
        }
        if let error = messages.first(where: \.isError) {
            throw RawClientError("\(sql): \(error)")
        }
        return messages
    }

    /// The first column of every DataRow that one simple query returns.
    func queryColumn(_ sql: String, timeout: Duration = defaultTimeout) throws -> [String?] {
        try simpleQuery(sql, timeout: timeout).compactMap { message in
            message.dataRowColumns.map { $0.first ?? nil }
        }
    }

    /// The single value of a one-row, one-column query.
    func queryValue(_ sql: String, timeout: Duration = defaultTimeout) throws -> String? {
        let column = try queryColumn(sql, timeout: timeout)
        guard column.count == 1 else { throw RawClientError("\(sql): expected one row, got \(column)") }
        return column[0]
    }

    /// Reads until the server closes the connection and returns what arrived before. Throws if
    /// the connection is still open after `timeout`. A reset counts as closed.
    @discardableResult
    func waitForClose(timeout: Duration = defaultTimeout) throws -> [BackendMessage] {
        let deadline = ContinuousClock.now + timeout
        var messages: [BackendMessage] = []
        while true {
            do {
                try fillOrSignal(atLeast: inboxCount + 1, deadline: deadline, what: "end of stream")
            } catch is ClosedSignal {
                break
            } catch {
                throw RawClientError("connection still open after \(timeout); received \(messages): \(error)")
            }
            while let message = try? takeBufferedMessage() {
                messages.append(message)
            }
        }
        while let message = try? takeBufferedMessage() {
            messages.append(message)
        }
        return messages
    }

    /// True if the server closes the connection (EOF or reset) within `timeout`. Whatever
    /// arrives before the close stays buffered for `read`.
    func isClosed(within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                try fillOrSignal(atLeast: inboxCount + 1, deadline: deadline, what: "end of stream")
            } catch is ClosedSignal {
                return true
            } catch {
                return false
            }
        }
    }

    // MARK: Buffering

    private struct ClosedSignal: Error {}

    private var inboxCount: Int { inbox.count - inboxStart }

    private func takeBufferedMessage() throws -> BackendMessage? {
        guard inboxCount >= 5 else { return nil }
        let b = inbox[(inboxStart + 1)...(inboxStart + 4)].map(UInt32.init)
        let length = Int(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3])
        guard length >= 4, inboxCount >= 1 + length else { return nil }
        return try read(timeout: .zero)
    }

    private func consume(_ count: Int) {
        inboxStart += count
        if inboxStart > 65_536 && inboxStart * 2 > inbox.count {
            inbox.removeFirst(inboxStart)
            inboxStart = 0
        }
    }

    /// Reads from the socket until `count` bytes are buffered or the deadline passes. Throws
    /// `ClosedSignal` at EOF (callers that expected data turn it into a descriptive error).
    private func fill(atLeast count: Int, deadline: ContinuousClock.Instant, what: String) throws {
        do {
            try fillOrSignal(atLeast: count, deadline: deadline, what: what)
        } catch is ClosedSignal {
            throw RawClientError(
                "connection closed by server while waiting for \(what) (buffered: \(inboxCount) bytes)")
        }
    }

    private func fillOrSignal(atLeast count: Int, deadline: ContinuousClock.Instant, what: String) throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while inboxCount < count {
            if sawEOF { throw ClosedSignal() }
            guard fd >= 0 else { throw RawClientError("read on a closed RawClient") }
            let remaining = deadline - ContinuousClock.now
            let millis = max(
                0, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(clamping: millis))
            if ready < 0 {
                if errno == EINTR { continue }
                throw RawClientError.system("poll")
            }
            if ready == 0 {
                throw RawClientError("timed out waiting for \(what) (buffered: \(inboxCount) bytes)", isTimeout: true)
            }
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if received < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET {
                    sawEOF = true
                    throw ClosedSignal()
                }
                throw RawClientError.system("recv")
            }
            if received == 0 {
                sawEOF = true
                throw ClosedSignal()
            }
            inbox.append(contentsOf: chunk[0..<received])
        }
    }
}

// MARK: - A Sluice for one raw test

/// One Sluice started for one raw-protocol test, in front of a role and a database of its own
/// (see `ProxiedDatabase`), so that parallel tests never share a pool.
struct RawTarget {
    let proxied: ProxiedDatabase

    var port: Int { proxied.sluice.port }
    var user: String { proxied.role.name }
    var password: String { proxied.role.password }
    /// The database name clients ask Sluice for (the same name exists on the primary).
    var database: String { proxied.database }

    /// A logged-in client, answering whichever authentication request Sluice makes.
    func connect(timeout: Duration = RawClient.defaultTimeout) throws -> RawClient {
        try RawClient.connect(port: port, user: user, password: password, database: database, timeout: timeout)
    }

    /// Completes a startup on an already opened connection (after an SSLRequest, say).
    func login(_ client: RawClient, parameters: [(String, String)] = []) throws {
        try client.startup(user: user, password: password, database: database, parameters: parameters)
    }

    /// Checks that Sluice is still running and that a fresh client can log in and run a query.
    func expectServing() throws {
        guard proxied.sluice.isRunning else { throw RawClientError("sluice is no longer running") }
        let client = try connect(timeout: .seconds(5))
        defer { client.terminate() }
        let value = try client.queryValue("SELECT 42", timeout: .seconds(5))
        guard value == "42" else { throw RawClientError("a fresh client got \(value ?? "NULL") for SELECT 42") }
    }
}

/// Starts a Sluice in front of a fresh role and database for `body`, and stops it afterwards. A
/// thrown error gets Sluice's log tail appended, which is usually where the explanation is.
///
/// `settings` go into the `[sluice]` section over the harness defaults (transaction pooling).
/// Clients authenticate with `authType` against a userlist holding the role's plain password;
/// `trust` by default, so that tests about something else do not depend on the auth code.
func withRawSluice(
    poolSize: Int = 5, authType: String = "trust", settings: [String: String] = [:],
    _ body: (RawTarget) throws -> Void
) throws {
    let proxied = try ProxiedDatabase(
        settings: ["auth_type": authType].merging(settings) { _, new in new }, poolSize: poolSize)
    defer { proxied.stop() }
    let sluice = proxied.sluice
    do {
        try body(RawTarget(proxied: proxied))
    } catch {
        throw RawClientError("\(error)\n---- sluice log tail ----\n\(sluice.logTail())")
    }
    if !sluice.isRunning {
        throw RawClientError("sluice exited during the test\n---- sluice log tail ----\n\(sluice.logTail())")
    }
}

/// The answer to an md5 challenge, computed with Sluice's own md5 code (which its unit tests
/// check against PostgreSQL's vectors).
private func md5Response(password: String, user: String, salt: [UInt8]) -> String {
    MD5Password.response(storedHash: MD5Password.storedHash(password: password, user: user), salt: salt)
}
