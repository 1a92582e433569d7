//! Who caused each event: the caller's name, kept with the event.

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddEventActor;

impl MigrationName for AddEventActor {
    fn name(&self) -> &str {
        "m20261203_000010_event_actor"
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    /// NULL for Slipway's own doing.
    Actor,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddEventActor {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(text_null(Events::Actor))
                    .to_owned(),
            )
            .await
    }
}
