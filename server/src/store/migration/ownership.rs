//! Workloads owned by nodes: the owning node, the fencing epoch every write by
//! an owner checks, and why a workload waits for a node. Event revisions come
//! from a counter row, so that every node on a shared database commits them in
//! order.

use sea_orm_migration::{prelude::*, schema::*};

use super::Workloads;

pub(super) struct AddOwnership;

impl MigrationName for AddOwnership {
    fn name(&self) -> &str {
        "m20261203_000007_ownership"
    }
}

#[derive(DeriveIden)]
enum Ownership {
    /// The node that owns the workload's run; NULL while nobody does.
    NodeId,
    /// Raised each time ownership changes; an owner's write names the epoch it
    /// holds and is refused once it is stale.
    OwnerEpoch,
    /// Set while the workload waits to be placed on a node: why.
    PendingReason,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddOwnership {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(string_null(Ownership::NodeId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(big_integer(Ownership::OwnerEpoch).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(text_null(Ownership::PendingReason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("workloads_node_id")
                    .table(Workloads::Table)
                    .col(Ownership::NodeId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string(Counters::Name).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await?;
        // The next revision continues after the newest event.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO counters (name, value) \
                 SELECT 'revision', COALESCE(MAX(revision), 0) FROM events",
            )
            .await?;
        Ok(())
    }
}
