/// `client_tls_sslmode` / `server_tls_sslmode`, with libpq's names and PgBouncer's meanings.
public enum SSLMode: String, Sendable, CaseIterable {
    case disable
    case allow
    case prefer
    case require
    case verifyCA = "verify-ca"
    case verifyFull = "verify-full"

    /// Towards servers: whether Sluice sends an SSLRequest. PgBouncer never retries with TLS after a
    /// plain login fails, so `allow` connects without it, as `disable` does.
    public var requestsTLS: Bool { self >= .prefer }
    /// A peer without TLS is refused.
    public var requiresTLS: Bool { self >= .require }
    /// The peer's certificate must chain to the configured CA.
    public var verifiesCertificate: Bool { self >= .verifyCA }
}

extension SSLMode: Comparable {
    public static func < (lhs: SSLMode, rhs: SSLMode) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// TLS protocol versions as they are written on the wire (0x0303 is TLS 1.2).
public enum TLSVersion: Int32, Sendable, CaseIterable, Comparable {
    case tls10 = 0x0301
    case tls11 = 0x0302
    case tls12 = 0x0303
    case tls13 = 0x0304

    public static func < (lhs: TLSVersion, rhs: TLSVersion) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Reads PgBouncer's `*_tls_protocols`: a list of `tlsv1.0` … `tlsv1.3`, `all` (every version),
    /// `secure` (1.2 and 1.3) or `legacy` (every version). OpenSSL takes a lowest and a highest version,
    /// so a list with a gap (`tlsv1.0,tlsv1.3`) allows what lies between too.
    public static func range(parsing value: String) -> ClosedRange<TLSVersion>? {
        var chosen: [TLSVersion] = []
        let words = value.lowercased().split { $0 == "," || $0 == " " || $0 == ":" || $0 == "\t" }
        for word in words {
            switch word.hasPrefix("+") ? word.dropFirst() : word {
            case "all", "legacy": chosen += allCases
            case "secure": chosen += [.tls12, .tls13]
            case "tlsv1", "tlsv1.0": chosen.append(.tls10)
            case "tlsv1.1": chosen.append(.tls11)
            case "tlsv1.2": chosen.append(.tls12)
            case "tlsv1.3": chosen.append(.tls13)
            default: return nil
            }
        }
        guard let low = chosen.min(), let high = chosen.max() else { return nil }
        return low...high
    }
}

/// The TLS settings of one side: towards clients (`client_tls_*`) or towards servers (`server_tls_*`).
public struct TLSSideConfig: Sendable, Equatable {
    public var sslmode: SSLMode
    /// Paths, resolved against the config file's directory; empty when not set.
    public var certificateFile = ""
    public var keyFile = ""
    public var caFile = ""
    public var protocols: ClosedRange<TLSVersion> = .tls12 ... .tls13
    /// `*_tls_ciphers`: an OpenSSL cipher list for TLS 1.2 and below; empty for OpenSSL's default.
    public var ciphers = ""
    /// `*_tls13_ciphers`: OpenSSL's TLS 1.3 cipher suites; empty for OpenSSL's default.
    public var tls13Ciphers = ""
    /// `client_tls_ecdhcurve`: key-exchange groups; empty for OpenSSL's default.
    public var groups = ""

    public init(sslmode: SSLMode) {
        self.sslmode = sslmode
    }

    /// Whether this side has any TLS to set up.
    public var isEnabled: Bool { sslmode != .disable }

    /// PgBouncer's named cipher levels (`default`, `secure`, `fast`, `normal`, `compat`, `legacy`,
    /// `insecure`, `all`) all mean OpenSSL's own default list here, which is never weaker than
    /// `secure`: a level that would admit broken ciphers is not offered. Anything else is an OpenSSL
    /// cipher string and goes to OpenSSL as written.
    public static func cipherList(_ value: String) -> String {
        let levels = ["default", "secure", "fast", "normal", "compat", "legacy", "insecure", "all"]
        return levels.contains(value.lowercased()) ? "" : value
    }
}
