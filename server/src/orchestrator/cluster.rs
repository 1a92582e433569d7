//! Several nodes on one database. A call reaches any node: one for a workload
//! another node owns is sent on to the owner (by the API, on
//! [`OrchestratorError::Elsewhere`]); a new run is placed first. Every node
//! also, each second, fails over the workloads of lost nodes and places the
//! workloads that wait for a node. Every change of owner is a write that names
//! the owner epoch it expects, so of two nodes that act on one workload at once,
//! exactly one succeeds.

use std::time::Duration;

use super::{Orchestrator, OrchestratorError, Result, placement::Placement, supervisor::Command};
use crate::{
    domain::{
        EventKind, Health, NewEvent, NodeState, Operation, RestartMode, Stage, Workload,
        WorkloadId, now,
    },
    events::CommitError,
    store::{StateWrite, StoreError},
};

/// How often a node looks for the workloads of lost nodes and for workloads
/// waiting for a node.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Workloads placed per sweep at most.
const QUEUE_PAGE: u64 = 64;

impl Orchestrator {
    /// Whether a call on the workload is for this node; `Ok(placement)` when it
    /// is (with why placement chose this node, if it did), else
    /// [`OrchestratorError::Elsewhere`] naming the node, or
    /// [`OrchestratorError::NoNodeFits`] when a new run fits on no node (it is
    /// queued).
    pub(super) async fn route(
        &self,
        id: &WorkloadId,
        operation: Operation,
        placement: Option<String>,
    ) -> Result<Option<String>> {
        if placement.is_some() {
            return Ok(placement);
        }
        let workload = self.get_workload(id).await?;
        // On SQLite this server is the only node: every workload is its own.
        if self.inner.store.is_shared() {
            self.owner_elsewhere(&workload).await?;
        }
        let new_run = match operation {
            Operation::Start => workload.stage == Stage::Pending,
            Operation::Restart => workload.stage.is_terminal(),
            Operation::Stop => false,
        };
        if !new_run {
            return Ok(None);
        }
        let deployment = self.get_deployment(&workload.deployment_id).await?;
        match self.place(&deployment, true).await? {
            Placement::Here(why) => Ok(why),
            Placement::There { node, why } => Err(OrchestratorError::Elsewhere {
                workload_id: workload.id,
                node,
                placement: Some(why),
            }),
            Placement::Nowhere(reason) => {
                self.queue(&workload, &reason).await?;
                Err(OrchestratorError::NoNodeFits {
                    workload_id: workload.id,
                    reason,
                })
            }
        }
    }

    /// `Elsewhere` when another node owns the workload's run (or a pending
    /// restart of it), `Unavailable` when that node is lost and the workload
    /// not failed over yet.
    pub async fn route_to_owner(&self, id: &WorkloadId) -> Result<()> {
        if !self.inner.store.is_shared() {
            return Ok(());
        }
        let workload = self.get_workload(id).await?;
        self.owner_elsewhere(&workload).await
    }

    async fn owner_elsewhere(&self, workload: &Workload) -> Result<()> {
        let Some(owner) = &workload.node_id else {
            return Ok(());
        };
        let live = !workload.stage.is_terminal() || workload.next_restart_at.is_some();
        if owner == &self.inner.node_id || !live {
            return Ok(());
        }
        match self.inner.store.node(owner.as_str()).await? {
            Some(node) if node.state == NodeState::Active => Err(OrchestratorError::Elsewhere {
                workload_id: workload.id.clone(),
                node: Box::new(node),
                placement: None,
            }),
            Some(node) => Err(OrchestratorError::Unavailable(format!(
                "workload {} is owned by node {}, which is {}; it is failed over within seconds, ask again",
                workload.id,
                node.registration.name,
                node.state.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Marks the workload as waiting for a node, with the reason (once per reason).
    async fn queue(&self, workload: &Workload, reason: &str) -> Result<()> {
        if workload.pending_reason.as_deref() == Some(reason) {
            return Ok(());
        }
        let mut next = workload.clone();
        next.pending_reason = Some(reason.to_owned());
        next.updated_at = now();
        let message = format!("waiting for a node: {reason}");
        let event = NewEvent::workload(EventKind::WorkloadUpdated, &next, &message);
        match self
            .inner
            .events
            .commit(StateWrite::UpdateWorkload(next), event)
            .await
        {
            // Someone else changed it meanwhile: their word stands.
            Err(CommitError::Store(StoreError::Fenced { .. })) => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// Fails over and places, every second, until the orchestrator is dropped.
    pub(super) fn spawn_sweeps(&self) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let orchestrator = Orchestrator { inner };
                if let Err(error) = orchestrator.fail_over().await {
                    tracing::warn!(%error, "failing over the workloads of lost nodes failed");
                }
                if let Err(error) = orchestrator.place_queued().await {
                    tracing::warn!(%error, "placing waiting workloads failed");
                }
            }
        });
    }

    /// Every workload of a lost node whose run was not over fails ("node X
    /// lost"), and its restart policy decides whether it runs again: if so it
    /// waits for a node, and the sweeps place it. Each step is a write that
    /// expects the owner epoch it read, so each happens once however many
    /// nodes sweep.
    pub async fn fail_over(&self) -> Result<()> {
        for (workload, node_name) in self.inner.store.workloads_of_lost_nodes().await? {
            let reason = format!("node {node_name} lost");
            let mut failed = workload.clone();
            let was = workload.stage;
            if !was.is_terminal() {
                failed.stage = Stage::Failed;
                failed.failed_stage = Some(was);
                failed.error = Some(reason.clone());
                failed.exit_code = None;
                failed.stopped_at = Some(now());
            }
            failed.node_id = None;
            failed.owner_epoch = workload.owner_epoch + 1;
            failed.port = None;
            failed.runtime_id = None;
            failed.process_start_time = None;
            failed.health = Health::Unknown;
            failed.next_restart_at = None;
            failed.updated_at = now();
            let message = format!("failed: {reason} (it missed its heartbeat TTL); was {was}");
            let event = NewEvent::workload(EventKind::WorkloadUpdated, &failed, &message);
            let write = StateWrite::ReassignWorkload {
                workload: failed.clone(),
                expected_epoch: workload.owner_epoch,
            };
            match self.inner.events.commit(write, event).await {
                Ok(committed) => failed.revision = committed.revision,
                // Another node failed it over first.
                Err(CommitError::Store(StoreError::Fenced { .. })) => continue,
                Err(error) => return Err(error.into()),
            }
            tracing::warn!(workload_id = %workload.id, node = %node_name, "failed over a workload of a lost node");
            self.run_again_elsewhere(failed, &reason).await?;
        }
        Ok(())
    }

    /// Applies the restart policy to a workload failed over from a lost node.
    async fn run_again_elsewhere(&self, failed: Workload, reason: &str) -> Result<()> {
        let Ok(deployment) = self.get_deployment(&failed.deployment_id).await else {
            return Ok(());
        };
        let policy = &deployment.spec.restart_policy;
        let applies = match policy.mode {
            RestartMode::Never => false,
            RestartMode::OnFailure | RestartMode::Always => true,
        };
        if !applies || (policy.max_restarts > 0 && failed.restart_count >= policy.max_restarts) {
            return Ok(());
        }
        let mut next = failed.clone();
        next.stage = Stage::Pending;
        next.generation = failed.generation + 1;
        next.restart_count = failed.restart_count + 1;
        next.error = None;
        next.failed_stage = None;
        next.exit_code = None;
        next.warnings.clear();
        next.pending_reason = Some(format!("{reason}; waiting to be placed on another node"));
        next.updated_at = now();
        let message = format!(
            "restart policy {}: runs again on another node as generation {}",
            match policy.mode {
                RestartMode::Always => "always",
                _ => "on-failure",
            },
            next.generation
        );
        let event = NewEvent::workload(EventKind::WorkloadUpdated, &next, &message);
        match self
            .inner
            .events
            .commit(StateWrite::UpdateWorkload(next), event)
            .await
        {
            Err(CommitError::Store(StoreError::Fenced { .. })) => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// Starts here the waiting workloads placement gives to this node, and
    /// records for the others why they still wait.
    async fn place_queued(&self) -> Result<()> {
        for workload in self.inner.store.queued_workloads(QUEUE_PAGE).await? {
            let Ok(deployment) = self.get_deployment(&workload.deployment_id).await else {
                continue;
            };
            match self.place(&deployment, false).await? {
                Placement::Here(why) => {
                    let supervisor = self.supervisor(&workload.id, None).await?;
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    let command = Command::Operate {
                        operation: Operation::Start,
                        grace: None,
                        placement: Some(why.unwrap_or_else(|| "placed on this node".to_owned())),
                        actor: None,
                        reply,
                    };
                    if supervisor.send(command).await.is_ok() {
                        // The progress is not followed: the events tell it.
                        if let Ok(Err(error)) = answer.await {
                            tracing::debug!(%error, workload_id = %workload.id, "placing a waiting workload here failed");
                        }
                    }
                }
                Placement::There { .. } => {}
                Placement::Nowhere(reason) => self.queue(&workload, &reason).await?,
            }
        }
        Ok(())
    }

    /// Kills the processes this node started (an earlier run of it: they
    /// outlived a `kill -9`) for workloads it no longer runs: failed over to
    /// another node meanwhile, stopped, or deleted. Its own unfinished ones
    /// are left to start-up reconcile.
    pub(super) async fn stop_orphans(&self) -> Result<()> {
        let node = &self.inner.node_id;
        for runtime in self.inner.runtimes.values() {
            let mut ids = match runtime.workloads_started_by(node).await {
                Ok(ids) => ids,
                Err(error) => {
                    tracing::warn!(%error, runtime = runtime.kind().as_str(), "looking for instances of workloads this node no longer runs failed");
                    continue;
                }
            };
            if ids.is_empty() {
                continue;
            }
            ids.sort();
            ids.dedup();
            let keep = self.inner.store.running_here(&ids, node).await?;
            for workload_id in ids.iter().filter(|id| !keep.contains(*id)) {
                tracing::warn!(
                    %workload_id,
                    runtime = runtime.kind().as_str(),
                    "stopping what this node started for a workload it no longer runs"
                );
                if let Err(error) = runtime.remove_started_by(node, workload_id).await {
                    tracing::warn!(%error, %workload_id, "stopping it failed");
                }
            }
        }
        Ok(())
    }

    /// This node was declared lost: every workload it ran belongs to nobody,
    /// or to another node, now. Kills what runs here without recording
    /// anything.
    pub async fn abandon_all(&self) {
        let supervisors: Vec<_> = {
            let supervisors = self
                .inner
                .supervisors
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            supervisors.values().cloned().collect()
        };
        for supervisor in supervisors {
            let _ = supervisor.send(Command::Abandon).await;
        }
    }
}
