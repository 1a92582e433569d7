//! Persistence: deployments, workloads, log lines and events, through sea-orm, on
//! SQLite (WAL, the embedded default) or PostgreSQL with the same code.

mod convert;
mod entities;
mod events;
mod logs;
mod migration;
mod secrets;
mod state;
mod values;

use std::{str::FromStr, time::Duration};

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr,
    sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use sea_orm_migration::MigratorTrait;

use crate::domain::DeploymentId;

pub use events::EventFilter;
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
}

pub type StoreResult<T> = Result<T, StoreError>;

fn database(context: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// The database behind Slipway. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc`, `sqlite::memory:` or
    /// `postgres://…`) and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false);
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // Every connection to an in-memory database gets its own database.
                options.max_connections(1);
            } else {
                options.max_connections(8);
            }
            options.map_sqlx_sqlite_opts(|sqlite: SqliteConnectOptions| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        } else {
            options.max_connections(16);
        }
        // Fail early on a malformed SQLite URL rather than deep inside the pool.
        if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|error| StoreError::Database {
                context: "parsing the database url",
                source: DbErr::Custom(error.to_string()),
            })?;
        }
        let db = Database::connect(options)
            .await
            .map_err(database("connecting to the database"))?;
        migration::Migrator::up(&db, None)
            .await
            .map_err(database("migrating the schema"))?;
        Ok(Store { db })
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Closes the connections (after pending writes).
    pub async fn close(self) -> StoreResult<()> {
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
