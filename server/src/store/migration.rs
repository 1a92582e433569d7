//! The schema, as one migration set that runs on SQLite and PostgreSQL.

mod access;
mod actor;
mod fleet;
mod health;
mod integrity;
mod nodes;
mod ownership;
mod revisions;
mod scheduling;
mod warnings;

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(AddRestartState),
            Box::new(integrity::AddIntegrity),
            Box::new(warnings::AddWorkloadWarnings),
            Box::new(nodes::AddNodes),
            Box::new(access::AddAccess),
            Box::new(ownership::AddOwnership),
            Box::new(scheduling::AddNodeScheduling),
            Box::new(fleet::AddFleetOperations),
            Box::new(actor::AddEventActor),
            Box::new(revisions::AddRevisions),
            Box::new(health::AddHealthChecks),
        ]
    }
}

struct CreateTables;

impl MigrationName for CreateTables {
    fn name(&self) -> &str {
        "m20261123_000001_create_tables"
    }
}

#[derive(DeriveIden)]
enum Deployments {
    Table,
    Id,
    Name,
    Project,
    ServicePath,
    Spec,
    Labels,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Workloads {
    Table,
    Id,
    DeploymentId,
    Stage,
    Health,
    Generation,
    Port,
    RuntimeId,
    ProcessStartTime,
    Error,
    FailedStage,
    ExitCode,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    StoppedAt,
    Revision,
}

#[derive(DeriveIden)]
enum LogLines {
    Table,
    WorkloadId,
    Seq,
    Generation,
    Ts,
    Stage,
    Level,
    Stream,
    Message,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Revision,
    Ts,
    Kind,
    DeploymentId,
    WorkloadId,
    Workload,
    Message,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deployments::Table)
                    .col(string(Deployments::Id).primary_key())
                    .col(string(Deployments::Name).unique_key())
                    .col(string(Deployments::Project))
                    .col(text(Deployments::ServicePath))
                    .col(text(Deployments::Spec))
                    .col(text(Deployments::Labels))
                    .col(big_integer(Deployments::CreatedAt))
                    .col(big_integer(Deployments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Workloads::Table)
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
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("workloads_by_deployment")
                    .table(Workloads::Table)
                    .col(Workloads::DeploymentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LogLines::Table)
                    .col(string(LogLines::WorkloadId))
                    .col(big_integer(LogLines::Seq))
                    .col(big_integer(LogLines::Generation))
                    .col(big_integer(LogLines::Ts))
                    .col(string(LogLines::Stage))
                    .col(string(LogLines::Level))
                    .col(string(LogLines::Stream))
                    .col(text(LogLines::Message))
                    .primary_key(Index::create().col(LogLines::WorkloadId).col(LogLines::Seq))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_integer(Events::Revision).primary_key())
                    .col(big_integer(Events::Ts))
                    .col(string(Events::Kind))
                    .col(string(Events::DeploymentId))
                    .col(string_null(Events::WorkloadId))
                    .col(text_null(Events::Workload))
                    .col(text(Events::Message))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// The restart policy's state on a workload.
struct AddRestartState;

impl MigrationName for AddRestartState {
    fn name(&self) -> &str {
        "m20261123_000002_add_restart_state"
    }
}

#[derive(DeriveIden)]
enum RestartState {
    RestartCount,
    NextRestartAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddRestartState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(integer(RestartState::RestartCount).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(big_integer_null(RestartState::NextRestartAt))
                    .to_owned(),
            )
            .await
    }
}
