//! Persistence: deployments, workloads, log lines and events, through sea-orm, on
//! SQLite (WAL, the embedded default) or PostgreSQL with the same code.

mod access;
mod convert;
mod entities;
mod events;
mod fleet;
mod health;
mod logs;
mod migration;
mod nodes;
mod ownership;
mod revisions;
mod secrets;
mod space;
mod state;
mod values;

use std::{str::FromStr, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr,
    sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use sea_orm_migration::MigratorTrait;

use crate::domain::{DeploymentId, WorkloadId};

pub use access::{AuditFilter, AuditRow, TokenRow};
pub use events::EventFilter;
pub use space::is_transient;
pub use state::{StateWrite, WorkloadFilter, WorkloadPage};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: DbErr,
    },
    #[error("a deployment named {name:?} already exists")]
    NameTaken { name: String },
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A workload was to be stored for a deployment that does not exist (any
    /// more): the foreign key refused it.
    #[error("deployment {id} not found")]
    DeploymentNotFound { id: DeploymentId },
    /// A deployment that still has workloads cannot be deleted.
    #[error("deployment {id} still has workloads")]
    DeploymentHasWorkloads { id: DeploymentId },
    /// A write by a workload's owner named an owner epoch that is no longer
    /// the workload's: another node owns it now (or nobody does).
    #[error("workload {workload_id} is no longer owned at epoch {epoch}")]
    Fenced { workload_id: WorkloadId, epoch: u64 },
    /// A deployment was to be changed from a revision that is no longer its
    /// current one.
    #[error("deployment {id} is at revision {current}")]
    RevisionConflict { id: DeploymentId, current: u64 },
}

pub type StoreResult<T> = Result<T, StoreError>;

fn database(context: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// Brings the schema up to date. On PostgreSQL several nodes may start at once:
/// the migration runs in one transaction under an advisory lock, so one node
/// migrates and the others find the schema done.
async fn migrate(db: &DatabaseConnection) -> StoreResult<()> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if db.get_database_backend() != DbBackend::Postgres {
        return migration::Migrator::up(db, None)
            .await
            .map_err(database("migrating the schema"));
    }
    let txn = db
        .begin()
        .await
        .map_err(database("starting the schema migration"))?;
    // Any constant shared by every Slipway node: "slipway" in ASCII.
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(x'736c6970776179'::bigint)")
        .await
        .map_err(database("waiting for another node's schema migration"))?;
    migration::Migrator::up(&txn, None)
        .await
        .map_err(database("migrating the schema"))?;
    txn.commit()
        .await
        .map_err(database("committing the schema migration"))
}

/// The database behind Slipway. Cheap to clone.
///
/// It holds two connection pools: one for writes (and everything else), and one
/// for log readers ([`Store::for_reading`]), so that readers, however many and
/// however slow, never hold or queue for the connections writers need.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    reads: DatabaseConnection,
    /// Tokens as the access layer last read them (see [`Store::token_for_call`]).
    token_cache: access::TokenCache,
}

/// Connections of the pool that log readers use.
const READ_CONNECTIONS: u32 = 8;

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc`, `sqlite::memory:` or
    /// `postgres://…`) and brings the schema up to date.
    ///
    /// A SQLite file is opened in WAL mode with `secure_delete` on (deleted
    /// content is overwritten) and `auto_vacuum = INCREMENTAL` (a database made
    /// without it is vacuumed once, here, to switch it on).
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let is_sqlite = url.starts_with("sqlite:");
        let in_memory = is_sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        // Fail early on a malformed SQLite URL rather than deep inside the pool.
        if is_sqlite {
            SqliteConnectOptions::from_str(url).map_err(|error| StoreError::Database {
                context: "parsing the database url",
                source: DbErr::Custom(error.to_string()),
            })?;
        }
        let pool = |max_connections: u32| {
            let mut options = ConnectOptions::new(url.to_owned());
            options.sqlx_logging(false);
            options.max_connections(max_connections);
            if is_sqlite {
                options.map_sqlx_sqlite_opts(|sqlite: SqliteConnectOptions| {
                    sqlite
                        .auto_vacuum(SqliteAutoVacuum::Incremental)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                        .pragma("secure_delete", "ON")
                });
            }
            options
        };
        // Every connection to an in-memory database gets its own database: one
        // connection, shared by writers and readers.
        let write_connections = match (is_sqlite, in_memory) {
            (true, true) => 1,
            (true, false) => 8,
            (false, _) => 16,
        };
        let db = Database::connect(pool(write_connections))
            .await
            .map_err(database("connecting to the database"))?;
        if is_sqlite && !in_memory {
            space::enable_incremental_vacuum(&db).await?;
        }
        migrate(&db).await?;
        let reads = if in_memory {
            db.clone()
        } else {
            Database::connect(pool(READ_CONNECTIONS))
                .await
                .map_err(database("connecting to the database for reading"))?
        };
        Ok(Store {
            db,
            reads,
            token_cache: access::TokenCache::default(),
        })
    }

    /// The same database, queried through the readers' pool: for log readers, so
    /// that a reader waits (if at all) for other readers, never for a writer's
    /// connection, and a writer never waits for a reader's.
    pub fn for_reading(&self) -> Store {
        Store {
            db: self.reads.clone(),
            reads: self.reads.clone(),
            token_cache: self.token_cache.clone(),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Whether other nodes may share this database (PostgreSQL; an SQLite file
    /// belongs to one server).
    pub fn is_shared(&self) -> bool {
        self.backend() == DbBackend::Postgres
    }

    /// Closes the connections (after pending writes).
    pub async fn close(self) -> StoreResult<()> {
        self.reads
            .close()
            .await
            .map_err(database("closing the database"))?;
        self.db
            .close()
            .await
            .map_err(database("closing the database"))
    }
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn is_foreign_key_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}
