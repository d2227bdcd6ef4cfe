/// A configuration problem that stops Sluice from starting (or a reload from being applied).
///
/// `file` is the config or auth_file path, or `environment` for a bad environment variable;
/// `line` is 1-based when the problem sits on a line. Messages quote setting names and, except
/// for secrets, the offending value.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the problem was found in, or `environment`.
    public var file: String
    /// The 1-based line, when the problem has one.
    public var line: Int?
    /// What is wrong and, where it helps, what to do about it.
    public var message: String

    /// The pseudo file name used for problems in environment variables.
    public static let environmentFile = "environment"

    /// An error at `file:line`.
    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, or `file: message` without a line, as compilers print them.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// A configuration remark that does not stop Sluice: typically a PgBouncer setting that Sluice
/// accepts but does not implement. The executable logs each one at startup.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// The file the setting was read from.
    public var file: String
    /// The 1-based line of the setting, when there is one.
    public var line: Int?
    /// What Sluice does differently from PgBouncer.
    public var message: String

    /// A diagnostic at `file:line`.
    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, like ``ConfigError``.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
