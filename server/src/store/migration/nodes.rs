//! The nodes table: one row per `slipway serve` that ever registered.

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddNodes;

impl MigrationName for AddNodes {
    fn name(&self) -> &str {
        "m20261203_000005_nodes"
    }
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    Name,
    Address,
    Labels,
    Runtimes,
    Capacity,
    Version,
    State,
    Reason,
    Incarnation,
    HeartbeatIntervalMs,
    HeartbeatTtlMs,
    RegisteredAt,
    HeartbeatAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddNodes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .col(string(Nodes::Id).primary_key())
                    .col(string(Nodes::Name))
                    .col(text(Nodes::Address))
                    .col(text(Nodes::Labels))
                    .col(text(Nodes::Runtimes))
                    .col(big_integer(Nodes::Capacity))
                    .col(string(Nodes::Version))
                    .col(string(Nodes::State))
                    .col(text(Nodes::Reason))
                    .col(big_integer(Nodes::Incarnation))
                    .col(big_integer(Nodes::HeartbeatIntervalMs))
                    .col(big_integer(Nodes::HeartbeatTtlMs))
                    .col(big_integer(Nodes::RegisteredAt))
                    .col(big_integer(Nodes::HeartbeatAt))
                    .to_owned(),
            )
            .await
    }
}
