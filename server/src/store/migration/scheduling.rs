//! Whether placement may give a node new workloads: an operator's pause,
//! kept across the node's restarts.

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddNodeScheduling;

impl MigrationName for AddNodeScheduling {
    fn name(&self) -> &str {
        "m20261203_000008_node_scheduling"
    }
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    /// "eligible" or "paused".
    Scheduling,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddNodeScheduling {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(string(Nodes::Scheduling).default("eligible"))
                    .to_owned(),
            )
            .await
    }
}
