//! Referential integrity and secrets kept apart from the spec.
//!
//! - `deployment_secrets` holds each deployment's secret environment, one row per
//!   variable, deleted with its deployment; secrets found in stored specs are
//!   moved there and removed from the spec's JSON.
//! - `workloads` and `log_lines` are rebuilt with foreign keys (SQLite cannot add
//!   one to an existing table): create the new table, copy the rows whose parent
//!   exists, drop the old one, rename. A deployment with workloads cannot be
//!   deleted; a workload's log lines go with it.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

use super::{Deployments, LogLines, RestartState, Workloads};

pub(super) struct AddIntegrity;

impl MigrationName for AddIntegrity {
    fn name(&self) -> &str {
        "m20261203_000003_foreign_keys_and_secrets"
    }
}

#[derive(DeriveIden)]
enum DeploymentSecrets {
    Table,
    DeploymentId,
    Name,
    Value,
}

/// The name a table is built under before it replaces the old one.
fn building(table: &str) -> Alias {
    Alias::new(format!("{table}_rebuilt"))
}

/// Every column of `workloads`, in the order of the copy.
const WORKLOAD_COLUMNS: &str = "id, deployment_id, stage, health, generation, port, runtime_id, \
     process_start_time, error, failed_stage, exit_code, created_at, updated_at, started_at, \
     stopped_at, revision, restart_count, next_restart_at";

/// Every column of `log_lines`, in the order of the copy.
const LOG_LINE_COLUMNS: &str = "workload_id, seq, generation, ts, stage, level, stream, message";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddIntegrity {
    /// All or nothing, on SQLite too: a table half rebuilt must never be left
    /// behind, and one transaction keeps every statement on one connection (a
    /// pooled SQLite connection could otherwise see the schema from before).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeploymentSecrets::Table)
                    .col(string(DeploymentSecrets::DeploymentId))
                    .col(string(DeploymentSecrets::Name))
                    .col(text(DeploymentSecrets::Value))
                    .primary_key(
                        Index::create()
                            .col(DeploymentSecrets::DeploymentId)
                            .col(DeploymentSecrets::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("deployment_secrets_deployment_id_fkey")
                            .from(DeploymentSecrets::Table, DeploymentSecrets::DeploymentId)
                            .to(Deployments::Table, Deployments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        move_secrets_out_of_specs(manager).await?;
        rebuild_workloads(manager).await?;
        rebuild_log_lines(manager).await
    }
}

/// Moves `secret_env` out of every stored spec into `deployment_secrets`.
async fn move_secrets_out_of_specs(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    let rows = connection
        .query_all(
            Query::select()
                .columns([Deployments::Id, Deployments::Spec])
                .from(Deployments::Table),
        )
        .await?;
    for row in rows {
        let id: String = row.try_get("", "id")?;
        let spec: String = row.try_get("", "spec")?;
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(&spec) else {
            continue;
        };
        let Some(secrets) = fields.remove("secret_env") else {
            continue;
        };
        for (name, value) in secrets.as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or_default().to_owned();
            let mut insert = Query::insert();
            insert
                .into_table(DeploymentSecrets::Table)
                .columns([
                    DeploymentSecrets::DeploymentId,
                    DeploymentSecrets::Name,
                    DeploymentSecrets::Value,
                ])
                .values([id.clone().into(), name.clone().into(), value.into()])
                .map_err(|error| DbErr::Migration(error.to_string()))?;
            manager.exec_stmt(insert).await?;
        }
        let stripped = serde_json::Value::Object(fields).to_string();
        manager
            .exec_stmt(
                Query::update()
                    .table(Deployments::Table)
                    .value(Deployments::Spec, stripped)
                    .and_where(Expr::col(Deployments::Id).eq(id))
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn rebuild_workloads(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let new = building("workloads");
    manager
        .create_table(
            Table::create()
                .table(new.clone())
                .col(string(Workloads::Id).primary_key())
                .col(string(Workloads::DeploymentId))
                .col(string(Workloads::Stage))
                .col(string(Workloads::Health))
                .col(big_integer(Workloads::Generation))
                .col(integer_null(Workloads::Port))
                .col(text_null(Workloads::RuntimeId))
                .col(big_integer_null(Workloads::ProcessStartTime))
                .col(text_null(Workloads::Error))
                .col(string_null(Workloads::FailedStage))
                .col(integer_null(Workloads::ExitCode))
                .col(big_integer(Workloads::CreatedAt))
                .col(big_integer(Workloads::UpdatedAt))
                .col(big_integer_null(Workloads::StartedAt))
                .col(big_integer_null(Workloads::StoppedAt))
                .col(big_integer(Workloads::Revision))
                .col(integer(RestartState::RestartCount).default(0))
                .col(big_integer_null(RestartState::NextRestartAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("workloads_deployment_id_fkey")
                        .from(new.clone(), Workloads::DeploymentId)
                        .to(Deployments::Table, Deployments::Id)
                        // NO ACTION rather than RESTRICT: SQLite reports a
                        // RESTRICT refusal with a code that is not the foreign key one.
                        .on_delete(ForeignKeyAction::NoAction),
                )
                .to_owned(),
        )
        .await?;
    copy_rows(
        manager,
        "workloads",
        WORKLOAD_COLUMNS,
        "deployment_id IN (SELECT id FROM deployments)",
    )
    .await?;
    replace(manager, "workloads").await?;
    manager
        .create_index(
            Index::create()
                .name("workloads_by_deployment")
                .table(Workloads::Table)
                .col(Workloads::DeploymentId)
                .to_owned(),
        )
        .await
}

async fn rebuild_log_lines(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let new = building("log_lines");
    manager
        .create_table(
            Table::create()
                .table(new.clone())
                .col(string(LogLines::WorkloadId))
                .col(big_integer(LogLines::Seq))
                .col(big_integer(LogLines::Generation))
                .col(big_integer(LogLines::Ts))
                .col(string(LogLines::Stage))
                .col(string(LogLines::Level))
                .col(string(LogLines::Stream))
                .col(text(LogLines::Message))
                .primary_key(Index::create().col(LogLines::WorkloadId).col(LogLines::Seq))
                .foreign_key(
                    ForeignKey::create()
                        .name("log_lines_workload_id_fkey")
                        .from(new.clone(), LogLines::WorkloadId)
                        .to(Workloads::Table, Workloads::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    copy_rows(
        manager,
        "log_lines",
        LOG_LINE_COLUMNS,
        "workload_id IN (SELECT id FROM workloads)",
    )
    .await?;
    replace(manager, "log_lines").await
}

/// Copies the rows of `table` that pass `condition` into its rebuilt table.
async fn copy_rows(
    manager: &SchemaManager<'_>,
    table: &str,
    columns: &str,
    condition: &str,
) -> Result<(), DbErr> {
    let sql = format!(
        "INSERT INTO {table}_rebuilt ({columns}) SELECT {columns} FROM {table} WHERE {condition}"
    );
    let backend: DbBackend = manager.get_database_backend();
    manager
        .get_connection()
        .execute_raw(Statement::from_string(backend, sql))
        .await
        .map(drop)
}

/// Drops `table` and gives its rebuilt table its name (and, on PostgreSQL, its
/// primary key the name it would have had).
async fn replace(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(table)).to_owned())
        .await?;
    manager
        .rename_table(
            Table::rename()
                .table(building(table), Alias::new(table))
                .to_owned(),
        )
        .await?;
    if manager.get_database_backend() == DbBackend::Postgres {
        let sql =
            format!("ALTER TABLE {table} RENAME CONSTRAINT {table}_rebuilt_pkey TO {table}_pkey");
        manager.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database};
    use sea_orm_migration::MigratorTrait;

    use crate::{
        domain::{DeploymentId, DeploymentSpec, WorkloadId},
        store::{StateWrite, Store, StoreError},
    };

    /// The schema as it was before this migration.
    struct Before;

    impl MigratorTrait for Before {
        fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
            vec![
                Box::new(super::super::CreateTables),
                Box::new(super::super::AddRestartState),
            ]
        }
    }

    fn workload_row(id: &str, deployment_id: &str) -> String {
        format!(
            "INSERT INTO workloads (id, deployment_id, stage, health, generation, created_at, \
             updated_at, revision) VALUES ('{id}', '{deployment_id}', 'stopped', 'unknown', 1, 1, 1, 1)"
        )
    }

    fn log_row(workload_id: &str, seq: u32) -> String {
        format!(
            "INSERT INTO log_lines (workload_id, seq, generation, ts, stage, level, stream, message) \
             VALUES ('{workload_id}', {seq}, 1, 1, 'running', 'info', 'stdout', 'line {seq}')"
        )
    }

    /// The spec column of a deployment, as stored.
    async fn raw_spec(url: &str, id: &DeploymentId) -> String {
        let connection = Database::connect(url).await.expect("connect");
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(
                connection.get_database_backend(),
                format!("SELECT spec FROM deployments WHERE id = '{id}'"),
            ))
            .await
            .expect("query")
            .expect("a row");
        let spec: String = row.try_get("", "spec").expect("spec");
        connection.close().await.expect("close");
        spec
    }

    /// Fills an old schema with a deployment whose spec holds a secret, one of
    /// its workloads with two lines, an orphan workload and orphan lines; then
    /// migrates and checks what is kept and what is enforced.
    async fn migrates_existing_rows(url: &str) {
        let old = Database::connect(url).await.expect("connect");
        Before::up(&old, None).await.expect("old schema");
        let deployment = DeploymentId::generate();
        let mut spec = serde_json::to_value(DeploymentSpec::process(vec!["true".to_owned()]))
            .expect("spec json");
        spec["secret_env"] = serde_json::json!({ "API_TOKEN": "hunter2-old-secret" });
        let (kept, orphan, gone) = (
            WorkloadId::generate(),
            WorkloadId::generate(),
            WorkloadId::generate(),
        );
        let statements = [
            format!(
                "INSERT INTO deployments (id, name, project, service_path, spec, labels, \
                 created_at, updated_at) VALUES ('{deployment}', 'old', '', '', '{spec}', '{{}}', 1, 1)"
            ),
            workload_row(kept.as_str(), deployment.as_str()),
            workload_row(orphan.as_str(), DeploymentId::generate().as_str()),
            log_row(kept.as_str(), 1),
            log_row(kept.as_str(), 2),
            log_row(orphan.as_str(), 1),
            log_row(gone.as_str(), 1),
        ];
        for statement in statements {
            old.execute_unprepared(&statement).await.expect("old row");
        }
        old.close().await.expect("close");

        let store = Store::connect(url).await.expect("migrated");
        let migrated = store
            .get_deployment(&deployment)
            .await
            .expect("read")
            .expect("the deployment is kept");
        assert_eq!(
            migrated
                .spec
                .secret_env
                .get("API_TOKEN")
                .map(|secret| secret.expose()),
            Some("hunter2-old-secret")
        );
        let raw = raw_spec(url, &deployment).await;
        assert!(
            !raw.contains("hunter2"),
            "the secret stayed in the spec: {raw}"
        );
        assert!(raw.contains("\"command\""), "the spec is kept: {raw}");
        // Made before revisions: revision 1, its secrets unknown.
        assert_eq!(migrated.revision, 1);
        let revisions = store.list_revisions(&deployment).await.expect("revisions");
        assert_eq!(revisions.len(), 1);
        assert_eq!((revisions[0].revision, &revisions[0].secrets), (1, &None));
        assert!(store.get_workload(&kept).await.expect("read").is_some());
        assert!(store.get_workload(&orphan).await.expect("read").is_none());
        assert_eq!(store.last_log_seq(&kept).await.expect("read"), 2);
        assert_eq!(store.last_log_seq(&orphan).await.expect("read"), 0);
        assert_eq!(store.last_log_seq(&gone).await.expect("read"), 0);

        let mut event = crate::domain::Event {
            revision: 1,
            timestamp: crate::domain::now(),
            kind: crate::domain::EventKind::DeploymentDeleted,
            deployment_id: deployment.clone(),
            workload_id: None,
            workload: None,
            message: "deleted".to_owned(),
            actor: None,
        };
        let refused = store
            .commit(
                &mut StateWrite::DeleteDeployment(deployment.clone()),
                &mut event,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::DeploymentHasWorkloads { .. })),
            "{refused:?}"
        );
        store.close().await.expect("close");
    }

    #[tokio::test]
    async fn existing_sqlite_rows_migrate() {
        let dir = tempfile::TempDir::new().expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        migrates_existing_rows(&url).await;
    }

    /// Runs when `SLIPWAY_TEST_POSTGRES_URL` names a PostgreSQL server on which
    /// databases may be created (as the integration tests do).
    #[tokio::test]
    async fn existing_postgres_rows_migrate() {
        let Ok(admin_url) = std::env::var("SLIPWAY_TEST_POSTGRES_URL") else {
            eprintln!("skipped: SLIPWAY_TEST_POSTGRES_URL is not set");
            return;
        };
        let name = format!("slipway_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.expect("connect");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        admin.close().await.expect("close");
        let (base, _) = admin_url.rsplit_once('/').expect("a database url");
        migrates_existing_rows(&format!("{base}/{name}")).await;
    }
}
