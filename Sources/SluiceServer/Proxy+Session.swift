import SluiceCore

/// Giving a server the session a client expects before its requests run there.
extension Proxy {
    /// Queues, ahead of the client's requests, the `SET`s that make `server` look like the client's own
    /// connection: its reported parameters (client_encoding, TimeZone, …, compared with what the server
    /// reported) and its other settings (startup `options`, `search_path`, what it `SET` since). Settings
    /// a previous client left and this one lacks are reset.
    func restoreSession(of client: ClientConnection, on server: ServerConnection) {
        var sql = ""
        let inStep = (client.parameters.version, server.parameters.version, trackedVersion)
        if server.parametersInStep.map({ $0 != inStep }) ?? true {
            if let statements = client.parameters.restoreStatements(
                comparedTo: server.parameters, tracked: trackedParameters)
            {
                sql = statements
            } else {
                // Equal now, and as long as neither set changes: the next link skips the comparison.
                server.parametersInStep = inStep
            }
        }
        if server.holdsClientStatements && server.lastClientID != client.id {
            // Named statements belong to the client that prepared them; nobody else may run them.
            // Protocol-level statements are tracked and renamed (ClientConnection.renameStatement), and a client
            // with SQL-prepared ones is pinned to its server (SessionPins.sqlPrepare); these are what is left:
            // Parse in session mode or too large to keep, and SQL PREPARE once its client let go of the server.
            sql = "DEALLOCATE ALL;" + sql
            server.holdsClientStatements = false
            server.statementCache.removeAll()
        }
        // Settings PostgreSQL does not report: the server's are known from what Sluice applied and from its
        // checks after transactions that may have changed them (ServerConnection.startSessionCheckIfDue).
        if server.lastClientID != client.id && !(client.sessionSettings.isEmpty && server.sessionSettings.isEmpty) {
            sql += client.sessionSettings.restoreStatements(comparedTo: server.sessionSettings)
            server.sessionSettings = client.sessionSettings
        }
        server.lastClientID = client.id
        if !sql.isEmpty { server.sendSluiceQuery(sql, purpose: .parameterRestore) }
    }
}
