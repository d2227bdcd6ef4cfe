/// Sluice's release, and the PgBouncer release whose interfaces (admin console, config file) it matches.
public enum SluiceVersion {
    public static let sluice = "0.1"
    /// Exporters choose their queries by PgBouncer's version, so the console reports this one.
    public static let pgbouncer = "1.25.2"
    /// What `sluice --version` prints and the startup line logs.
    public static let full = "\(pgbouncer)-sluice.\(sluice)"
}
