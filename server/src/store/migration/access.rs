//! The `tokens` and `audit` tables.

use sea_orm_migration::{prelude::*, schema::*};

pub struct AddAccess;

impl MigrationName for AddAccess {
    fn name(&self) -> &str {
        "m20261203_000006_add_access"
    }
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Name,
    Role,
    Projects,
    SecretHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Audit {
    Table,
    Id,
    Ts,
    ActorId,
    Actor,
    Action,
    Target,
    Parameters,
    Result,
    Message,
    DurationMicros,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddAccess {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(string(Tokens::Id).primary_key())
                    .col(string(Tokens::Name))
                    .col(string(Tokens::Role))
                    .col(text(Tokens::Projects))
                    .col(binary(Tokens::SecretHash))
                    .col(big_integer(Tokens::CreatedAt))
                    .col(big_integer_null(Tokens::ExpiresAt))
                    .col(big_integer_null(Tokens::RevokedAt))
                    .col(big_integer_null(Tokens::LastUsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Audit::Table)
                    .col(big_pk_auto(Audit::Id))
                    .col(big_integer(Audit::Ts))
                    .col(string(Audit::ActorId))
                    .col(string(Audit::Actor))
                    .col(string(Audit::Action))
                    .col(string(Audit::Target))
                    .col(text(Audit::Parameters))
                    .col(string(Audit::Result))
                    .col(text(Audit::Message))
                    .col(big_integer(Audit::DurationMicros))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_by_time")
                    .table(Audit::Table)
                    .col(Audit::Ts)
                    .to_owned(),
            )
            .await
    }
}
