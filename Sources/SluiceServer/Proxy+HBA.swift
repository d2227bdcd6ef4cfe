import SluiceCore
import SluiceIO

/// `auth_type = hba`: the rule of `auth_hba_file` a client's connection matches decides how it logs in.
extension Proxy {
    /// The method the first matching rule names, as the `auth_type` it amounts to; nil when the rule is
    /// `peer` and the socket's peer is the user, which needs nothing more.
    func hbaDecision(for client: ClientConnection) -> Result<AuthType?, ErrorFields> {
        let tls = client.isTLS
        let connection = HBAConnection(
            isUnixSocket: client.peer.isUnix, isTLS: tls, address: client.peer.host, database: client.database,
            user: client.user)
        let encryption = client.peer.isUnix ? "" : (tls ? ", SSL encryption" : ", no encryption")
        let origin = client.peer.isUnix ? "local" : "host \"\(client.peer.host)\""
        let what = "\(origin), user \"\(client.user)\", database \"\(client.database)\"\(encryption)"
        guard let rule = config.hba?.match(connection) else {
            return .failure(.fatal(.invalidAuthorizationSpecification, "no pg_hba.conf entry for \(what)"))
        }
        if client.logs(.debug) { client.logger.debug("auth_hba_file rule matched", [("line", String(rule.line))]) }
        switch rule.method {
        case .trust: return .success(.trust)
        case .md5: return .success(.md5)
        case .password: return .success(.plain)
        case .scramSHA256: return .success(.scramSHA256)
        case .cert: return .success(.cert)
        case .reject:
            return .failure(.fatal(.invalidAuthorizationSpecification, "pg_hba.conf rejects connection for \(what)"))
        case .peer:
            // The kernel's word for who is at the other end of the socket, as PostgreSQL's peer method.
            guard let uid = Socket.peerUserID(client.fd), let name = Socket.userName(of: uid), name == client.user
            else {
                return .failure(
                    .fatal(.invalidAuthorizationSpecification, "Peer authentication failed for user \"\(client.user)\"")
                )
            }
            return .success(nil)
        }
    }
}
