/// When a server connection goes back to the pool (`pool_mode`).
public enum PoolMode: String, Sendable, CaseIterable {
    /// After the client disconnects. PgBouncer's default.
    case session
    /// After each transaction; the sidecar default.
    case transaction
    /// After each statement: a client whose statement leaves a transaction open is disconnected.
    case statement
}

/// How clients prove who they are (`auth_type`). Raw values are PgBouncer's spellings.
public enum AuthType: String, Sendable, CaseIterable {
    /// No password; the user must still be listed in auth_file.
    case trust
    /// md5 challenge, or SCRAM when the user's secret is a SCRAM verifier. PgBouncer's default.
    case md5
    /// SCRAM-SHA-256; the sidecar default.
    case scramSHA256 = "scram-sha-256"
    /// Cleartext password over the wire. Deprecated in PgBouncer.
    case plain
    /// No password and any user name; databases must force a user.
    case any
    /// Per-connection rules from auth_hba_file (``HBAFile``).
    case hba
    /// A TLS client certificate verified against client_tls_ca_file, whose common name is the user.
    case cert
    /// PAM. Not implemented: refused.
    case pam
    /// LDAP. Not implemented: refused.
    case ldap

    /// Whether Sluice can authenticate clients this way. The others are refused at load time:
    /// falling back to a weaker method than the operator chose would be a security hole.
    public var isImplemented: Bool {
        switch self {
        case .trust, .md5, .scramSHA256, .plain, .any, .hba, .cert: return true
        case .pam, .ldap: return false
        }
    }
}

/// How a database with several hosts picks one for a new server connection (`load_balance_hosts`).
public enum LoadBalanceHosts: String, Sendable, CaseIterable {
    /// Each new connection takes the next host. PgBouncer's default.
    case roundRobin = "round-robin"
    /// Stay on one host until a connection to it fails.
    case disable
}
