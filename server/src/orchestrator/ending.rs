//! How a run ends: the run task's reports (stage changes, started, ready,
//! health, finished) turned into the workload's state, what was asked to happen
//! after a stop (restart, delete, shutdown), and deletion.

use super::{
    OrchestratorError,
    run::{RunEvent, RunOutcome},
    supervisor::{Flow, Supervisor},
};
use crate::{
    domain::{EventKind, Health, LogLevel, NewEvent, Stage, now},
    runtime::ExitStatus,
    store::StateWrite,
};

impl Supervisor {
    pub(super) async fn on_run_event(&mut self, event: Option<RunEvent>) -> Flow {
        if self.abandoned {
            // Another node owns the workload: the run here is being killed and
            // nothing of it is recorded.
            if matches!(event, None | Some(RunEvent::Finished(_))) {
                self.run = None;
            }
            return Flow::Continue;
        }
        let event = event.unwrap_or_else(|| {
            RunEvent::Finished(RunOutcome::Failed {
                stage: self.workload.stage,
                reason: "the run ended unexpectedly".to_owned(),
                exit: None,
            })
        });
        let result = match event {
            RunEvent::Stage(stage) if self.workload.stage != Stage::Stopping => {
                self.transition(stage, stage.as_str(), |_| {}).await
            }
            RunEvent::Stage(_) => Ok(()),
            RunEvent::Started {
                handle,
                port,
                warnings,
            } => {
                for warning in &warnings {
                    self.system(LogLevel::Warn, warning.as_str()).await;
                }
                let message = match warnings.as_slice() {
                    [] => "started".to_owned(),
                    warnings => format!("started; {}", warnings.join("; ")),
                };
                let mut next = self.workload.clone();
                next.runtime_id = Some(handle.runtime_id);
                next.process_start_time = handle.process_start_time;
                next.port = port;
                next.warnings = warnings;
                next.updated_at = now();
                self.save(next, &message).await
            }
            RunEvent::Ready if self.workload.stage == Stage::Deploy => {
                self.system(LogLevel::Info, "ready: running").await;
                self.transition(Stage::Running, "ready", |workload| {
                    workload.started_at = Some(now());
                })
                .await
            }
            RunEvent::Ready => Ok(()),
            RunEvent::Health(health, message) => {
                let level = if health == Health::Unhealthy {
                    LogLevel::Warn
                } else {
                    LogLevel::Info
                };
                self.system(level, format!("health: {} ({message})", health.as_str()))
                    .await;
                let mut next = self.workload.clone();
                next.health = health;
                next.updated_at = now();
                self.save(next, &format!("{}: {message}", health.as_str()))
                    .await
            }
            RunEvent::Checked(check) => {
                self.inner.health.record(check);
                Ok(())
            }
            RunEvent::Finished(outcome) => {
                self.run = None;
                return self.finish(outcome).await;
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, workload_id = %self.workload.id, "recording a stage change failed");
        }
        Flow::Continue
    }

    /// Records how the run ended, then does what was asked to happen after it.
    async fn finish(&mut self, outcome: RunOutcome) -> Flow {
        let stopping = self.workload.stage == Stage::Stopping;
        let (to, failed_stage, reason, exit) = match outcome {
            RunOutcome::Failed {
                stage,
                reason,
                exit,
            } => (Stage::Failed, Some(stage), Some(reason), exit),
            // It exited by itself while being stopped: stopped as asked.
            RunOutcome::Exited(status) if stopping => (Stage::Stopped, None, None, Some(status)),
            // A service that ends cleanly has completed, like `Exited (0)`.
            RunOutcome::Exited(status) if status.success() => {
                (Stage::Stopped, None, Some(status.describe()), Some(status))
            }
            RunOutcome::Exited(status) => (
                Stage::Failed,
                Some(self.workload.stage),
                Some(status.describe()),
                Some(status),
            ),
            RunOutcome::Stopped(status) => (Stage::Stopped, None, None, status),
        };
        let line = match (&to, &failed_stage, &reason) {
            (Stage::Failed, Some(stage), Some(reason)) => format!("failed in {stage}: {reason}"),
            (_, _, Some(reason)) => format!("stopped: {reason}"),
            _ => match exit {
                Some(status) => format!("stopped: {}", status.describe()),
                None => "stopped".to_owned(),
            },
        };
        let level = if to == Stage::Failed {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
        self.system(level, line.clone()).await;
        // Every line of the run is stored before anyone sees it ended.
        self.inner.logs.flush().await;
        let exit_code = exit.as_ref().and_then(exit_code);
        let result = self
            .transition(to, &line, |workload| {
                workload.failed_stage = failed_stage.filter(|_| to == Stage::Failed);
                workload.error = reason;
                workload.exit_code = exit_code;
                workload.port = None;
                workload.health = Health::Unknown;
                workload.stopped_at = Some(now());
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, workload_id = %self.workload.id, "recording the end of a run failed");
        }
        let after = std::mem::take(&mut self.after_stop);
        if !after.deletes.is_empty() {
            let result = self.delete().await;
            for reply in after.deletes {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(error) => Err(OrchestratorError::Unavailable(error.to_string())),
                });
            }
            for reply in after.shutdown {
                let _ = reply.send(());
            }
            return Flow::Exit;
        }
        if !after.shutdown.is_empty() {
            self.inner.logs.seal(&self.workload.id, true).await;
            for reply in after.shutdown {
                let _ = reply.send(());
            }
            return Flow::Exit;
        }
        if after.restart {
            if let Err(error) = self.next_generation().await {
                tracing::error!(%error, workload_id = %self.workload.id, "restarting failed");
            }
            return Flow::Continue;
        }
        // A run that ended by itself is handed to the restart policy.
        if !stopping && self.apply_restart_policy().await {
            return Flow::Continue;
        }
        self.inner.logs.seal(&self.workload.id, true).await;
        Flow::Continue
    }

    pub(super) async fn delete(&mut self) -> Result<(), OrchestratorError> {
        if let Ok(deployment) = self.deployment().await {
            if let Some(runtime) = self.inner.runtime(deployment.spec.runtime) {
                if let Err(error) = runtime.remove(&self.workload.id).await {
                    return Err(OrchestratorError::Unavailable(format!(
                        "cannot remove the workload's {} instances: {error}",
                        deployment.spec.runtime.as_str()
                    )));
                }
            }
        }
        let event = NewEvent::workload(EventKind::WorkloadDeleted, &self.workload, "deleted")
            .by(self.actor_name());
        self.inner
            .events
            .commit(StateWrite::DeleteWorkload(self.workload.id.clone()), event)
            .await?;
        self.operations
            .end_all(&self.inner.logs, &self.workload, "the workload was deleted")
            .await;
        self.inner.logs.forget(&self.workload.id).await;
        Ok(())
    }
}

fn exit_code(status: &ExitStatus) -> Option<i32> {
    status.code.or(status.signal.map(|signal| 128 + signal))
}
