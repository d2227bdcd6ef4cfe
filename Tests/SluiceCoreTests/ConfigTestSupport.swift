import Foundation

@testable import SluiceCore

/// An in-memory file system for config tests.
struct FakeFiles {
    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String { "no such file" }
    }

    var files: [String: String]

    init(_ files: [String: String] = [:]) {
        self.files = files
    }

    var reader: (String) throws -> String {
        let files = self.files
        return { path in
            guard let text = files[path] else { throw Missing(path: path) }
            return text
        }
    }
}

/// Parses `text` as `/etc/sluice/sluice.ini` with `files` available and `environment` set.
func parseConfig(
    _ text: String, files: [String: String] = [:], environment: [String: String] = [:]
) throws(ConfigError) -> SluiceConfig {
    try SluiceConfig.parse(
        text: text, file: "/etc/sluice/sluice.ini", environment: environment, readFile: FakeFiles(files).reader)
}

/// The ConfigError `body` throws, or nil when it succeeds.
func configError(_ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        return nil
    } catch let error as ConfigError {
        return error
    } catch {
        return ConfigError(file: "<test>", line: nil, message: "not a ConfigError: \(error)")
    }
}

/// Real files for the few tests that exercise disk loading.
enum FileSystemFixture {
    static func write(_ files: [String: String]) throws {
        for (path, text) in files {
            let directory = (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    static func remove(_ directory: String) {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
