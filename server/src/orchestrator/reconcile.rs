//! Start-up reconcile: no workload stays in a transitional stage after a restart
//! of Slipway, and containers that kept running are adopted again.

use tokio::sync::watch;

use super::{Orchestrator, OrchestratorError, supervisor::Supervisor};
use crate::{
    domain::{
        DeploymentSpec, EventKind, Health, LogLevel, NewEvent, Stage, Timestamp, Workload, now,
    },
    runtime::{LogResume, Reclaimed, RunContext, RuntimeHandle},
    store::StateWrite,
};

/// The reason given to workloads that were under way when Slipway stopped.
pub const ORCHESTRATOR_RESTARTED: &str = "orchestrator restarted";

impl Orchestrator {
    /// Checks every workload left in a non-terminal stage against its runtime. A
    /// running instance that can be followed again (a container) is adopted and
    /// its workload stays running; any other instance still there is stopped, and
    /// its workload is marked failed ("orchestrator restarted").
    pub(super) async fn reconcile(&self) -> Result<(), OrchestratorError> {
        for workload in self.inner.store.unfinished_workloads().await? {
            if workload.stage == Stage::Pending {
                continue;
            }
            self.reconcile_one(workload).await?;
        }
        for workload in self.inner.store.workloads_awaiting_restart().await? {
            self.apply_restart_policy_of(&workload.id).await?;
        }
        Ok(())
    }

    async fn reconcile_one(&self, workload: Workload) -> Result<(), OrchestratorError> {
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
                        let lease = match workload.port {
                            Some(port) => match self.inner.ports.reclaim(port) {
                                Some(lease) => Some(lease),
                                None => {
                                    tracing::warn!(workload_id = %workload.id, port, "the adopted workload's port is held twice");
                                    None
                                }
                            },
                            None => None,
                        };
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
                        self.spawn_adopted_supervisor(supervisor, id);
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
        tracing::info!(workload_id = %workload.id, %stage, found, "reconciled");
        // The run ended without anyone watching: its restart policy applies now.
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
