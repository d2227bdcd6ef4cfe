/// The reviewed lists of PostgreSQL built-ins the classifier relies on besides the primary's catalog. Every
/// entry was checked against PostgreSQL 15's pg_catalog (`provolatile`, `pg_operator`, `pg_type`); names
/// are as the parser spells them, which for unquoted identifiers is lower case.
enum BuiltinRoutingLists {
    /// Volatile built-ins that a hot standby runs without harm: they read clocks or random state local to
    /// the backend and change nothing that is replicated or shared. Each is volatile in pg_proc, so the
    /// catalog lists it; this list takes it back out, for `pg_catalog`'s copy only.
    ///
    /// - random: a backend-local PRNG; the value is arbitrary on either server.
    /// - clock_timestamp, timeofday: read the wall clock, which a replica has too.
    /// - gen_random_uuid: random bytes from the OS, no catalog or WAL access.
    /// - pg_sleep, pg_sleep_for, pg_sleep_until: wait; callers use them to test timeouts, on any server.
    /// - pg_is_in_recovery, pg_last_wal_receive_lsn, pg_last_wal_replay_lsn, pg_last_xact_replay_timestamp,
    ///   pg_is_wal_replay_paused: report the server's recovery state; volatile only because the answer changes
    ///   during a promotion. Applications and health checks ask them to learn which server they reached.
    ///
    /// Deliberately absent: `random_normal` (new in PostgreSQL 16, not in 15's catalog; a 16 primary's catalog
    /// lists it as volatile, so it goes to the primary until reviewed), and `setseed`, which changes the
    /// session's random state: a later `random()` on the primary would not see the seed set on a replica.
    static let safeVolatileFunctions: Set<String> = [
        "random", "clock_timestamp", "timeofday", "gen_random_uuid", "pg_sleep", "pg_sleep_for",
        "pg_sleep_until", "pg_is_in_recovery", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
        "pg_last_xact_replay_timestamp", "pg_is_wal_replay_paused",
    ]

    /// Built-ins that must never count as reads, whatever a catalog or an operator says: sequences and
    /// settings change state, advisory locks taken on a replica do not exclude anyone on the primary, and
    /// `txid_current` / `pg_current_xact_id` assign a transaction id, which a standby refuses even though
    /// PostgreSQL 15 marks both stable, not volatile.
    static func isAlwaysUnsafe(_ name: String) -> Bool {
        alwaysUnsafeFunctions.contains(name) || name.hasPrefix("pg_advisory_") || name.hasPrefix("pg_try_advisory_")
    }

    private static let alwaysUnsafeFunctions: Set<String> = [
        "nextval", "currval", "setval", "lastval", "set_config", "txid_current", "pg_current_xact_id",
        "pg_notify",
    ]

    /// Non-volatile built-ins that count as reads while no catalog is loaded, when any function the lists do
    /// not name counts as a write. Not all 2,400 of PostgreSQL 15's immutable and stable functions: the ones
    /// applications commonly call, so that the minutes before the first catalog load do not send most reads
    /// to the primary. Every name here is `i` or `s` for every overload in pg_proc.
    static let nonVolatileFunctions: Set<String> = [
        // Aggregates and window functions.
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg", "jsonb_agg",
        "json_object_agg", "jsonb_object_agg", "bool_and", "bool_or", "every", "bit_and", "bit_or", "stddev",
        "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "percentile_cont", "percentile_disc",
        "mode", "corr", "covar_pop", "covar_samp", "row_number", "rank", "dense_rank", "percent_rank",
        "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
        // Mathematics.
        "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power", "pow", "exp",
        "ln", "log", "log10", "mod", "div", "width_bucket", "pi", "degrees", "radians",
        "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "gcd", "lcm", "scale",
        // Strings.
        "length", "char_length", "character_length", "octet_length", "bit_length", "lower", "upper", "initcap",
        "substr", "substring", "position", "strpos", "replace", "translate", "btrim", "ltrim", "rtrim",
        "lpad", "rpad", "left", "right", "repeat", "reverse", "split_part", "concat", "concat_ws", "format",
        "md5", "sha256", "sha512", "encode", "decode", "ascii", "chr", "quote_ident", "quote_literal",
        "quote_nullable", "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
        "regexp_split_to_table", "starts_with", "to_hex", "string_to_array", "array_to_string", "overlay",
        "to_char", "to_number", "to_date", "to_timestamp",
        // Dates and times (now() and friends are stable: one value per transaction).
        "now", "statement_timestamp", "transaction_timestamp", "date_trunc", "date_part",
        "date_bin", "extract", "age", "make_date", "make_time", "make_timestamp", "make_timestamptz",
        "make_interval", "justify_days", "justify_hours", "justify_interval", "isfinite", "timezone",
        // Arrays, ranges, JSON.
        "array_length", "array_lower", "array_upper", "array_position", "array_positions", "array_remove",
        "array_replace", "array_append", "array_prepend", "array_cat", "array_ndims", "array_dims",
        "cardinality", "unnest", "generate_series", "generate_subscripts", "lower_inf", "upper_inf", "isempty",
        "range_merge", "json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array",
        "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_array_length", "jsonb_array_length",
        "json_each", "jsonb_each", "json_each_text", "jsonb_each_text", "json_extract_path",
        "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text", "json_object_keys",
        "jsonb_object_keys", "json_array_elements", "jsonb_array_elements", "json_array_elements_text",
        "jsonb_array_elements_text", "json_typeof", "jsonb_typeof", "jsonb_set", "jsonb_insert",
        "jsonb_strip_nulls", "jsonb_pretty", "jsonb_path_query", "jsonb_path_exists", "jsonb_path_match",
        "json_populate_record", "jsonb_populate_record", "json_to_record", "jsonb_to_record",
        // Session and system information that a standby answers the same way.
        "current_database", "current_schema", "current_schemas", "current_user", "session_user", "version",
        "current_setting", "pg_backend_pid", "has_table_privilege", "has_schema_privilege",
        "has_database_privilege", "has_column_privilege", "pg_has_role", "pg_table_is_visible",
        "pg_get_viewdef", "pg_get_indexdef", "pg_get_constraintdef", "pg_get_expr", "format_type",
        "obj_description", "col_description", "pg_size_pretty", "pg_typeof",
        "pg_encoding_to_char", "inet_server_addr", "inet_server_port", "inet_client_addr", "to_regclass",
        "to_regtype", "to_regproc", "host", "masklen", "family",
    ]

    /// Every operator name in PostgreSQL 15's pg_operator; none of them is backed by a volatile function.
    /// With no catalog loaded, any other operator name could only be a user's, and counts as a write.
    static let operatorNames: Set<String> = [
        "!!", "!~", "!~*", "!~~", "!~~*", "#", "##", "#-", "#>", "#>>", "%", "&", "&&", "&<", "&<|", "&>", "*",
        "*<", "*<=", "*<>", "*=", "*>", "*>=", "+", "-", "->", "->>", "-|-", "/", "<", "<->", "<<", "<<=", "<<|",
        "<=", "<>", "<@", "<^", "=", ">", ">=", ">>", ">>=", ">^", "?", "?#", "?&", "?-", "?-|", "?|", "?||", "@",
        "@-@", "@>", "@?", "@@", "@@@", "^", "^@", "|", "|&>", "|/", "|>>", "||", "||/", "~", "~*", "~<=~",
        "~<~", "~=", "~>=~", "~>~", "~~", "~~*",
    ]

    /// PostgreSQL 15's built-in scalar types (pg_catalog, not arrays). No cast to them runs a volatile
    /// function; with no catalog loaded, a cast to any other type counts as a write. The parser rewrites SQL
    /// spellings such as `int` or `timestamp with time zone` to these names.
    static let typeNames: Set<String> = [
        "aclitem", "bit", "bool", "box", "bpchar", "bytea", "char", "cid", "cidr", "circle", "date",
        "datemultirange", "daterange", "float4", "float8", "inet", "int2", "int4", "int4multirange", "int4range",
        "int8", "int8multirange", "int8range", "interval", "json", "jsonb", "jsonpath", "line", "lseg", "macaddr",
        "macaddr8", "money", "name", "numeric", "nummultirange", "numrange", "oid", "path", "pg_lsn", "point",
        "polygon", "refcursor", "regclass", "regcollation", "regconfig", "regdictionary", "regnamespace",
        "regoper", "regoperator", "regproc", "regprocedure", "regrole", "regtype", "text", "tid", "time",
        "timestamp", "timestamptz", "timetz", "tsmultirange", "tsquery", "tsrange", "tstzmultirange",
        "tstzrange", "tsvector", "txid_snapshot", "uuid", "varbit", "varchar", "xid", "xid8", "xml",
        "pg_snapshot",
    ]
}
