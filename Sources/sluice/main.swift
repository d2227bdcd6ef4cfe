import Foundation
import SluiceCore
import SluiceIO
import SluiceServer

// The executable only wires things together: arguments, config, signals, logging.

let version = "1.25.0-sluice.0.1"
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
    print("sluice: configuration \(configPath ?? "(environment)") is valid")
    exit(0)
}

// Signals are read from a signalfd inside the loop; they must be blocked before any thread starts.
let handledSignals = [SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2]
SignalSource.block(handledSignals)

do {
    let proxy = try Proxy(config: config, logger: logger)
    try proxy.bind()
    logger.info("sluice started", [("version", version), ("config", configPath ?? "(environment)")])
    try proxy.run(signals: handledSignals) {
        do {
            return try loadConfig()
        } catch {
            logger.error("reload failed; keeping the running configuration", [("error", "\(error)")])
            return nil
        }
    }
    logger.info("sluice stopped")
} catch {
    logger.error("fatal", [("error", "\(error)")])
    exit(1)
}
