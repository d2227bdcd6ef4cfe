import Glibc

/// Severity of a log line, ordered from chattiest to most severe.
public enum LogLevel: Int, Comparable, Sendable {
    case trace, debug, info, notice, warning, error

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    var name: String {
        switch self {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// Writes logfmt lines (`ts=… level=… msg="…" key=value …`) to standard error, one `write` per line so
/// lines from concurrent threads never interleave.
public struct Logger: Sendable {
    public var minimumLevel: LogLevel
    /// Keys carried by every line of this logger: connection id, database, user, peer.
    public var metadata: [(String, String)]
    /// Where lines go: standard error, and the `logfile` when one is configured.
    public var destinations: [Int32]

    public init(minimumLevel: LogLevel = .info, metadata: [(String, String)] = [], destinations: [Int32] = [2]) {
        self.minimumLevel = minimumLevel
        self.metadata = metadata
        self.destinations = destinations
    }

    public func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy.metadata.append((key, value))
        return copy
    }

    @inline(__always)
    public func enabled(_ level: LogLevel) -> Bool { level >= minimumLevel }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        guard level >= minimumLevel else { return }
        var line = "ts=\(Logger.timestamp()) level=\(level.name) msg=\(Logger.quote(message()))"
        for (key, value) in metadata { line += " \(key)=\(Logger.quote(value))" }
        for (key, value) in extra { line += " \(key)=\(Logger.quote(value))" }
        line += "\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            for fd in destinations { _ = Glibc.write(fd, raw.baseAddress, raw.count) }
        }
    }

    public func trace(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        log(.trace, message(), extra)
    }
    public func debug(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        log(.debug, message(), extra)
    }
    public func info(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        log(.info, message(), extra)
    }
    public func warning(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        log(.warning, message(), extra)
    }
    public func error(_ message: @autoclosure () -> String, _ extra: [(String, String)] = []) {
        log(.error, message(), extra)
    }

    /// Quotes a value when logfmt needs it: spaces, quotes, equals signs or an empty value.
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.utf8.contains { $0 <= 0x20 || $0 == 0x22 || $0 == 0x3D || $0 == 0x5C }
        guard needsQuotes else { return value }
        var out = "\""
        for ch in value.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let ms = pad(Int32(ts.tv_nsec / 1_000_000), 3)
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(ms)Z"
    }
}
