import CSQLite

/// Copies the WAL of a stopped agent's database into the database file and empties it.
func checkpointIntoDatabaseFile(path: String) throws {
    var db: OpaquePointer? = nil
    defer { sqlite3_close_v2(db) }
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK,
        sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nil, nil, nil) == SQLITE_OK
    else {
        throw CheckpointError(
            message: "checkpoint of \(path): \(db.map { String(cString: sqlite3_errmsg($0)) } ?? "no handle")")
    }
}

private struct CheckpointError: Error {
    var message: String
}
