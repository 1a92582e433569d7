//! What a runtime could not apply to a workload's run (a limit without its
//! cgroup controller, …), kept on the workload so `GetWorkload` reports it.

use sea_orm_migration::{prelude::*, schema::*};

use super::Workloads;

pub(super) struct AddWorkloadWarnings;

impl MigrationName for AddWorkloadWarnings {
    fn name(&self) -> &str {
        "m20261203_000004_add_workload_warnings"
    }
}

#[derive(DeriveIden)]
enum Warnings {
    /// A JSON array of strings; NULL for none.
    Warnings,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddWorkloadWarnings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(text_null(Warnings::Warnings))
                    .to_owned(),
            )
            .await
    }
}
