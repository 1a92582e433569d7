//! Deployments and workloads: every write goes through [`Store::commit`] with the
//! event that records it, in one transaction.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use super::{
    Store, StoreError, StoreResult, convert, database,
    entities::{deployment, event, workload},
    is_foreign_key_violation, is_unique_violation, revisions, secrets,
};
use crate::domain::{
    Deployment, DeploymentId, DeploymentRevision, Event, NodeId, Stage, Timestamp, Workload,
    WorkloadId,
};

/// A change of state, committed together with its event.
#[derive(Debug, Clone)]
pub enum StateWrite {
    /// Stores the deployment, its secrets and its first revision.
    CreateDeployment(Box<Deployment>),
    /// Writes the deployment's spec, labels, secrets and revision if its
    /// stored revision is `expected_revision`, and records `revision`; else
    /// [`StoreError::RevisionConflict`] and nothing changes.
    UpdateDeployment {
        deployment: Box<Deployment>,
        expected_revision: u64,
        revision: Box<DeploymentRevision>,
    },
    DeleteDeployment(DeploymentId),
    CreateWorkload(Workload),
    UpdateWorkload(Workload),
    /// Removes the workload; its log lines go with it (foreign key cascade).
    DeleteWorkload(WorkloadId),
    /// Writes the workload as its owner: refused with [`StoreError::Fenced`]
    /// unless the stored owner epoch is `workload.owner_epoch`.
    // (UpdateWorkload above checks the same; this one is for a change of owner.)
    ReassignWorkload {
        workload: Workload,
        /// The epoch the stored row must have; `workload.owner_epoch` is the new one.
        expected_epoch: u64,
    },
}

/// Takes the next event revision: the counter row stays locked until the
/// transaction ends, so revisions commit in the order they are taken.
async fn next_revision(txn: &DatabaseTransaction) -> StoreResult<u64> {
    let statement = Statement::from_string(
        txn.get_database_backend(),
        "UPDATE counters SET value = value + 1 WHERE name = 'revision' RETURNING value",
    );
    let row = txn
        .query_one_raw(statement)
        .await
        .map_err(database("taking the next revision"))?
        .ok_or_else(|| StoreError::Corrupt {
            what: "revision counter",
            detail: "the counters table has no 'revision' row".to_owned(),
        })?;
    let value: i64 = row
        .try_get("", "value")
        .map_err(database("reading the next revision"))?;
    Ok(value as u64)
}

/// Writes `workload` over its row if the row's owner epoch is `expected_epoch`.
async fn update_fenced(
    txn: &DatabaseTransaction,
    workload: &Workload,
    expected_epoch: u64,
) -> StoreResult<()> {
    let result = workload::Entity::update_many()
        .set(
            convert::workload_row(workload)
                .into_active_model()
                .reset_all(),
        )
        .filter(workload::Column::Id.eq(workload.id.clone()))
        .filter(workload::Column::OwnerEpoch.eq(expected_epoch as i64))
        .exec(txn)
        .await
        .map_err(database("updating a workload"))?;
    if result.rows_affected == 0 {
        return Err(StoreError::Fenced {
            workload_id: workload.id.clone(),
            epoch: expected_epoch,
        });
    }
    Ok(())
}

/// The deployments of `rows`, in order, each with its secrets.
async fn with_secrets<C: ConnectionTrait>(
    connection: &C,
    rows: Vec<deployment::Model>,
) -> StoreResult<Vec<Deployment>> {
    let ids: Vec<DeploymentId> = rows.iter().map(|row| row.id.clone()).collect();
    let mut secrets = secrets::of(connection, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let own = secrets.remove(&row.id).unwrap_or_default();
            convert::deployment(row, own)
        })
        .collect()
}

/// Which workloads to list.
#[derive(Debug, Clone, Default)]
pub struct WorkloadFilter {
    pub deployment_id: Option<DeploymentId>,
    /// Any of these stages; all stages when empty.
    pub stages: Vec<Stage>,
}

/// A page of workloads and the event revision it is consistent with.
#[derive(Debug, Clone)]
pub struct WorkloadPage {
    pub workloads: Vec<Workload>,
    /// Where the next page starts, when there is one.
    pub next: Option<(Timestamp, String)>,
    pub revision: u64,
}

/// Rows after `(created_at, id)` in `(created_at, id)` order.
fn after_cursor<C: ColumnTrait>(created_at: C, id: C, cursor: &(Timestamp, String)) -> Condition {
    Condition::any().add(created_at.gt(cursor.0.0)).add(
        Condition::all()
            .add(created_at.eq(cursor.0.0))
            .add(id.gt(cursor.1.clone())),
    )
}

impl Store {
    /// Applies `write` and appends `event` with the next revision, atomically,
    /// and returns that revision (also written into the event, its workload
    /// snapshot and the workload row).
    ///
    /// Revisions come from one counter row that the transaction holds locked
    /// until it commits: on a database shared by several nodes, revisions are
    /// still committed in order, so a reader that has seen revision R has seen
    /// every event up to R.
    ///
    /// The foreign keys hold: creating a workload of a deployment that does not
    /// exist fails with [`StoreError::DeploymentNotFound`], deleting a deployment
    /// that has workloads with [`StoreError::DeploymentHasWorkloads`]; neither
    /// changes anything. A workload update whose owner epoch is stale fails with
    /// [`StoreError::Fenced`] and changes nothing.
    pub async fn commit(&self, write: &mut StateWrite, event: &mut Event) -> StoreResult<u64> {
        let txn = self
            .db
            .begin()
            .await
            .map_err(database("starting a transaction"))?;
        let revision = next_revision(&txn).await?;
        event.revision = revision;
        for snapshot in event.workload.iter_mut() {
            snapshot.revision = revision;
        }
        match write {
            StateWrite::CreateWorkload(row)
            | StateWrite::UpdateWorkload(row)
            | StateWrite::ReassignWorkload { workload: row, .. } => row.revision = revision,
            _ => {}
        }
        match &*write {
            StateWrite::CreateDeployment(deployment) => {
                let row = convert::deployment_row(deployment)?;
                deployment::Entity::insert(row.into_active_model())
                    .exec_without_returning(&txn)
                    .await
                    .map_err(|error| {
                        if is_unique_violation(&error) {
                            StoreError::NameTaken {
                                name: deployment.name.clone(),
                            }
                        } else {
                            StoreError::Database {
                                context: "inserting a deployment",
                                source: error,
                            }
                        }
                    })?;
                secrets::insert(&txn, deployment).await?;
                let mut first = DeploymentRevision::of(
                    &deployment.id,
                    deployment.revision,
                    &deployment.spec,
                    &deployment.labels,
                    Vec::new(),
                );
                // This runs in the event log's task: the caller is the event's.
                first.actor = event.actor.clone();
                first.created_at = deployment.created_at;
                revisions::insert(&txn, &first).await?;
            }
            StateWrite::UpdateDeployment {
                deployment,
                expected_revision,
                revision,
            } => {
                revisions::update(&txn, deployment, *expected_revision, revision).await?;
            }
            StateWrite::DeleteDeployment(id) => {
                deployment::Entity::delete_by_id(id.clone())
                    .exec(&txn)
                    .await
                    .map_err(|error| {
                        if is_foreign_key_violation(&error) {
                            StoreError::DeploymentHasWorkloads { id: id.clone() }
                        } else {
                            StoreError::Database {
                                context: "deleting a deployment",
                                source: error,
                            }
                        }
                    })?;
            }
            StateWrite::CreateWorkload(workload) => {
                workload::Entity::insert(convert::workload_row(workload).into_active_model())
                    .exec_without_returning(&txn)
                    .await
                    .map_err(|error| {
                        if is_foreign_key_violation(&error) {
                            StoreError::DeploymentNotFound {
                                id: workload.deployment_id.clone(),
                            }
                        } else {
                            StoreError::Database {
                                context: "inserting a workload",
                                source: error,
                            }
                        }
                    })?;
            }
            StateWrite::UpdateWorkload(workload) => {
                update_fenced(&txn, workload, workload.owner_epoch).await?;
            }
            StateWrite::ReassignWorkload {
                workload,
                expected_epoch,
            } => {
                update_fenced(&txn, workload, *expected_epoch).await?;
            }
            StateWrite::DeleteWorkload(id) => {
                workload::Entity::delete_by_id(id.clone())
                    .exec(&txn)
                    .await
                    .map_err(database("deleting a workload"))?;
            }
        }
        event::Entity::insert(convert::event_row(event)?.into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(database("appending an event"))?;
        txn.commit()
            .await
            .map_err(database("committing a transaction"))?;
        if matches!(
            *write,
            StateWrite::DeleteDeployment(_) | StateWrite::DeleteWorkload(_)
        ) {
            // A workload takes its log with it: give the space back, in the
            // background (a checkpoint may wait for readers).
            let store = self.clone();
            tokio::spawn(async move { store.reclaim_space().await });
        }
        Ok(revision)
    }

    /// The deployment, with its secrets.
    /// The row and the secrets are read in one snapshot: they are of the same
    /// revision.
    pub async fn get_deployment(&self, id: &DeploymentId) -> StoreResult<Option<Deployment>> {
        let txn = self.snapshot().await?;
        let row = deployment::Entity::find_by_id(id.clone())
            .one(&txn)
            .await
            .map_err(database("reading a deployment"))?;
        let deployment = with_secrets(&txn, row.into_iter().collect())
            .await
            .map(|mut deployments| deployments.pop())?;
        txn.commit().await.map_err(database("ending a read"))?;
        Ok(deployment)
    }

    /// The deployment named `name`, with its secrets.
    pub async fn find_deployment_by_name(&self, name: &str) -> StoreResult<Option<Deployment>> {
        let txn = self.snapshot().await?;
        let row = deployment::Entity::find()
            .filter(deployment::Column::Name.eq(name))
            .one(&txn)
            .await
            .map_err(database("reading a deployment"))?;
        let deployment = with_secrets(&txn, row.into_iter().collect())
            .await
            .map(|mut deployments| deployments.pop())?;
        txn.commit().await.map_err(database("ending a read"))?;
        Ok(deployment)
    }

    /// Deployments in creation order, after `cursor`, of `project` when given.
    pub async fn list_deployments(
        &self,
        project: Option<&str>,
        cursor: Option<&(Timestamp, String)>,
        limit: u64,
    ) -> StoreResult<Vec<Deployment>> {
        let mut query = deployment::Entity::find();
        if let Some(project) = project {
            query = query.filter(deployment::Column::Project.eq(project));
        }
        if let Some(cursor) = cursor {
            query = query.filter(after_cursor(
                deployment::Column::CreatedAt,
                deployment::Column::Id,
                cursor,
            ));
        }
        let rows = query
            .order_by_asc(deployment::Column::CreatedAt)
            .order_by_asc(deployment::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("listing deployments"))?;
        with_secrets(&self.db, rows).await
    }

    pub async fn get_workload(&self, id: &WorkloadId) -> StoreResult<Option<Workload>> {
        workload::Entity::find_by_id(id.clone())
            .one(&self.db)
            .await
            .map_err(database("reading a workload"))?
            .map(convert::workload)
            .transpose()
    }

    /// A page of workloads in creation order, with the revision it reflects.
    pub async fn list_workloads(
        &self,
        filter: &WorkloadFilter,
        cursor: Option<&(Timestamp, String)>,
        limit: u64,
    ) -> StoreResult<WorkloadPage> {
        let txn = self
            .db
            .begin()
            .await
            .map_err(database("starting a transaction"))?;
        let revision = Self::last_revision_in(&txn).await?;
        let mut query = workload::Entity::find();
        if let Some(deployment_id) = &filter.deployment_id {
            query = query.filter(workload::Column::DeploymentId.eq(deployment_id));
        }
        if !filter.stages.is_empty() {
            query = query.filter(
                workload::Column::Stage.is_in(filter.stages.iter().map(|stage| stage.as_str())),
            );
        }
        if let Some(cursor) = cursor {
            query = query.filter(after_cursor(
                workload::Column::CreatedAt,
                workload::Column::Id,
                cursor,
            ));
        }
        let rows = query
            .order_by_asc(workload::Column::CreatedAt)
            .order_by_asc(workload::Column::Id)
            .limit(limit + 1)
            .all(&txn)
            .await
            .map_err(database("listing workloads"))?;
        txn.commit().await.map_err(database("ending a read"))?;
        let mut workloads = rows
            .into_iter()
            .map(convert::workload)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if workloads.len() as u64 > limit {
            workloads.truncate(limit as usize);
            workloads
                .last()
                .map(|last| (last.created_at, last.id.to_string()))
        } else {
            None
        };
        Ok(WorkloadPage {
            workloads,
            next,
            revision,
        })
    }

    /// Every workload of a deployment.
    pub async fn workloads_of_deployment(&self, id: &DeploymentId) -> StoreResult<Vec<Workload>> {
        workload::Entity::find()
            .filter(workload::Column::DeploymentId.eq(id))
            .order_by_asc(workload::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(database("listing a deployment's workloads"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }

    /// The workloads `node` runs, or will run again (a restart pending), in
    /// creation order.
    pub async fn live_workloads_on(&self, node: &NodeId) -> StoreResult<Vec<Workload>> {
        workload::Entity::find()
            .filter(workload::Column::NodeId.eq(node.clone()))
            .filter(
                Condition::any()
                    .add(
                        workload::Column::Stage
                            .is_not_in([Stage::Stopped.as_str(), Stage::Failed.as_str()]),
                    )
                    .add(workload::Column::NextRestartAt.is_not_null()),
            )
            .order_by_asc(workload::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(database("listing a node's workloads"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }

    /// Workloads of `node` (or of no node) whose restart policy had a restart pending.
    pub async fn workloads_awaiting_restart(&self, node: &NodeId) -> StoreResult<Vec<Workload>> {
        workload::Entity::find()
            .filter(super::ownership::owned_by(node))
            .filter(workload::Column::NextRestartAt.is_not_null())
            .filter(
                workload::Column::Stage.is_in([Stage::Stopped.as_str(), Stage::Failed.as_str()]),
            )
            .all(&self.db)
            .await
            .map_err(database("listing workloads awaiting a restart"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }

    /// Every workload of `node` (or of no node) whose run is not over (for
    /// reconcile at start-up). A queued workload (waiting for a node) is not one.
    pub async fn unfinished_workloads(&self, node: &NodeId) -> StoreResult<Vec<Workload>> {
        workload::Entity::find()
            .filter(super::ownership::owned_by(node))
            .filter(workload::Column::PendingReason.is_null())
            .filter(
                workload::Column::Stage
                    .is_not_in([Stage::Stopped.as_str(), Stage::Failed.as_str()]),
            )
            .all(&self.db)
            .await
            .map_err(database("listing unfinished workloads"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }
}
