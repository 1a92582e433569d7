//! Start-up reconcile: no workload stays in a transitional stage after a restart
//! of Slipway, and containers that kept running are adopted again.
//!
//! Reconcile runs in the background while the server already answers: every
//! workload left unfinished is checked at the same time (so stopping the old
//! instances takes the longest grace period, not their sum). Until its check is
//! done a workload keeps its stage and its port, its log says it is being
//! reconciled, and control calls on it wait for the check (bounded, then refused
//! as unavailable). Its row keeps the old instance's id and start time until
//! then, so a Slipway killed again meanwhile finds the same instance at its next
//! start.

use tokio::{sync::watch, task::JoinSet};

use super::{
    Inner, Orchestrator, OrchestratorError, PortLease, PortPool, RECONCILE_WAIT_LIMIT,
    supervisor::Supervisor,
};
use crate::{
    domain::{
        DeploymentSpec, EventKind, Health, LogLevel, NewEvent, Stage, Timestamp, Workload,
        WorkloadId, now,
    },
    runtime::{LogResume, Reclaimed, RunContext, RuntimeHandle},
    store::{StateWrite, Store},
};

/// The reason given to workloads that were under way when Slipway stopped.
pub const ORCHESTRATOR_RESTARTED: &str = "orchestrator restarted";

/// The workloads start-up reconcile deals with: every one left in a
/// non-terminal stage other than pending (nothing of a pending one runs).
/// On a shared database, only this node's: the others reconcile their own.
pub(super) async fn to_reconcile(
    store: &Store,
    node: &crate::domain::NodeId,
) -> Result<Vec<Workload>, OrchestratorError> {
    Ok(store
        .unfinished_workloads(node)
        .await?
        .into_iter()
        .filter(|workload| workload.stage != Stage::Pending)
        .collect())
}

impl Inner {
    /// Whether start-up reconcile is still dealing with the workload.
    pub(super) fn is_reconciling(&self, id: &WorkloadId) -> bool {
        self.reconciling
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(id)
    }

    /// Start-up reconcile is done with the workload: control calls reach it again.
    pub(super) fn finish_reconciling(&self, id: &WorkloadId) {
        let removed = self
            .reconciling
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(id);
        if removed {
            self.reconcile_progress.send_replace(());
        }
    }

    /// Waits until start-up reconcile is done with the workload; gives up with
    /// [`OrchestratorError::Unavailable`] after [`RECONCILE_WAIT_LIMIT`].
    pub(super) async fn wait_reconciled(&self, id: &WorkloadId) -> Result<(), OrchestratorError> {
        let mut progress = self.reconcile_progress.subscribe();
        let deadline = tokio::time::Instant::now() + RECONCILE_WAIT_LIMIT;
        while self.is_reconciling(id) {
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    return Err(OrchestratorError::Unavailable(format!(
                        "workload {id} is still being reconciled after a restart of slipway (its instance from the earlier run is being checked or stopped); try again shortly"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A workload to reconcile, with the port it held (claimed again from the pool).
pub(super) struct Unfinished {
    workload: Workload,
    lease: Option<PortLease>,
}

/// Claims the recorded port of each workload again.
pub(super) fn hold_ports(ports: &PortPool, workloads: Vec<Workload>) -> Vec<Unfinished> {
    workloads
        .into_iter()
        .map(|workload| {
            let lease = workload.port.and_then(|port| {
                let lease = ports.reclaim(port);
                if lease.is_none() {
                    tracing::warn!(workload_id = %workload.id, port, "the port of a workload left unfinished is held twice");
                }
                lease
            });
            Unfinished { workload, lease }
        })
        .collect()
}

impl Orchestrator {
    /// Checks each of `unfinished` against its runtime, all at once. A running
    /// instance that can be followed again (a container) is adopted and its
    /// workload stays running; any other instance still there is stopped, and its
    /// workload is marked failed ("orchestrator restarted"). Then restarts that
    /// were pending when Slipway stopped are resumed.
    pub(super) async fn reconcile(
        &self,
        unfinished: Vec<Unfinished>,
    ) -> Result<(), OrchestratorError> {
        if !unfinished.is_empty() {
            tracing::info!(
                workloads = unfinished.len(),
                "reconciling the workloads an earlier slipway left unfinished"
            );
        }
        let mut checks = JoinSet::new();
        for Unfinished { workload, lease } in unfinished {
            let orchestrator = self.clone();
            checks.spawn(async move {
                let id = workload.id.clone();
                let result = orchestrator.reconcile_one(workload, lease).await;
                // Whatever the outcome, control calls reach the workload again.
                orchestrator.inner.finish_reconciling(&id);
                if let Err(error) = result {
                    tracing::error!(%error, workload_id = %id, "reconciling the workload failed");
                }
            });
        }
        while let Some(joined) = checks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a reconcile task failed");
            }
        }
        for workload in self
            .inner
            .store
            .workloads_awaiting_restart(&self.inner.node_id)
            .await?
        {
            self.apply_restart_policy_of(&workload.id).await?;
        }
        Ok(())
    }

    async fn reconcile_one(
        &self,
        workload: Workload,
        lease: Option<PortLease>,
    ) -> Result<(), OrchestratorError> {
        let deployment = self
            .inner
            .store
            .get_deployment(&workload.deployment_id)
            .await?;
        let grace = deployment
            .as_ref()
            .map_or(DeploymentSpec::DEFAULT_STOP_GRACE_PERIOD, |deployment| {
                deployment.spec.stop_grace_period
            });
        let runtime = deployment
            .as_ref()
            .and_then(|deployment| self.inner.runtime(deployment.spec.runtime));
        let (_stage, stage_receiver) = watch::channel(workload.stage);
        let secrets = deployment
            .as_ref()
            .map(|deployment| deployment.spec.secret_values())
            .unwrap_or_default();
        // Masks the secrets like every other sink of the workload: an adopted
        // container's output goes through this one.
        let logs = self.inner.run_sink(
            workload.id.clone(),
            workload.generation,
            stage_receiver,
            secrets,
        );
        logs.system(
            LogLevel::Info,
            format!(
                "slipway restarted: reconciling this workload (checking its instance from the earlier run, stopped within its grace period of {}s if it cannot be adopted); control calls wait until this is done",
                grace.as_secs()
            ),
        )
        .await;
        let handle = workload.runtime_id.clone().map(|runtime_id| RuntimeHandle {
            runtime_id,
            process_start_time: workload.process_start_time,
        });
        let (last, seen) = self
            .inner
            .store
            .output_resume_point(&workload.id, workload.generation)
            .await?;
        let resume = LogResume {
            timestamp: last.map(Timestamp),
            seen,
        };
        let found = match (runtime, handle) {
            (Some(runtime), Some(handle)) => {
                match runtime.reclaim(&handle, &logs, resume, grace).await {
                    Ok(Reclaimed::Adopted(instance)) if workload.stage == Stage::Running => {
                        let id = workload.id.clone();
                        tracing::info!(workload_id = %id, runtime_id = %instance.handle.runtime_id, "adopted");
                        let Some(deployment) = deployment else {
                            return Ok(());
                        };
                        let context = RunContext {
                            workload_id: workload.id.clone(),
                            deployment_id: deployment.id.clone(),
                            deployment_name: deployment.name.clone(),
                            generation: workload.generation,
                            service_dir: self.inner.root.join(&deployment.service_path),
                            spec: deployment.spec.clone(),
                            port: workload.port,
                        };
                        let supervisor = Supervisor::adopt(
                            self.inner.clone(),
                            workload,
                            runtime,
                            context,
                            instance,
                            lease,
                        );
                        self.spawn_adopted_supervisor(supervisor, id.clone());
                        self.inner.finish_reconciling(&id);
                        return Ok(());
                    }
                    Ok(Reclaimed::Adopted(instance)) => {
                        // Caught half-way through deploy or stop: finish the stop.
                        let signal = deployment
                            .as_ref()
                            .map_or("SIGTERM", |deployment| deployment.spec.stop_signal());
                        let _ = runtime.stop(&instance, signal, grace).await;
                        "its instance was stopped"
                    }
                    Ok(Reclaimed::Stopped) => "its process was stopped",
                    Ok(Reclaimed::Gone) if workload.stage == Stage::Running => {
                        "its instance vanished meanwhile"
                    }
                    Ok(Reclaimed::Gone) => "its instance was gone",
                    Err(error) => {
                        tracing::warn!(%error, workload_id = %workload.id, "reclaiming failed");
                        "its instance could not be checked"
                    }
                }
            }
            (Some(runtime), None) => {
                // Killed before an instance was recorded (in validate or build): what
                // it had started is found by the workload's mark and removed.
                match runtime.remove(&workload.id).await {
                    Ok(()) => "what it had started was stopped",
                    Err(error) => {
                        tracing::warn!(%error, workload_id = %workload.id, "cleaning up failed");
                        "what it had started could not be checked"
                    }
                }
            }
            (None, _) => "its runtime is not available",
        };
        let stage = workload.stage;
        let reason = format!("{ORCHESTRATOR_RESTARTED} while the workload was in {stage}: {found}");
        logs.system(LogLevel::Warn, reason.clone()).await;
        let mut next = workload.clone();
        next.stage = Stage::Failed;
        next.failed_stage = Some(stage);
        next.error = Some(reason.clone());
        next.health = Health::Unknown;
        next.port = None;
        next.stopped_at = Some(now());
        next.updated_at = now();
        let event = NewEvent::workload(EventKind::WorkloadUpdated, &next, reason);
        self.inner
            .events
            .commit(StateWrite::UpdateWorkload(next), event)
            .await?;
        // What held the port is gone: it goes back to the pool.
        drop(lease);
        tracing::info!(workload_id = %workload.id, %stage, found, "reconciled");
        // The run ended without anyone watching: its restart policy applies now.
        self.inner.finish_reconciling(&workload.id);
        self.apply_restart_policy_of(&workload.id).await
    }

    /// Hands a workload whose run is over to its supervisor's restart policy
    /// (which also resumes a restart that was pending when Slipway stopped).
    async fn apply_restart_policy_of(
        &self,
        id: &crate::domain::WorkloadId,
    ) -> Result<(), OrchestratorError> {
        let supervisor = self.supervisor(id, None).await?;
        let _ = supervisor
            .send(super::supervisor::Command::ApplyRestartPolicy)
            .await;
        Ok(())
    }
}
