import Foundation
import SluiceCore
import SluiceIO
import SluiceServer

// The executable only wires things together: arguments, config, signals, logging.

let version = SluiceVersion.full
let usage = """
    usage: sluice [config-file]          run in the foreground (no file: configure from the environment)
           sluice --check [config-file]  validate the configuration and exit
           sluice --version
    """

var arguments = Array(CommandLine.arguments.dropFirst())
var checkOnly = false
var configPath: String?
var verbose = false
while let argument = arguments.first {
    arguments.removeFirst()
    switch argument {
    case "--version", "-V":
        print("sluice \(version)")
        exit(0)
    case "--help", "-h":
        print(usage)
        exit(0)
    case "--check":
        checkOnly = true
    case "-v", "--verbose":
        verbose = true
    default:
        if argument.hasPrefix("-") || configPath != nil {
            FileHandle.standardError.write(Data("sluice: unexpected argument \(argument)\n\(usage)\n".utf8))
            exit(2)
        }
        configPath = argument
    }
}

let environment = ProcessInfo.processInfo.environment
let path = configPath
let loadConfig: @Sendable () throws -> SluiceConfig = {
    try SluiceConfig.load(path: path, environment: environment)
}

let logger: Logger = {
    switch environment["SLUICE_LOG_LEVEL"]?.lowercased() {
    case "trace": Logger(minimumLevel: .trace)
    case "debug": Logger(minimumLevel: .debug)
    case "warning": Logger(minimumLevel: .warning)
    case "error": Logger(minimumLevel: .error)
    default: Logger(minimumLevel: verbose ? .debug : .info)
    }
}()

let config: SluiceConfig
do {
    config = try loadConfig()
} catch {
    FileHandle.standardError.write(Data("sluice: configuration error: \(error)\n".utf8))
    exit(1)
}
for warning in config.warnings {
    logger.warning(
        "configuration",
        [("file", warning.file), ("line", warning.line.map { String($0) } ?? "-"), ("note", warning.message)])
}
if checkOnly {
    // Certificates, keys, ciphers and groups are only judged by OpenSSL: load them as a start would.
    do {
        try ProxyGroup.checkTLS(config)
    } catch {
        FileHandle.standardError.write(Data("sluice: configuration error: \(error)\n".utf8))
        exit(1)
    }
    print("sluice: configuration \(configPath ?? "(environment)") is valid")
    exit(0)
}

// logfile: lines go there as well as to stderr, appended, as PgBouncer does.
let runLogger: Logger = {
    var withFile = logger
    if let logfile = config.logfile {
        let fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            let reason = String(utf8String: strerror(errno)) ?? "error \(errno)"
            FileHandle.standardError.write(Data("sluice: cannot open logfile \(logfile): \(reason)\n".utf8))
            exit(1)
        }
        withFile.destinations.append(fd)
    }
    return withFile
}()

// pidfile: refuse to start beside a running instance; removed again on a clean exit.
if let pidfile = config.pidfile {
    if let text = try? String(contentsOfFile: pidfile, encoding: .utf8),
        let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
    {
        FileHandle.standardError.write(Data("sluice: pidfile \(pidfile) names running process \(pid)\n".utf8))
        exit(1)
    }
    do {
        try "\(getpid())\n".write(toFile: pidfile, atomically: true, encoding: .utf8)
    } catch {
        FileHandle.standardError.write(Data("sluice: cannot write pidfile \(pidfile)\n".utf8))
        exit(1)
    }
}
defer { if let pidfile = config.pidfile { unlink(pidfile) } }

// Signals are read from a signalfd inside the loop; they must be blocked before any thread starts.
let handledSignals = [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2]
SignalSource.block(handledSignals)

do {
    let proxy = try ProxyGroup(config: config, logger: runLogger)
    try proxy.bind()
    runLogger.info(
        "sluice started",
        [("version", version), ("config", configPath ?? "(environment)"), ("workers", String(proxy.loopCount))])
    try proxy.run(signals: handledSignals, reload: loadConfig)
    runLogger.info("sluice stopped")
} catch {
    runLogger.error("fatal", [("error", "\(error)")])
    exit(1)
}
