//! The supervisor: one task per workload that owns its state. Control operations
//! arrive as commands and are served one at a time; the run task reports back as
//! events. Every change is committed with its event before anyone hears of it.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    Inner, OrchestratorError,
    operations::Operations,
    ports::PortLease,
    run::{self, RunEvent, RunInputs, RunOutcome},
};
use crate::{
    domain::{
        Admission, Condition, Deployment, EventKind, Health, LogLevel, NewEvent, Operation, Stage,
        Workload, admit, can_transition, now,
    },
    logs::{LogSink, ProgressReceiver},
    runtime::{Instance, RunContext, Runtime},
    store::StateWrite,
};

pub type Reply<T> = oneshot::Sender<Result<T, OrchestratorError>>;

pub enum Command {
    Operate {
        operation: Operation,
        /// Overrides the deployment's grace period for a stop.
        grace: Option<Duration>,
        /// Why this node runs it, when placement chose it among several.
        placement: Option<String>,
        /// Who asked for it (none: Slipway itself).
        actor: Option<String>,
        reply: Reply<ProgressReceiver>,
    },
    Delete {
        actor: Option<String>,
        reply: Reply<()>,
    },
    /// Stop what runs (within `grace` at most) and end the task.
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<()>,
    },
    /// The run ended while no Slipway watched it (found at start-up): the restart
    /// policy decides, as for any run that ended by itself.
    ApplyRestartPolicy,
    /// This node no longer owns the workload (it was declared lost): kill what
    /// runs without writing anything, and end the task.
    Abandon,
}

pub(super) struct ActiveRun {
    pub(super) stop: watch::Sender<Option<Duration>>,
    events: mpsc::Receiver<RunEvent>,
}

/// What to do once the current run has stopped.
#[derive(Default)]
pub(super) struct AfterStop {
    pub(super) restart: bool,
    pub(super) deletes: Vec<Reply<()>>,
    pub(super) shutdown: Vec<oneshot::Sender<()>>,
}

pub struct Supervisor {
    pub(super) inner: Arc<Inner>,
    pub(super) workload: Workload,
    /// The stage log lines are tagged with; the run task moves it through build and deploy.
    stage: Arc<watch::Sender<Stage>>,
    pub(super) run: Option<ActiveRun>,
    pub(super) after_stop: AfterStop,
    /// Secret values of the deployment, masked in the workload's log.
    secrets: Vec<String>,
    /// The restart policy's state: the pending restart and the recent ones.
    pub(super) restarts: super::policy::RestartState,
    /// The operations accepted and not over yet, each with its progress channel.
    pub(super) operations: Operations,
    /// Another node owns the workload now: what runs here is killed, nothing
    /// more is written, and the task ends once the run is over.
    pub(super) abandoned: bool,
    /// Why placement chose this node for the run about to start, if it did.
    pub(super) placement: Option<String>,
    /// Who asked for the operation under way, and which it is: its events
    /// name them until it is over.
    pub(super) actor: Option<(String, Operation)>,
}

pub(super) enum Flow {
    Continue,
    Exit,
}

impl Supervisor {
    pub fn new(inner: Arc<Inner>, workload: Workload) -> Self {
        let stage = Arc::new(watch::channel(workload.stage).0);
        Self {
            inner,
            workload,
            stage,
            run: None,
            after_stop: AfterStop::default(),
            secrets: Vec::new(),
            restarts: super::policy::RestartState::default(),
            operations: Operations::default(),
            abandoned: false,
            placement: None,
            actor: None,
        }
    }

    /// A supervisor for a workload whose instance, left running by an earlier
    /// Slipway, was adopted: it carries on as a running workload.
    pub fn adopt(
        inner: Arc<Inner>,
        workload: Workload,
        runtime: Arc<dyn Runtime>,
        context: RunContext,
        instance: Instance,
        lease: Option<PortLease>,
    ) -> Self {
        let mut supervisor = Self::new(inner, workload);
        supervisor.secrets = context.spec.secret_values();
        let (stop, stop_receiver) = watch::channel(None);
        let (events, event_receiver) = mpsc::channel(16);
        let logs = supervisor.logs();
        tokio::spawn(run::adopted(
            runtime,
            context,
            instance,
            lease,
            logs,
            events,
            stop_receiver,
        ));
        supervisor.run = Some(ActiveRun {
            stop,
            events: event_receiver,
        });
        supervisor
    }

    /// Serves commands until the workload is deleted, the server shuts down, or
    /// every handle to the supervisor is gone.
    pub async fn serve(mut self, mut commands: mpsc::Receiver<Command>) {
        // Readers see this workload's log as complete while it rests.
        let _cursor = self
            .inner
            .logs
            .cursor(&self.workload.id, self.workload.stage.is_terminal());
        loop {
            let flow = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => Flow::Exit,
                },
                event = next_run_event(&mut self.run) => self.on_run_event(event).await,
                () = super::policy::restart_due(&mut self.restarts) => self.policy_restart().await,
            };
            if let Flow::Exit = flow {
                break;
            }
            if self.abandoned && self.run.is_none() {
                break;
            }
        }
        self.inner.forget_supervisor(&self.workload.id);
    }

    pub(super) fn logs(&self) -> LogSink {
        self.inner.run_sink(
            self.workload.id.clone(),
            self.workload.generation,
            self.stage.subscribe(),
            self.secrets.clone(),
        )
    }

    pub(super) async fn system(&self, level: LogLevel, message: impl Into<String>) {
        self.logs().system(level, message).await;
    }

    /// The workload's condition, as the admission rule sees it.
    fn condition(&self) -> Condition {
        Condition {
            stage: self.workload.stage,
            restart_pending: self.restarts.pending() || self.workload.next_restart_at.is_some(),
            under_way: self
                .after_stop
                .restart
                .then_some(Operation::Restart)
                .or_else(|| self.operations.latest()),
        }
    }

    async fn handle(&mut self, command: Command) -> Flow {
        if self.abandoned {
            // Nothing is done for a workload another node owns: the caller
            // asks again and reaches the owner.
            refuse_abandoned(command, &self.workload);
            return Flow::Continue;
        }
        match command {
            Command::Abandon => {
                self.abandon("this node was declared lost").await;
                Flow::Continue
            }
            Command::Operate {
                operation,
                grace,
                placement,
                actor,
                reply,
            } => {
                self.refresh().await;
                if self.abandoned {
                    refuse_abandoned(
                        Command::Operate {
                            operation,
                            grace,
                            placement,
                            actor,
                            reply,
                        },
                        &self.workload,
                    );
                    return Flow::Continue;
                }
                self.placement = placement;
                self.actor = actor.map(|actor| (actor, operation));
                let admission = admit(self.condition(), operation.action());
                if let Admission::Refuse(reason) = admission {
                    let _ = reply.send(Err(OrchestratorError::InvalidState {
                        workload_id: self.workload.id.clone(),
                        current_stage: self.workload.stage,
                        message: format!("Cannot {} workload: {reason}", operation.as_str()),
                    }));
                    return Flow::Continue;
                }
                let (tap, progress) = self.inner.logs.watch(&self.workload).await;
                if operation == Operation::Stop {
                    self.operations.supersede();
                }
                self.operations.track(tap, operation, &self.workload);
                let result = match (admission, operation) {
                    (Admission::Join, _) => Ok(()),
                    (_, Operation::Start) => self.start_run("start").await,
                    (_, Operation::Stop) => self.stop(grace, "stop requested").await,
                    (_, Operation::Restart) => self.restart().await,
                };
                match result {
                    // An operation over at once (a stop of a pending workload) has
                    // ended with the change that made it so.
                    Ok(()) => {
                        let _ = reply.send(Ok(progress));
                    }
                    Err(error) => {
                        self.operations
                            .abandon(tap, &self.inner.logs, &self.workload, &error)
                            .await;
                        let _ = reply.send(Err(error));
                    }
                }
                Flow::Continue
            }
            Command::Delete { actor, reply } => {
                self.actor = actor.map(|actor| (actor, Operation::Stop));
                if self.run.is_none() {
                    let _ = reply.send(self.delete().await);
                    return Flow::Exit;
                }
                self.after_stop.deletes.push(reply);
                self.after_stop.restart = false;
                if let Err(error) = self.stop(None, "deleting").await {
                    tracing::error!(%error, workload_id = %self.workload.id, "stopping for a delete failed");
                }
                Flow::Continue
            }
            Command::ApplyRestartPolicy => {
                if self.run.is_none()
                    && self.workload.stage.is_terminal()
                    && !self.apply_restart_policy().await
                {
                    self.inner.logs.seal(&self.workload.id, true).await;
                }
                Flow::Continue
            }
            Command::Shutdown { grace, reply } => {
                if self.run.is_none()
                    || self.inner.leave_on_shutdown
                    || self.outlives_slipway().await
                {
                    // Nothing runs, or it keeps running and is adopted at the next start.
                    let _ = reply.send(());
                    return Flow::Exit;
                }
                self.after_stop.shutdown.push(reply);
                self.after_stop.restart = false;
                let grace = self.grace_period().await.min(grace);
                if let Err(error) = self.stop(Some(grace), "slipway is shutting down").await {
                    tracing::error!(%error, workload_id = %self.workload.id, "stopping for shutdown failed");
                }
                Flow::Continue
            }
        }
    }

    /// Whether the workload runs on a runtime whose instances outlive Slipway and
    /// is running (a run under way in an earlier stage is stopped at shutdown).
    async fn outlives_slipway(&self) -> bool {
        if self.workload.stage != Stage::Running {
            return false;
        }
        match self.deployment().await {
            Ok(deployment) => self
                .inner
                .runtime(deployment.spec.runtime)
                .is_some_and(|runtime| runtime.instances_outlive_slipway()),
            Err(_) => false,
        }
    }

    pub(super) async fn deployment(&self) -> Result<Deployment, OrchestratorError> {
        self.inner
            .store
            .get_deployment(&self.workload.deployment_id)
            .await?
            .ok_or_else(|| OrchestratorError::deployment_not_found(&self.workload.deployment_id))
    }

    async fn grace_period(&self) -> Duration {
        match self.deployment().await {
            Ok(deployment) => deployment.spec.stop_grace_period,
            Err(_) => crate::domain::DeploymentSpec::DEFAULT_STOP_GRACE_PERIOD,
        }
    }

    /// Moves the workload to `to`, applying `change`, and commits it with its event.
    pub(super) async fn transition(
        &mut self,
        to: Stage,
        message: &str,
        change: impl FnOnce(&mut Workload),
    ) -> Result<(), OrchestratorError> {
        let from = self.workload.stage;
        if !can_transition(from, to) {
            return Err(OrchestratorError::internal(
                "changing stage",
                std::io::Error::other(format!("{from} -> {to} is not a transition")),
            ));
        }
        let mut next = self.workload.clone();
        next.stage = to;
        next.updated_at = now();
        change(&mut next);
        self.save(next, message).await?;
        self.stage_changed(to);
        Ok(())
    }

    /// Tags the workload's next log lines with `to`.
    pub(super) fn stage_changed(&self, to: Stage) {
        // The run task tags its own build and deploy lines as it gets there.
        if !matches!(to, Stage::Build | Stage::Deploy) {
            self.stage.send_replace(to);
        }
    }

    /// Commits `next` as the workload's state, with an update event.
    pub(super) async fn save(
        &mut self,
        next: Workload,
        message: &str,
    ) -> Result<(), OrchestratorError> {
        let event =
            NewEvent::workload(EventKind::WorkloadUpdated, &next, message).by(self.actor_name());
        let committed = match self
            .inner
            .events
            .commit(StateWrite::UpdateWorkload(next.clone()), event)
            .await
        {
            Err(crate::events::CommitError::Store(crate::store::StoreError::Fenced { .. })) => {
                self.abandon("another node owns it now").await;
                return Err(OrchestratorError::Unavailable(format!(
                    "workload {} is owned by another node now",
                    self.workload.id
                )));
            }
            other => other?,
        };
        self.workload = next;
        self.workload.revision = committed.revision;
        self.settle_actor();
        self.publish().await;
        Ok(())
    }

    /// Who asked for the operation under way, if anyone did.
    pub(super) fn actor_name(&self) -> Option<String> {
        self.actor.as_ref().map(|(actor, _)| actor.clone())
    }

    /// Forgets who asked once their operation is over: what happens next (a
    /// health change, a restart by the policy) is Slipway's own doing.
    fn settle_actor(&mut self) {
        let Some((_, operation)) = &self.actor else {
            return;
        };
        let stage = self.workload.stage;
        let over = match operation {
            Operation::Start | Operation::Restart => {
                matches!(stage, Stage::Running | Stage::Failed)
                    || (stage == Stage::Pending && self.workload.pending_reason.is_some())
            }
            Operation::Stop => stage.is_terminal(),
        };
        if over {
            self.actor = None;
        }
    }

    /// Hands the workload as it is now to the operations under way, ending those
    /// that are over.
    pub(super) async fn publish_now(&mut self) {
        self.publish().await;
    }

    async fn publish(&mut self) {
        self.operations
            .publish(&self.inner.logs, &self.workload)
            .await;
    }

    /// Starts the pipeline of the current generation (the workload is pending).
    async fn start_run(&mut self, why: &str) -> Result<(), OrchestratorError> {
        // The spec and its revision come from one read of the deployment.
        let deployment = self.deployment().await?;
        let runtime = self.inner.runtime(deployment.spec.runtime);
        self.secrets = deployment.spec.secret_values();
        self.workload.spec_revision = Some(deployment.revision);
        self.restarts.run_started = Some(std::time::Instant::now());
        // The run is this node's: it takes the workload over (a new owner
        // epoch) before it writes anything of the run, its first log line included.
        self.claim(why).await?;
        self.inner.logs.seal(&self.workload.id, false).await;
        self.system(
            LogLevel::Info,
            format!(
                "{why}: generation {} of {}",
                self.workload.generation, deployment.name
            ),
        )
        .await;
        let service_dir = self.inner.root.join(&deployment.service_path);
        let context = RunContext {
            workload_id: self.workload.id.clone(),
            deployment_id: deployment.id.clone(),
            deployment_name: deployment.name.clone(),
            generation: self.workload.generation,
            service_dir,
            spec: deployment.spec.clone(),
            port: None,
        };
        let (stop, stop_receiver) = watch::channel(None);
        let (events, event_receiver) = mpsc::channel(16);
        match runtime {
            Some(runtime) => {
                let inputs = RunInputs {
                    context,
                    runtime,
                    ports: self.inner.ports.clone(),
                    logs: self.logs(),
                    stage: self.stage.clone(),
                    default_grace: deployment.spec.stop_grace_period,
                };
                tokio::spawn(run::run(inputs, events, stop_receiver));
            }
            None => {
                let reason = format!(
                    "the {} runtime is not available on this server",
                    deployment.spec.runtime.as_str()
                );
                let _ = events.try_send(RunEvent::Finished(RunOutcome::Failed {
                    stage: Stage::Validate,
                    reason,
                    exit: None,
                }));
            }
        }
        self.run = Some(ActiveRun {
            stop,
            events: event_receiver,
        });
        Ok(())
    }

    async fn stop(&mut self, grace: Option<Duration>, why: &str) -> Result<(), OrchestratorError> {
        match self.workload.stage {
            Stage::Pending => {
                self.transition(Stage::Stopped, why, |workload| {
                    workload.stopped_at = Some(now())
                })
                .await?;
                self.inner.logs.seal(&self.workload.id, true).await;
                Ok(())
            }
            Stage::Stopping => {
                // A stop asked while a restart stops the run: it stays stopped.
                self.after_stop.restart = false;
                if let (Some(grace), Some(run)) = (grace, &self.run) {
                    run.stop.send_replace(Some(grace));
                }
                Ok(())
            }
            stage if stage.is_terminal() => self.cancel_restart(why).await,
            _ => {
                let grace = match grace {
                    Some(grace) => grace,
                    None => self.grace_period().await,
                };
                self.system(
                    LogLevel::Info,
                    format!("{why}: stopping (grace period {}s)", grace.as_secs()),
                )
                .await;
                self.transition(Stage::Stopping, why, |_| {}).await?;
                if let Some(run) = &self.run {
                    run.stop.send_replace(Some(grace));
                }
                Ok(())
            }
        }
    }

    async fn restart(&mut self) -> Result<(), OrchestratorError> {
        // A restart on request starts a new streak for the restart policy.
        self.restarts.forget();
        self.workload.restart_count = 0;
        if self.workload.stage == Stage::Running {
            self.after_stop.restart = true;
            return self.stop(None, "restart requested").await;
        }
        self.next_generation().await
    }

    /// Runs the pipeline again as the next generation (the run is over).
    pub(super) async fn next_generation(&mut self) -> Result<(), OrchestratorError> {
        let generation = self.workload.generation + 1;
        self.transition(Stage::Pending, "restart", |workload| {
            workload.next_restart_at = None;
            workload.generation = generation;
            workload.health = Health::Unknown;
            workload.port = None;
            workload.runtime_id = None;
            workload.process_start_time = None;
            workload.error = None;
            workload.failed_stage = None;
            workload.exit_code = None;
            workload.warnings.clear();
        })
        .await?;
        self.start_run("restart").await
    }
}

/// Refuses a command sent to a supervisor whose workload another node owns now.
fn refuse_abandoned(command: Command, workload: &Workload) {
    let error = || {
        OrchestratorError::Unavailable(format!(
            "workload {} is owned by another node now; ask again",
            workload.id
        ))
    };
    match command {
        Command::Operate { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Command::Delete { reply, .. } => {
            let _ = reply.send(Err(error()));
        }
        Command::Shutdown { reply, .. } => {
            let _ = reply.send(());
        }
        Command::ApplyRestartPolicy | Command::Abandon => {}
    }
}

async fn next_run_event(run: &mut Option<ActiveRun>) -> Option<RunEvent> {
    match run {
        Some(run) => run.events.recv().await,
        None => std::future::pending().await,
    }
}
