//! Revisions of deployments: a row per revision (`deployment_revisions`),
//! written in the transaction that changes the deployment, and the
//! conditional update that makes two changes from the same revision unable
//! to both win, on SQLite and PostgreSQL alike.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Statement,
};

use super::{
    Store, StoreError, StoreResult, convert, database,
    entities::{deployment, deployment_revision, deployment_secret},
    secrets,
};
use crate::domain::{Deployment, DeploymentId, DeploymentRevision};

/// Records `revision`.
pub(super) async fn insert(
    txn: &DatabaseTransaction,
    revision: &DeploymentRevision,
) -> StoreResult<()> {
    deployment_revision::Entity::insert(convert::revision_row(revision)?.into_active_model())
        .exec_without_returning(txn)
        .await
        .map_err(database("recording a deployment revision"))?;
    Ok(())
}

/// Writes `next` (spec, labels, secrets, revision) over the deployment if its
/// stored revision is still `expected`, and records `revision`; else
/// [`StoreError::RevisionConflict`] with the stored revision, and nothing is
/// written. The check and the write are one `UPDATE … WHERE revision = ?`:
/// of two transactions from the same revision, the second finds no row.
pub(super) async fn update(
    txn: &DatabaseTransaction,
    next: &Deployment,
    expected: u64,
    revision: &DeploymentRevision,
) -> StoreResult<()> {
    let row = convert::deployment_row(next)?;
    let statement = Statement::from_sql_and_values(
        txn.get_database_backend(),
        match txn.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE deployments SET spec = $1, labels = $2, updated_at = $3, revision = $4 \
                 WHERE id = $5 AND revision = $6"
            }
            _ => {
                "UPDATE deployments SET spec = ?, labels = ?, updated_at = ?, revision = ? \
                 WHERE id = ? AND revision = ?"
            }
        },
        [
            row.spec.into(),
            row.labels.into(),
            row.updated_at.into(),
            row.revision.into(),
            next.id.to_string().into(),
            (expected as i64).into(),
        ],
    );
    let result = txn
        .execute_raw(statement)
        .await
        .map_err(database("updating a deployment"))?;
    if result.rows_affected() == 0 {
        let current = deployment::Entity::find_by_id(next.id.clone())
            .one(txn)
            .await
            .map_err(database("reading a deployment"))?;
        return Err(match current {
            Some(current) => StoreError::RevisionConflict {
                id: next.id.clone(),
                current: current.revision.max(0) as u64,
            },
            None => StoreError::DeploymentNotFound {
                id: next.id.clone(),
            },
        });
    }
    deployment_secret::Entity::delete_many()
        .filter(deployment_secret::Column::DeploymentId.eq(next.id.clone()))
        .exec(txn)
        .await
        .map_err(database("replacing a deployment's secrets"))?;
    secrets::insert(txn, next).await?;
    insert(txn, revision).await
}

impl Store {
    /// The deployment's revisions, newest first.
    pub async fn list_revisions(&self, id: &DeploymentId) -> StoreResult<Vec<DeploymentRevision>> {
        deployment_revision::Entity::find()
            .filter(deployment_revision::Column::DeploymentId.eq(id.clone()))
            .order_by_desc(deployment_revision::Column::Revision)
            .all(&self.db)
            .await
            .map_err(database("listing a deployment's revisions"))?
            .into_iter()
            .map(convert::revision)
            .collect()
    }

    /// One revision of the deployment.
    pub async fn revision(
        &self,
        id: &DeploymentId,
        revision: u64,
    ) -> StoreResult<Option<DeploymentRevision>> {
        deployment_revision::Entity::find_by_id((id.clone(), revision as i64))
            .one(&self.db)
            .await
            .map_err(database("reading a deployment revision"))?
            .map(convert::revision)
            .transpose()
    }

    /// A read-only transaction that sees one snapshot of the database (on
    /// PostgreSQL, REPEATABLE READ; an SQLite read transaction always does),
    /// so that a deployment's row and its secrets are of the same revision.
    pub(super) async fn snapshot(&self) -> StoreResult<DatabaseTransaction> {
        use sea_orm::{AccessMode, IsolationLevel, TransactionTrait};
        if self.is_shared() {
            self.db
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await
        } else {
            self.db.begin().await
        }
        .map_err(database("starting a read"))
    }
}
