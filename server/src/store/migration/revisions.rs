//! Revisions of deployments: the current revision on the deployment, the
//! revision each workload's run started from, and a row per revision (never
//! a secret's value: the names and digests only). A deployment made before
//! gets its revision 1 from its current spec (its secrets unknown).

use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct AddRevisions;

impl MigrationName for AddRevisions {
    fn name(&self) -> &str {
        "m20261203_000011_deployment_revisions"
    }
}

#[derive(DeriveIden)]
enum Deployments {
    Table,
    Id,
    Revision,
}

#[derive(DeriveIden)]
enum Workloads {
    Table,
    SpecRevision,
}

#[derive(DeriveIden)]
enum DeploymentRevisions {
    Table,
    DeploymentId,
    Revision,
    /// The spec's JSON, without secrets.
    Spec,
    /// JSON object: secret name → digest; NULL when unknown.
    Secrets,
    Labels,
    /// JSON array of the top-level fields that changed.
    Changed,
    Actor,
    CreatedAt,
    RolledBackFrom,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for AddRevisions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deployments::Table)
                    .add_column(big_integer(Deployments::Revision).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Workloads::Table)
                    .add_column(big_integer_null(Workloads::SpecRevision))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeploymentRevisions::Table)
                    .col(string(DeploymentRevisions::DeploymentId))
                    .col(big_integer(DeploymentRevisions::Revision))
                    .col(text(DeploymentRevisions::Spec))
                    .col(text_null(DeploymentRevisions::Secrets))
                    .col(text(DeploymentRevisions::Labels))
                    .col(text(DeploymentRevisions::Changed))
                    .col(text_null(DeploymentRevisions::Actor))
                    .col(big_integer(DeploymentRevisions::CreatedAt))
                    .col(big_integer_null(DeploymentRevisions::RolledBackFrom))
                    .primary_key(
                        Index::create()
                            .col(DeploymentRevisions::DeploymentId)
                            .col(DeploymentRevisions::Revision),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("deployment_revisions_deployment_id_fkey")
                            .from(
                                DeploymentRevisions::Table,
                                DeploymentRevisions::DeploymentId,
                            )
                            .to(Deployments::Table, Deployments::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO deployment_revisions \
                 (deployment_id, revision, spec, secrets, labels, changed, actor, created_at, rolled_back_from) \
                 SELECT id, 1, spec, NULL, labels, '[]', NULL, created_at, NULL FROM deployments",
            )
            .await?;
        Ok(())
    }
}
