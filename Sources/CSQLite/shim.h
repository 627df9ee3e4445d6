#ifndef CHORUS_CSQLITE_SHIM_H
#define CHORUS_CSQLITE_SHIM_H
#include <sqlite3.h>

/// sqlite3_db_config is variadic (not callable from Swift): leave the WAL in place when
/// this connection, the last one, closes, instead of checkpointing it into the database.
static inline int chorus_sqlite3_skip_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}
#endif
