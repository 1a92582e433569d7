//! Giving space back (SQLite incremental vacuum) and telling a passing failure
//! of the database from a permanent one.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement};

use super::{Store, StoreError, StoreResult, database};

/// `PRAGMA auto_vacuum` says 2 for INCREMENTAL.
const INCREMENTAL: i64 = 2;

/// Makes sure a SQLite database has `auto_vacuum = INCREMENTAL`. A new database
/// gets it from the connection options before its first table; one made before
/// (or by another tool) needs a one-time `VACUUM` for the setting to apply.
pub(super) async fn enable_incremental_vacuum(db: &DatabaseConnection) -> StoreResult<()> {
    let current = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA auto_vacuum",
        ))
        .await
        .map_err(database("reading the auto_vacuum mode"))?
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    if current == INCREMENTAL {
        return Ok(());
    }
    tracing::info!(
        from = current,
        "switching the SQLite database to incremental auto-vacuum (a one-time VACUUM)"
    );
    db.execute_unprepared("PRAGMA auto_vacuum = INCREMENTAL")
        .await
        .map_err(database("setting the auto_vacuum mode"))?;
    db.execute_unprepared("VACUUM")
        .await
        .map_err(database("vacuuming the database"))?;
    Ok(())
}

impl Store {
    /// After a large deletion: on SQLite, returns the free pages to the file
    /// system (`PRAGMA incremental_vacuum`) and checkpoints the WAL, truncating
    /// it, so that the file shrinks now and no copy of deleted pages stays in the
    /// WAL. The checkpoint waits at most a moment for readers (a busy one is
    /// done by a later call). Best effort: a failure is logged, not returned
    /// (free space is reused by later writes anyway). PostgreSQL reclaims space
    /// by its own (auto)vacuum.
    pub async fn reclaim_space(&self) {
        if self.backend() != DbBackend::Sqlite {
            return;
        }
        let pool = self.db.get_sqlite_connection_pool();
        let mut connection = match pool.acquire().await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "giving space back to the file system failed");
                return;
            }
        };
        for pragma in [
            "PRAGMA incremental_vacuum",
            "PRAGMA busy_timeout = 200",
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "PRAGMA busy_timeout = 10000",
        ] {
            if let Err(error) = sea_orm::sqlx::query(pragma)
                .fetch_all(&mut *connection)
                .await
            {
                tracing::warn!(%error, pragma, "giving space back to the file system failed");
            }
        }
    }
}

/// Whether `error` may pass if the same operation is tried again: the
/// connection was lost or could not be had, the database was busy or locked, a
/// serialization failure or deadlock. Anything else (bad data, a constraint) is
/// permanent: trying the same again gives the same error.
pub fn is_transient(error: &StoreError) -> bool {
    match error {
        StoreError::Database { source, .. } => is_transient_db(source),
        _ => false,
    }
}

fn is_transient_db(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Tls(_) | Sqlx::Protocol(_) => true,
        Sqlx::Database(database) => {
            let code = database.code().unwrap_or_default();
            if database
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // SQLite: the primary result code is the low byte of the
                // extended one; 5 is SQLITE_BUSY, 6 SQLITE_LOCKED.
                code.parse::<i64>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
            } else {
                // PostgreSQL SQLSTATE: connection exceptions (08), serialization
                // failure and deadlock (40001, 40P01), too many connections
                // (53300), the server shutting down (57P0x).
                code.starts_with("08")
                    || code == "40001"
                    || code == "40P01"
                    || code == "53300"
                    || code.starts_with("57P0")
            }
        }
        _ => false,
    }
}
