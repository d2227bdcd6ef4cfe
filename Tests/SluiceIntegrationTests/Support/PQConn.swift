import CLibPQ
import Foundation
import Glibc

/// An error from libpq: a failed connection attempt or a failed statement.
struct PQError: Error, CustomStringConvertible {
    /// Five-character SQLSTATE, when the server (or Sluice) sent one.
    var sqlState: String?
    /// The primary message (for a connection failure, libpq's whole message).
    var message: String
    /// Whether the error happened while connecting rather than while running a statement.
    var duringConnect: Bool

    var description: String {
        "\(duringConnect ? "connect" : "query") failed [\(sqlState ?? "no SQLSTATE")]: \(message)"
    }
}

/// A small, blocking libpq connection for tests. Confined to the thread (task) that made it.
///
/// The connection closes on `close()` or when the object goes away.
final class PQConn {
    private var handle: OpaquePointer?
    /// How long one statement may take before the connection is closed and the call throws, so a
    /// proxy that never answers fails the test instead of hanging the whole run.
    var queryTimeout: Duration = .seconds(30)

    /// Opens a connection, waiting at most `timeout`.
    ///
    /// libpq keeps the SQLSTATE of a failed login to itself, so the connection is started
    /// non-blocking with verbose error messages, which put the code in the text: `FATAL:  28P01: ...`.
    init(
        host: String = "127.0.0.1",
        port: Int,
        user: String,
        password: String? = nil,
        dbname: String,
        extra: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) throws {
        var parameters: [(String, String)] = [
            ("host", host), ("port", String(port)), ("user", user), ("dbname", dbname),
            // No ~/.pgpass or service file from the developer's machine.
            ("passfile", "/nonexistent/sluice-tests-use-no-pgpass"),
        ]
        if let password { parameters.append(("password", password)) }
        parameters += extra.sorted { $0.key < $1.key }

        let keys = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keyPointers = keys.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        guard let connection = PQconnectStartParams(keyPointers, valuePointers, 0) else {
            throw PQError(sqlState: nil, message: "libpq could not allocate a connection", duringConnect: true)
        }
        handle = connection
        PQsetErrorVerbosity(connection, PQERRORS_VERBOSE)
        try finishConnecting(connection, timeout: timeout)
    }

    /// Same as `init`, reads better at call sites: `try PQConn.connect(port:user:...)`.
    static func connect(
        host: String = "127.0.0.1",
        port: Int,
        user: String,
        password: String? = nil,
        dbname: String,
        extra: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) throws -> PQConn {
        try PQConn(
            host: host, port: port, user: user, password: password, dbname: dbname, extra: extra, timeout: timeout)
    }

    deinit {
        close()
    }

    /// Closes the connection (sends Terminate). Safe to call twice.
    func close() {
        if let handle {
            PQfinish(handle)
        }
        handle = nil
    }

    /// The TLS protocol of the connection (`TLSv1.3`), nil when it is not encrypted.
    var tlsProtocol: String? {
        guard let handle, PQsslInUse(handle) == 1, let text = PQsslAttribute(handle, "protocol") else { return nil }
        return String(cString: text)
    }

    /// Whether the connection is still usable as far as libpq knows.
    var isOK: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// The process id the server (or Sluice) announced in BackendKeyData.
    var backendPID: Int32 {
        guard let handle else { return 0 }
        return PQbackendPID(handle)
    }

    /// A parameter the server reported with ParameterStatus, e.g. `application_name`.
    func parameterStatus(_ name: String) -> String? {
        guard let handle, let value = PQparameterStatus(handle, name) else { return nil }
        return String(cString: value)
    }

    /// Notifications (LISTEN/NOTIFY) that have arrived, by channel and payload; waits up to `timeout` for
    /// the first.
    func notifications(timeout: Duration = .seconds(5)) throws -> [(channel: String, payload: String)] {
        let connection = try openHandle()
        let deadline = ContinuousClock.now + timeout
        var received: [(channel: String, payload: String)] = []
        while true {
            _ = PQconsumeInput(connection)
            while let notify = PQnotifies(connection) {
                received.append((String(cString: notify.pointee.relname), String(cString: notify.pointee.extra)))
                PQfreemem(notify)
            }
            if !received.isEmpty || ContinuousClock.now >= deadline { return received }
            var poll = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
            _ = Glibc.poll(&poll, 1, 50)
        }
    }

    /// Transaction status after the last ReadyForQuery: idle, in a transaction, failed transaction.
    var transactionStatus: PGTransactionStatusType {
        guard let handle else { return PQTRANS_UNKNOWN }
        return PQtransactionStatus(handle)
    }

    /// The column names and type OIDs of the last result, and its command tag.
    private(set) var lastColumns: [(name: String, type: UInt32)] = []
    private(set) var lastCommandTag = ""

    /// Runs one or more statements with the simple query protocol; returns the last result's rows.
    @discardableResult
    func exec(_ sql: String) throws -> [[String?]] {
        let connection = try openHandle()
        return try execute { PQsendQuery(connection, sql) }
    }

    /// Runs one statement with the extended protocol (Parse/Bind/Execute/Sync), text parameters.
    @discardableResult
    func execParams(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let connection = try openHandle()
        return try withCStrings(parameters) { pointers in
            try execute { PQsendQueryParams(connection, sql, Int32(parameters.count), nil, pointers, nil, nil, 0) }
        }
    }

    /// Prepares a named statement with the extended protocol.
    func prepare(_ name: String, _ sql: String) throws {
        let connection = try openHandle()
        _ = try execute { PQsendPrepare(connection, name, sql, 0, nil) }
    }

    /// Runs a statement made by `prepare`.
    @discardableResult
    func execPrepared(_ name: String, _ parameters: [String?] = []) throws -> [[String?]] {
        let connection = try openHandle()
        return try withCStrings(parameters) { pointers in
            try execute { PQsendQueryPrepared(connection, name, Int32(parameters.count), pointers, nil, nil, 0) }
        }
    }

    /// The single value of a one-row, one-column query.
    func value(_ sql: String) throws -> String? {
        let result = try exec(sql)
        guard result.count == 1, result[0].count == 1 else {
            throw HarnessError("expected one value from \(sql), got \(result)")
        }
        return result[0][0]
    }

    // MARK: - Internals

    private func openHandle() throws -> OpaquePointer {
        guard let handle else {
            throw PQError(sqlState: nil, message: "connection already closed", duringConnect: false)
        }
        return handle
    }

    private func finishConnecting(_ connection: OpaquePointer, timeout: Duration) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // libpq's contract: before the first PQconnectPoll, behave as if it had asked for writing.
        var status = PGRES_POLLING_WRITING
        while true {
            switch status {
            case PGRES_POLLING_OK:
                return
            case PGRES_POLLING_FAILED:
                throw connectError(connection)
            default:
                break
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else {
                throw PQError(
                    sqlState: nil, message: "no connection within \(timeout.seconds) s", duringConnect: true)
            }
            var descriptor = pollfd(
                fd: PQsocket(connection),
                events: Int16(status == PGRES_POLLING_READING ? POLLIN : POLLOUT),
                revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, remaining.seconds * 1000)))
            if ready < 0 && errno != EINTR {
                throw PQError(sqlState: nil, message: "poll failed: errno \(errno)", duringConnect: true)
            }
            if ready > 0 {
                status = PQconnectPoll(connection)
            }
        }
    }

    private func connectError(_ connection: OpaquePointer) -> PQError {
        let message = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PQError(sqlState: Self.sqlState(inVerboseMessage: message), message: message, duringConnect: true)
    }

    /// Finds `XXXXX` in `FATAL:  XXXXX: text` (the verbose form of an ErrorResponse).
    static func sqlState(inVerboseMessage message: String) -> String? {
        for severity in ["FATAL:", "ERROR:", "PANIC:"] {
            guard let range = message.range(of: severity) else { continue }
            let rest = message[range.upperBound...].drop { $0 == " " }
            let code = rest.prefix(5)
            let isCode = code.count == 5 && code.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber) }
            if isCode && rest.dropFirst(5).first == ":" {
                return String(code)
            }
        }
        return nil
    }

    /// Sends with one of libpq's `PQsend*` calls, then collects the results like `PQexec` does
    /// (the first error wins, else the last result), waiting at most `queryTimeout`.
    private func execute(_ send: () -> Int32) throws -> [[String?]] {
        let connection = try openHandle()
        guard send() == 1 else { throw lastError(connection) }
        let clock = ContinuousClock()
        let deadline = clock.now + queryTimeout
        var kept: OpaquePointer?
        defer { if let kept { PQclear(kept) } }
        while true {
            while PQisBusy(connection) == 1 {
                let remaining = deadline - clock.now
                guard remaining > .zero else {
                    close()
                    throw PQError(
                        sqlState: nil, message: "no reply within \(queryTimeout.seconds) s; connection closed",
                        duringConnect: false)
                }
                var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, Int32(max(1, remaining.seconds * 1000)))
                if ready < 0 && errno != EINTR { throw lastError(connection) }
                if ready > 0 && PQconsumeInput(connection) == 0 { throw lastError(connection) }
            }
            guard let result = PQgetResult(connection) else { break }
            let status = PQresultStatus(result)
            let keptIsError = kept.map { PQresultStatus($0) == PGRES_FATAL_ERROR } ?? false
            if keptIsError {
                PQclear(result)
            } else {
                if let kept { PQclear(kept) }
                kept = result
            }
            // COPY would wait for data we never send; stop here and report it.
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH { break }
        }
        guard let result = kept else { throw lastError(connection) }
        kept = nil
        return try rows(of: result)
    }

    private func lastError(_ connection: OpaquePointer) -> PQError {
        let message = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
        return PQError(sqlState: Self.sqlState(inVerboseMessage: message), message: message, duringConnect: false)
    }

    private func rows(of result: OpaquePointer) throws -> [[String?]] {
        defer { PQclear(result) }
        lastColumns = (0..<PQnfields(result)).map { column in
            (String(cString: PQfname(result, column)), UInt32(PQftype(result, column)))
        }
        lastCommandTag = String(cString: PQcmdStatus(result))
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return []
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            var table: [[String?]] = []
            for row in 0..<PQntuples(result) {
                table.append(
                    (0..<PQnfields(result)).map { column in
                        PQgetisnull(result, row, column) == 1
                            ? nil : String(cString: PQgetvalue(result, row, column))
                    })
            }
            return table
        default:
            let field = { (code: UInt8) -> String? in
                PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
            }
            let message =
                field(UInt8(ascii: "M"))
                ?? String(cString: PQresultErrorMessage(result))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw PQError(sqlState: field(UInt8(ascii: "C")), message: message, duringConnect: false)
        }
    }

    private func withCStrings<T>(
        _ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> T
    ) rethrows -> T {
        let copies = strings.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        return try body(copies.map { $0.map { UnsafePointer($0) } })
    }
}
