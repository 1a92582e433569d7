//! Rollouts: a deployment's change (update, apply, rollback) reaching its
//! live workloads as its update strategy says, as a fleet operation — kept in
//! the database, taken over when its node is lost, watched like the others.
//!
//! - rolling, `max_surge` 0: `max_unavailable` workloads at a time are
//!   restarted in place (their next run reads the new spec), each gated on
//!   readiness before the next starts;
//! - rolling, `max_surge` > 0: `max_surge` at a time, a new workload of the
//!   deployment starts first, and once it is ready the old one is stopped and
//!   removed (none is ever down);
//! - recreate: every live workload restarted at once;
//! - on_restart: no operation; each workload runs the new spec from its next run.
//!
//! A newer rollout of the same deployment cancels the one under way (its
//! items in progress finish); a workload already running the revision, or
//! started from it meanwhile, is left alone.

use std::time::{Duration, Instant};

use super::{
    DEFAULT_DEADLINE, DEFAULT_HEALTHY_DEADLINE, Fleet, FleetError, after,
    runner::{Fenced, Outcome, Run, TICK},
};
use crate::domain::{
    Deployment, FleetKind, FleetOperation, FleetParams, FleetState, ItemState, Stage,
    UpdateStrategy, Workload, now,
};

/// Whether `workload` runs (or is on its way to running) a spec that a
/// rollout must replace.
fn is_live(workload: &Workload) -> bool {
    !matches!(
        workload.stage,
        Stage::Pending | Stage::Stopped | Stage::Failed
    )
}

impl Fleet {
    /// Rolls `deployment` (just changed to its current revision) out to its
    /// live workloads, as its update strategy says; `None` when there is
    /// nothing to do (no live workload, or `on_restart`).
    pub async fn rollout(
        &self,
        actor: &str,
        deployment: &Deployment,
    ) -> Result<Option<FleetOperation>, FleetError> {
        let store = &self.inner.store;
        self.supersede(deployment).await?;
        let (parallel_of, max_surge, strategy) = match deployment.spec.update_strategy {
            UpdateStrategy::OnRestart => return Ok(None),
            UpdateStrategy::Recreate => (None, 0, "recreate"),
            UpdateStrategy::Rolling {
                max_unavailable,
                max_surge,
            } => {
                let step = if max_surge > 0 {
                    max_surge
                } else {
                    max_unavailable
                };
                (Some(step.max(1)), max_surge, "rolling")
            }
        };
        let workloads: Vec<Workload> = store
            .workloads_of_deployment(&deployment.id)
            .await?
            .into_iter()
            .filter(is_live)
            .filter(|workload| workload.spec_revision != Some(deployment.revision))
            .collect();
        if workloads.is_empty() {
            return Ok(None);
        }
        let items = self.items(&workloads).await;
        let count = items.len();
        let parallel = parallel_of.unwrap_or(u32::try_from(count).unwrap_or(u32::MAX));
        let created_at = now();
        let how = if max_surge > 0 {
            format!("{parallel} new at a time, each replacing an old one once ready")
        } else {
            format!("{parallel} at a time")
        };
        let operation = FleetOperation {
            id: FleetOperation::new_id(),
            params: FleetParams::Rollout {
                deployment_id: deployment.id.clone(),
                deployment_name: deployment.name.clone(),
                revision: deployment.revision,
                strategy: strategy.to_owned(),
                max_surge,
                min_healthy_ms: 0,
                healthy_deadline_ms: super::millis(DEFAULT_HEALTHY_DEADLINE),
            },
            target: format!(
                "deployment {} revision {}",
                deployment.name, deployment.revision
            ),
            state: FleetState::Running,
            message: format!(
                "rolling out revision {} to {count} workloads ({strategy}, {how})",
                deployment.revision
            ),
            items,
            parallel,
            node_id: Some(self.inner.node_id.clone()),
            owner_epoch: 1,
            actor: actor.to_owned(),
            created_at,
            updated_at: created_at,
            finished_at: None,
            deadline: after(DEFAULT_DEADLINE),
        };
        store.insert_operation(&operation).await?;
        tracing::info!(operation = %operation.id, deployment = %deployment.name, revision = deployment.revision, workloads = count, "rollout");
        self.spawn_run(operation.clone());
        Ok(Some(operation))
    }

    /// Cancels the rollouts of `deployment` under way: the new one replaces them.
    async fn supersede(&self, deployment: &Deployment) -> Result<(), FleetError> {
        let under_way = self
            .inner
            .store
            .operations(&[FleetState::Running, FleetState::Paused], 1000)
            .await?;
        for operation in under_way {
            let FleetParams::Rollout { deployment_id, .. } = &operation.params else {
                continue;
            };
            if operation.params.kind() == FleetKind::Rollout && deployment_id == &deployment.id {
                match self.set_state(&operation.id, FleetState::Cancelled).await {
                    Ok(_) | Err(FleetError::Conflict(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// One rollout item: the workload ends on the operation's revision, or
    /// replaced by a workload that runs it.
    pub(super) async fn roll(&self, run: &Run, index: usize) -> Result<Outcome, Fenced> {
        let Some(item) = run.item(index).await else {
            return Ok(Outcome::Done(String::new()));
        };
        let FleetParams::Rollout {
            revision,
            max_surge,
            ..
        } = run.params().await
        else {
            return Ok(Outcome::Done(String::new()));
        };
        let fresh = item.state == ItemState::Waiting && item.replacement_id.is_none();
        if fresh {
            match self.settled(&item.workload_id, run).await {
                None => return Ok(Outcome::Done("deleted meanwhile".to_owned())),
                Some(workload) if workload.spec_revision >= Some(revision) => {
                    return Ok(Outcome::Done(format!("already runs revision {revision}")));
                }
                Some(workload) if workload.stage != Stage::Running => {
                    return Ok(Outcome::Done(format!(
                        "{} meanwhile: runs revision {revision} from its next start",
                        workload.stage.as_str()
                    )));
                }
                Some(_) => {}
            }
        }
        if max_surge == 0 {
            return self.restart(run, index).await.map(|outcome| match outcome {
                Outcome::Done(message) => {
                    Outcome::Done(format!("{message}: runs revision {revision}"))
                }
                failed => failed,
            });
        }
        match self.move_off(run, index).await? {
            Outcome::Done(message) => {
                let Some(item) = run.item(index).await else {
                    return Ok(Outcome::Done(message));
                };
                let Some(replacement) = item.replacement_id else {
                    return Ok(Outcome::Done(message));
                };
                if let Err(status) = self.inner.control.delete(&item.workload_id).await {
                    let gone = matches!(
                        self.inner.store.get_workload(&item.workload_id).await,
                        Ok(None)
                    );
                    if !gone {
                        return Ok(Outcome::Failed(format!(
                            "replaced by workload {replacement}, but removing it failed: {}",
                            status.message()
                        )));
                    }
                }
                Ok(Outcome::Done(format!(
                    "replaced by workload {replacement} (revision {revision}), and removed"
                )))
            }
            failed => Ok(failed),
        }
    }

    /// The workload once it is no longer between stages (a start, a stop or
    /// a restart under way), within the operation's healthy deadline; `None`
    /// when it was deleted.
    async fn settled(&self, id: &crate::domain::WorkloadId, run: &Run) -> Option<Workload> {
        let limit: Duration = run.params().await.healthy_deadline();
        let began = Instant::now();
        loop {
            match self.inner.store.get_workload(id).await {
                Ok(None) => return None,
                Ok(Some(workload))
                    if matches!(workload.stage, Stage::Running | Stage::Pending)
                        || workload.stage.is_terminal()
                        || began.elapsed() >= limit =>
                {
                    return Some(workload);
                }
                Ok(Some(_)) => {}
                Err(error) => tracing::warn!(%error, "reading a workload failed"),
            }
            tokio::time::sleep(TICK).await;
        }
    }
}
