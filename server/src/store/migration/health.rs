//! Health history: one row per liveness check, deleted with its workload and
//! trimmed by retention.

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddHealthChecks;

impl MigrationName for AddHealthChecks {
    fn name(&self) -> &str {
        "m20261203_000020_health_checks"
    }
}

#[derive(DeriveIden)]
enum HealthChecks {
    Table,
    WorkloadId,
    At,
    Generation,
    Passed,
    ResponseUs,
    Reason,
}

#[derive(DeriveIden)]
enum Workloads {
    Table,
    Id,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddHealthChecks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HealthChecks::Table)
                    .col(string(HealthChecks::WorkloadId))
                    .col(big_integer(HealthChecks::At))
                    .col(big_integer(HealthChecks::Generation))
                    .col(boolean(HealthChecks::Passed))
                    .col(big_integer(HealthChecks::ResponseUs))
                    .col(text(HealthChecks::Reason))
                    .primary_key(
                        Index::create()
                            .col(HealthChecks::WorkloadId)
                            .col(HealthChecks::At),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("health_checks_workload_id_fkey")
                            .from(HealthChecks::Table, HealthChecks::WorkloadId)
                            .to(Workloads::Table, Workloads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Retention deletes by age across workloads.
        manager
            .create_index(
                Index::create()
                    .name("health_checks_at")
                    .table(HealthChecks::Table)
                    .col(HealthChecks::At)
                    .to_owned(),
            )
            .await
    }
}
