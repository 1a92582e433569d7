//! Start-up reconcile: no workload stays in a transitional stage after a restart
//! of Slipway.

use tokio::sync::watch;

use super::{Orchestrator, OrchestratorError};
use crate::{
    domain::{DeploymentSpec, EventKind, Health, LogLevel, NewEvent, Stage, Workload, now},
    runtime::{Reclaimed, RuntimeHandle},
    store::StateWrite,
};

/// The reason given to workloads that were under way when Slipway stopped.
pub const ORCHESTRATOR_RESTARTED: &str = "orchestrator restarted";

impl Orchestrator {
    /// Checks every workload left in a non-terminal stage against its runtime:
    /// an instance that is still there and cannot be followed again is stopped,
    /// and the workload is marked failed ("orchestrator restarted").
    pub(super) async fn reconcile(&self) -> Result<(), OrchestratorError> {
        for workload in self.inner.store.unfinished_workloads().await? {
            if workload.stage == Stage::Pending {
                continue;
            }
            self.reconcile_one(workload).await?;
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
        let logs = self
            .inner
            .logs
            .sink(workload.id.clone(), workload.generation, stage_receiver);
        let handle = workload.runtime_id.clone().map(|runtime_id| RuntimeHandle {
            runtime_id,
            process_start_time: workload.process_start_time,
        });
        let found = match (runtime, handle) {
            (Some(runtime), Some(handle)) => match runtime.reclaim(&handle, &logs, grace).await {
                Ok(Reclaimed::Adopted(instance)) => {
                    // Nothing can follow it yet: stop it rather than leave it unwatched.
                    let _ = runtime.stop(&instance, grace).await;
                    "its instance was stopped"
                }
                Ok(Reclaimed::Stopped) => "its process was stopped",
                Ok(Reclaimed::Gone) => "its instance was gone",
                Err(error) => {
                    tracing::warn!(%error, workload_id = %workload.id, "reclaiming failed");
                    "its instance could not be checked"
                }
            },
            _ => "nothing had started",
        };
        let stage = workload.stage;
        logs.system(
            LogLevel::Warn,
            format!("{ORCHESTRATOR_RESTARTED} while the workload was in {stage}; {found}"),
        )
        .await;
        let mut next = workload.clone();
        next.stage = Stage::Failed;
        next.failed_stage = Some(stage);
        next.error = Some(ORCHESTRATOR_RESTARTED.to_owned());
        next.health = Health::Unknown;
        next.port = None;
        next.stopped_at = Some(now());
        next.updated_at = now();
        let event = NewEvent::workload(EventKind::WorkloadUpdated, &next, ORCHESTRATOR_RESTARTED);
        self.inner
            .events
            .commit(StateWrite::UpdateWorkload(next), event)
            .await?;
        self.inner.logs.seal(&workload.id, true).await;
        tracing::info!(workload_id = %workload.id, %stage, found, "reconciled");
        Ok(())
    }
}
