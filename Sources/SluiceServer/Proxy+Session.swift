import SluiceCore

/// Giving a server the session a client expects before its requests run there.
extension Proxy {
    /// Queues, ahead of the client's requests, the `SET`s that make `server` look like the client's own
    /// connection: its reported parameters (client_encoding, TimeZone, …, compared with what the server
    /// reported) and its other startup settings (`options`, `search_path`, …). Settings a previous client
    /// had applied and this one lacks are reset.
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
            // Protocol-level statements are tracked and renamed (ClientConnection.renameStatement); these are
            // the ones Sluice could not track: SQL PREPARE, and Parse in session mode or too large to keep.
            // TODO: pin a client that used SQL PREPARE to its server instead, so its statements survive.
            sql = "DEALLOCATE ALL;" + sql
            server.holdsClientStatements = false
            server.statementCache.removeAll()
        }
        // Non-reported settings cannot be observed, so they are replayed whenever the server was last used
        // by someone else: that client may have changed them.
        if server.lastClientID != client.id && !(client.startupSettings.isEmpty && server.appliedSettings.isEmpty) {
            var wanted: [String: (name: String, value: String)] = [:]
            for setting in client.startupSettings { wanted[setting.name.lowercased()] = setting }
            for (key, applied) in server.appliedSettings where wanted[key] == nil {
                sql += "RESET \(ParameterSet.quoteIdentifier(applied.name));"
            }
            for setting in client.startupSettings {
                sql +=
                    "SET \(ParameterSet.quoteIdentifier(setting.name)) TO \(ParameterSet.quoteLiteral(setting.value));"
            }
            server.appliedSettings = wanted
        }
        server.lastClientID = client.id
        if !sql.isEmpty { server.sendSluiceQuery(sql, purpose: .parameterRestore) }
    }
}
