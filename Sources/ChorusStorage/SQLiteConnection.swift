import CSQLite

/// One SQLite connection with a cache of prepared statements. Not thread-safe: used by one
/// thread at a time (the writer thread, or a reader borrowed from the pool).
final class SQLiteConnection {
    let path: String
    private(set) var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Opens `path` with `flags` (SQLITE_OPEN_NOMUTEX is added: the store serialises use itself).
    init(path: String, flags: Int32, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        self.path = path
        var db: OpaquePointer? = nil
        let code = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let db else {
            let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(db)
            throw .cannotOpen(path: path, detail: detail)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit { close() }

    /// Closes without checkpointing the WAL into the database (it stays, and the next open
    /// reads its index back), when this is the last connection.
    func closeLeavingWAL() {
        if let handle { _ = chorus_sqlite3_skip_checkpoint_on_close(handle) }
        close()
    }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// The StoreError for a failed call that returned `code`.
    func error(_ code: Int32) -> StoreError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
        return StoreError(sqliteCode: code, message: message, path: path)
    }

    /// Runs SQL without results (one or more statements).
    func execute(_ sql: String) throws(StoreError) {
        guard let handle else { throw .closed(path: path) }
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(code) }
    }

    /// A cached prepared statement, reset and with bindings cleared. Call `reset()` when done.
    func statement(_ sql: String) throws(StoreError) -> Statement {
        guard let handle else { throw .closed(path: path) }
        if let cached = statements[sql] {
            sqlite3_reset(cached)
            sqlite3_clear_bindings(cached)
            return Statement(handle: cached, connection: self)
        }
        var prepared: OpaquePointer? = nil
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
        guard code == SQLITE_OK, let prepared else {
            sqlite3_finalize(prepared)
            throw error(code)
        }
        statements[sql] = prepared
        return Statement(handle: prepared, connection: self)
    }

    /// The first column of the first row of `sql`, as an integer (for PRAGMAs and counts).
    func integer(_ sql: String) throws(StoreError) -> Int64 {
        let statement = try statement(sql)
        defer { statement.reset() }
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    /// Every row's first column, as text (for PRAGMAs that report messages).
    func texts(_ sql: String) throws(StoreError) -> [String] {
        let statement = try statement(sql)
        defer { statement.reset() }
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0)) }
        return rows
    }

    /// Caps strings, blobs and rows (SQLITE_LIMIT_LENGTH); past it a write fails with SQLITE_TOOBIG.
    func limitLength(_ bytes: Int) {
        guard let handle else { return }
        sqlite3_limit(handle, SQLITE_LIMIT_LENGTH, Int32(clamping: bytes))
    }

    var inTransaction: Bool { handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }
}

/// A prepared statement borrowed from a connection's cache.
struct Statement {
    let handle: OpaquePointer
    let connection: SQLiteConnection

    /// SQLITE_TRANSIENT: SQLite copies the bound bytes.
    private static var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }

    func bind(_ index: Int32, _ text: String) throws(StoreError) {
        let encoding = UInt8(SQLITE_UTF8)
        guard !text.isEmpty else {
            // A nil pointer would bind NULL, not the empty string.
            return try check(sqlite3_bind_text64(handle, index, "", 0, Self.transient, encoding))
        }
        var text = text
        let code = text.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                sqlite3_bind_text64(
                    handle, index, chars.baseAddress, sqlite3_uint64(chars.count), Self.transient, encoding)
            }
        }
        try check(code)
    }

    func bind(_ index: Int32, _ bytes: [UInt8]) throws(StoreError) {
        let code = bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 {
                sqlite3_bind_blob64(handle, index, base, sqlite3_uint64(raw.count), Self.transient)
            } else {
                sqlite3_bind_zeroblob(handle, index, 0)
            }
        }
        try check(code)
    }

    func bind(_ index: Int32, _ value: Int) throws(StoreError) {
        try check(sqlite3_bind_int64(handle, index, sqlite3_int64(value)))
    }

    /// A failed bind (SQLITE_TOOBIG past the length limit, SQLITE_RANGE) fails the statement.
    private func check(_ code: Int32) throws(StoreError) {
        guard code != SQLITE_OK else { return }
        throw StoreError(sqliteCode: code, message: String(cString: sqlite3_errstr(code)), path: connection.path)
    }

    /// Advances; true when a row is available.
    func step() throws(StoreError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.error(code)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Runs to completion, ignoring rows.
    func run() throws(StoreError) {
        while try step() {}
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

extension StoreError {
    /// Maps a SQLite result code (extended or primary) to the operator-facing error.
    init(sqliteCode code: Int32, message: String, path: String) {
        switch code & 0xff {
        case SQLITE_FULL: self = .diskFull(path: path, detail: message)
        case SQLITE_IOERR: self = .io(path: path, detail: message)
        case SQLITE_CORRUPT: self = .corrupt(path: path, detail: message)
        case SQLITE_NOTADB: self = .notADatabase(path: path)
        case SQLITE_CANTOPEN: self = .cannotOpen(path: path, detail: message)
        case SQLITE_TOOBIG: self = .tooLarge(path: path, detail: message)
        default: self = .sqlite(path: path, code: code, detail: message)
        }
    }
}

extension StoreError {
    /// Errors after which SQLite may have rolled back the whole transaction: the commit group fails.
    var failsGroup: Bool {
        switch self {
        case .diskFull, .io, .corrupt, .notADatabase, .cannotOpen, .closed, .overloaded, .foreignDatabase,
            .schemaTooNew:
            return true
        case .tooLarge, .hintsFull:
            return false
        case .sqlite(_, let code, _):
            switch code & 0xff {
            case SQLITE_NOMEM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT, SQLITE_READONLY, SQLITE_ABORT,
                SQLITE_PROTOCOL:
                return true
            default:
                return false
            }
        }
    }
}

extension SQLiteConnection {
    /// One page of `table`'s rows whose `column` equals the value `bindFilter`
    /// binds as `?1`, ordered by `(bucket, key)` and strictly after `after`
    /// (keyset pagination: no OFFSET, so each page costs the same).
    func keysetPage<Row>(
        select columns: String, from table: String, where column: String, after: ObjectKey?, limit: Int,
        bindFilter: (Statement) throws(StoreError) -> Void, row: (Statement) -> Row
    ) throws(StoreError) -> [Row] {
        let statement: Statement
        if let after {
            statement = try self.statement(
                "SELECT \(columns) FROM \(table) WHERE \(column) = ?1 AND (bucket, key) > (?2, ?3) "
                    + "ORDER BY bucket, key LIMIT ?4")
            try statement.bind(2, after.bucket)
            try statement.bind(3, after.key)
        } else {
            statement = try self.statement(
                "SELECT \(columns) FROM \(table) WHERE \(column) = ?1 ORDER BY bucket, key LIMIT ?4")
        }
        defer { statement.reset() }
        try bindFilter(statement)
        try statement.bind(4, max(1, limit))
        var rows: [Row] = []
        while try statement.step() { rows.append(row(statement)) }
        return rows
    }
}
