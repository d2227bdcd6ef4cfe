import SluiceCore
import SluiceIO

/// The TLS contexts built from the configuration: one for accepting clients, one for connecting to
/// servers, nil where the side has TLS off. Built again on every reload, so that renewed certificates
/// and keys reach new connections while established ones keep the context they began with.
struct TLSContexts {
    var accepting: TLSContext?
    var connecting: TLSContext?

    init() {}

    /// Fails with the OpenSSL reason and the key it concerns when a file does not load.
    init(_ config: SluiceConfig) throws(TLSSetupError) {
        let client = config.clientTLS
        if client.isEnabled {
            var options = Self.options(client)
            options.verifyPeer = client.sslmode.verifiesCertificate
            options.groups = client.groups
            options.automaticDH = config.clientTLSAutoDH
            do {
                accepting = try TLSContext(role: .accepting, options: options)
            } catch {
                throw TLSSetupError(side: "client", reason: error.description)
            }
        }
        let server = config.serverTLS
        if server.sslmode.requestsTLS {
            var options = Self.options(server)
            options.verifyPeer = server.sslmode.verifiesCertificate
            do {
                connecting = try TLSContext(role: .connecting, options: options)
            } catch {
                throw TLSSetupError(side: "server", reason: error.description)
            }
        }
    }

    private static func options(_ side: TLSSideConfig) -> TLSContextOptions {
        var options = TLSContextOptions()
        options.certificateFile = side.certificateFile
        options.keyFile = side.keyFile
        options.caFile = side.caFile
        options.minimumVersion = side.protocols.lowerBound.rawValue
        options.maximumVersion = side.protocols.upperBound.rawValue
        options.ciphers = side.ciphers
        options.tls13Ciphers = side.tls13Ciphers
        return options
    }
}

/// A TLS setting that names files or values OpenSSL would not take.
public struct TLSSetupError: Error, CustomStringConvertible {
    var side: String
    var reason: String

    public var description: String { "\(side)_tls_* settings: \(reason)" }
}
