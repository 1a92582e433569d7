//! Fleet operations (drains, rolling restarts): each a row, carried out by one
//! node under an owner epoch, with its items' progress as JSON.

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddFleetOperations;

impl MigrationName for AddFleetOperations {
    fn name(&self) -> &str {
        "m20261203_000009_fleet_operations"
    }
}

#[derive(DeriveIden)]
enum FleetOperations {
    Table,
    Id,
    Kind,
    /// running, paused, succeeded, failed, cancelled.
    State,
    /// The node carrying it out; NULL once it ended.
    NodeId,
    OwnerEpoch,
    /// A drain's node: the operation acting on that node.
    TargetNode,
    /// Everything else, as JSON.
    Body,
    CreatedAt,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddFleetOperations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FleetOperations::Table)
                    .col(string(FleetOperations::Id).primary_key())
                    .col(string(FleetOperations::Kind))
                    .col(string(FleetOperations::State))
                    .col(string_null(FleetOperations::NodeId))
                    .col(big_integer(FleetOperations::OwnerEpoch).default(0))
                    .col(string_null(FleetOperations::TargetNode))
                    .col(text(FleetOperations::Body))
                    .col(big_integer(FleetOperations::CreatedAt))
                    .col(big_integer(FleetOperations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("fleet_operations_state")
                    .table(FleetOperations::Table)
                    .col(FleetOperations::State)
                    .to_owned(),
            )
            .await
    }
}
