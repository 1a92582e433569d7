//! The orchestrator: the lifecycle engine behind the API. Deployments and
//! workloads are created and removed here; each workload's lifecycle is owned by
//! its supervisor task; logs and events are read through here.

mod cluster;
mod ending;
mod error;
mod health;
mod names;
mod operations;
mod ownership;
mod paths;
mod placement;
mod policy;
mod ports;
mod readiness;
mod reconcile;
mod revisions;
mod run;
mod supervisor;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::Stream;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::events::WatchItem;
pub use crate::logs::{OperationFailure, Progress, ProgressReceiver};
pub use error::OrchestratorError;
pub use health::{HealthHistory, HealthRetention};
pub use ports::{PortLease, PortPool};
pub use revisions::{ChangeOutcome, DeploymentChange, SpecPatch};

use self::supervisor::{Command, Supervisor};
use crate::{
    domain::{
        Deployment, DeploymentId, DeploymentSpec, EventKind, LogFilter, LogLine, NewEvent, NodeId,
        Operation, RuntimeKind, Timestamp, Workload, WorkloadId, now, validate_deployment_name,
        validate_spec,
    },
    events::EventLog,
    logs::{LogPipeline, LogReader, LogRetention},
    runtime::Runtime,
    store::{EventFilter, StateWrite, Store, WorkloadFilter, WorkloadPage},
};

type Result<T, E = OrchestratorError> = std::result::Result<T, E>;

/// How long a control call on a workload that start-up reconcile is still
/// dealing with waits for it, before it is refused as unavailable.
const RECONCILE_WAIT_LIMIT: Duration = Duration::from_secs(30);

/// How the orchestrator behaves; see `config.rs` for the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Service paths resolve under this directory (canonical).
    pub root: PathBuf,
    /// At shutdown, running workloads get at most this long to stop.
    pub shutdown_grace: Duration,
    /// At shutdown, leave process workloads running instead of stopping them.
    pub leave_on_shutdown: bool,
    /// How much log each workload keeps.
    pub log_retention: LogRetention,
    /// Lines of output longer than this many bytes are stored as marked pieces.
    pub log_max_line_bytes: usize,
    /// How many events are kept.
    pub event_retention: u64,
    /// How much health history is kept.
    pub health_retention: HealthRetention,
    /// This server's node id: the owner of the workloads it runs.
    pub node_id: NodeId,
}

/// Where a log reader starts, what it passes, and whether it follows.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The first seq wanted (0 or 1: the first line).
    pub from_seq: u64,
    /// Start with the last `tail` lines (that pass the filter) instead.
    pub tail: Option<u64>,
    pub filter: LogFilter,
    pub follow: bool,
}

/// What a new deployment is made of.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub name: String,
    pub project: String,
    pub service_path: String,
    pub spec: DeploymentSpec,
    pub labels: BTreeMap<String, String>,
}

pub(crate) struct Inner {
    node_id: NodeId,
    store: Store,
    events: EventLog,
    logs: LogPipeline,
    /// Where runs record their liveness checks.
    health: health::HealthRecorder,
    ports: PortPool,
    runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    root: PathBuf,
    shutdown_grace: Duration,
    leave_on_shutdown: bool,
    supervisors: Mutex<HashMap<WorkloadId, mpsc::Sender<Command>>>,
    /// Workloads an earlier Slipway left unfinished whose instance is still being
    /// checked (start-up reconcile): control calls on them wait until then.
    reconciling: Mutex<HashSet<WorkloadId>>,
    /// Ticks each time start-up reconcile is done with a workload.
    reconcile_progress: watch::Sender<()>,
    /// Becomes `true` once start-up reconcile has dealt with every workload.
    reconciled: watch::Receiver<bool>,
}

impl Inner {
    fn runtime(&self, kind: RuntimeKind) -> Option<Arc<dyn Runtime>> {
        self.runtimes.get(&kind).cloned()
    }

    fn forget_supervisor(&self, id: &WorkloadId) {
        let mut supervisors = self
            .supervisors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        supervisors.remove(id);
    }

    /// The sink for one run of a workload, masking its deployment's `secrets` in
    /// every line. Every sink of a workload's run is made here (by its supervisor
    /// and by start-up reconcile, which hands it to an adopted instance), so none
    /// can forget the secrets.
    fn run_sink(
        &self,
        id: WorkloadId,
        generation: u64,
        stage: watch::Receiver<crate::domain::Stage>,
        secrets: Vec<String>,
    ) -> crate::logs::LogSink {
        self.logs
            .sink(id, generation, stage)
            .with_redactions(secrets)
    }
}

/// The lifecycle engine. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl Orchestrator {
    /// Starts the orchestrator on `store` with the given runtimes. The workloads
    /// an earlier run of Slipway left unfinished are reconciled in the background,
    /// all at once, while the orchestrator already serves: until one is done, it
    /// keeps its stage, its log says it is being reconciled, and control calls on
    /// it wait (up to [`RECONCILE_WAIT_LIMIT`], then
    /// [`OrchestratorError::Unavailable`]).
    pub async fn start(
        store: Store,
        runtimes: Vec<Arc<dyn Runtime>>,
        ports: PortPool,
        settings: Settings,
    ) -> Result<Orchestrator> {
        let events = EventLog::start(store.clone(), settings.event_retention).await?;
        let (logs, _writer) = LogPipeline::start_owned(
            store.clone(),
            settings.log_retention,
            settings.log_max_line_bytes,
            store.is_shared().then(|| settings.node_id.clone()),
        );
        let unfinished = reconcile::to_reconcile(&store, &settings.node_id).await?;
        let (reconciled_sender, reconciled) = watch::channel(false);
        let health = health::HealthRecorder::start(store.clone(), settings.health_retention);
        let inner = Arc::new(Inner {
            node_id: settings.node_id,
            store,
            events,
            logs,
            health,
            ports,
            runtimes: runtimes
                .into_iter()
                .map(|runtime| (runtime.kind(), runtime))
                .collect(),
            root: settings.root,
            shutdown_grace: settings.shutdown_grace,
            leave_on_shutdown: settings.leave_on_shutdown,
            supervisors: Mutex::new(HashMap::new()),
            reconciling: Mutex::new(
                unfinished
                    .iter()
                    .map(|workload| workload.id.clone())
                    .collect(),
            ),
            reconcile_progress: watch::Sender::new(()),
            reconciled,
        });
        let orchestrator = Orchestrator { inner };
        if let Err(error) = orchestrator.stop_orphans().await {
            tracing::warn!(%error, "looking for processes of workloads this node no longer runs failed");
        }
        orchestrator.spawn_sweeps();
        // Their ports stay held until reconcile has adopted or stopped what
        // holds them: no new workload is handed one meanwhile.
        let unfinished = reconcile::hold_ports(&orchestrator.inner.ports, unfinished);
        let reconciler = orchestrator.clone();
        tokio::spawn(async move {
            if let Err(error) = reconciler.reconcile(unfinished).await {
                tracing::error!(%error, "start-up reconcile failed");
            }
            reconciled_sender.send_replace(true);
        });
        Ok(orchestrator)
    }

    /// Waits until start-up reconcile is over: every instance an earlier Slipway
    /// left behind is adopted or stopped.
    pub async fn reconciled(&self) {
        let mut reconciled = self.inner.reconciled.clone();
        // An error means the reconcile task is gone: nothing more to wait for.
        let _ = reconciled.wait_for(|done| *done).await;
    }

    /// Finishes start-up reconcile (so that no instance of an earlier Slipway is
    /// left running), then stops every workload that runs (within the shutdown
    /// grace period) and stores every log line accepted so far.
    pub async fn shutdown(&self) {
        self.reconciled().await;
        let supervisors: Vec<_> = {
            let supervisors = self
                .inner
                .supervisors
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            supervisors.values().cloned().collect()
        };
        let mut waits = Vec::new();
        for supervisor in supervisors {
            let (reply, done) = oneshot::channel();
            let command = Command::Shutdown {
                grace: self.inner.shutdown_grace,
                reply,
            };
            if supervisor.send(command).await.is_ok() {
                waits.push(done);
            }
        }
        for done in waits {
            let _ = done.await;
        }
        self.inner.logs.flush().await;
    }

    // ----- deployments -------------------------------------------------------

    /// Everything wrong with a spec and labels, as a create or an update
    /// checks them (the runtime's checks included).
    async fn check_spec(
        &self,
        spec: &DeploymentSpec,
        labels: &BTreeMap<String, String>,
    ) -> Vec<crate::domain::FieldViolation> {
        let mut violations = validate_spec(spec);
        violations.extend(paths::validate_labels(labels));
        if let Some(runtime) = self.inner.runtime(spec.runtime) {
            // The runtime's checks may read the user database: off the async threads.
            let spec = spec.clone();
            let checked = tokio::task::spawn_blocking(move || runtime.check_spec(&spec)).await;
            violations.extend(checked.unwrap_or_default());
        } else {
            violations.push(crate::domain::FieldViolation::new(
                "spec.runtime",
                format!(
                    "the {} runtime is not available on this server",
                    spec.runtime.as_str()
                ),
            ));
        }
        violations
    }

    pub async fn create_deployment(&self, request: NewDeployment) -> Result<Deployment> {
        let mut violations = self.check_spec(&request.spec, &request.labels).await;
        let name = if request.name.is_empty() {
            format!("deployment-{}", &DeploymentId::generate().as_str()[..8])
        } else {
            request.name
        };
        violations.extend(validate_deployment_name(&name));
        violations.extend(crate::domain::validate_project(&request.project));
        let service_path =
            match paths::resolve_service_path(&self.inner.root, &request.service_path) {
                Ok(path) => path,
                Err(violation) => {
                    violations.push(violation);
                    String::new()
                }
            };
        if !violations.is_empty() {
            return Err(OrchestratorError::InvalidArgument { violations });
        }
        let created_at = now();
        let deployment = Deployment {
            id: DeploymentId::generate(),
            name,
            project: request.project,
            service_path,
            spec: request.spec,
            labels: request.labels,
            created_at,
            updated_at: created_at,
            revision: 1,
        };
        let event = NewEvent {
            kind: EventKind::DeploymentCreated,
            deployment_id: deployment.id.clone(),
            workload_id: None,
            workload: None,
            message: format!("deployment {} created", deployment.name),
            actor: crate::domain::current_actor(),
        };
        self.inner
            .events
            .commit(
                StateWrite::CreateDeployment(Box::new(deployment.clone())),
                event,
            )
            .await?;
        Ok(deployment)
    }

    pub async fn get_deployment(&self, id: &DeploymentId) -> Result<Deployment> {
        self.inner
            .store
            .get_deployment(id)
            .await?
            .ok_or_else(|| OrchestratorError::deployment_not_found(id))
    }

    pub async fn list_deployments(
        &self,
        project: Option<&str>,
        cursor: Option<&(Timestamp, String)>,
        limit: u64,
    ) -> Result<Vec<Deployment>> {
        OrchestratorError::refuse(project.and_then(crate::domain::validate_project))?;
        Ok(self
            .inner
            .store
            .list_deployments(project, cursor, limit)
            .await?)
    }

    /// Stops and removes the deployment's workloads, then the deployment.
    ///
    /// A workload created meanwhile keeps the deployment from being deleted (the
    /// store's foreign key): its workloads are listed and removed again, a few
    /// times, before giving up with [`OrchestratorError::DeploymentInUse`]. Returns
    /// every workload removed.
    pub async fn delete_deployment(&self, id: &DeploymentId) -> Result<Vec<WorkloadId>> {
        const ATTEMPTS: usize = 5;
        let deployment = self.get_deployment(id).await?;
        let mut deleted: Vec<WorkloadId> = Vec::new();
        for _ in 0..ATTEMPTS {
            let workloads = self.inner.store.workloads_of_deployment(id).await?;
            let deletions = workloads
                .iter()
                .map(|workload| self.delete_workload(&workload.id));
            for (workload, result) in workloads
                .iter()
                .zip(futures::future::join_all(deletions).await)
            {
                match result {
                    Ok(()) | Err(OrchestratorError::NotFound { .. }) => {
                        if !deleted.contains(&workload.id) {
                            deleted.push(workload.id.clone());
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
            let event = NewEvent {
                kind: EventKind::DeploymentDeleted,
                deployment_id: deployment.id.clone(),
                workload_id: None,
                workload: None,
                message: format!("deployment {} deleted", deployment.name),
                actor: crate::domain::current_actor(),
            };
            match self
                .inner
                .events
                .commit(StateWrite::DeleteDeployment(deployment.id.clone()), event)
                .await
                .map_err(OrchestratorError::from)
            {
                Ok(_) => return Ok(deleted),
                // A workload was created meanwhile: remove it too, then try again.
                Err(OrchestratorError::DeploymentInUse { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(OrchestratorError::DeploymentInUse { id: id.clone() })
    }

    // ----- workloads ---------------------------------------------------------

    /// A new pending workload of a deployment. A deployment deleted meanwhile
    /// gives `NotFound`, never a workload without its deployment (the store's
    /// foreign key refuses it).
    pub async fn create_workload(&self, deployment_id: &DeploymentId) -> Result<Workload> {
        self.get_deployment(deployment_id).await?;
        let workload = Workload::new(deployment_id.clone());
        let event = NewEvent::workload(EventKind::WorkloadCreated, &workload, "created");
        let committed = self
            .inner
            .events
            .commit(StateWrite::CreateWorkload(workload.clone()), event)
            .await?;
        Ok(committed.workload.unwrap_or(workload))
    }

    pub async fn get_workload(&self, id: &WorkloadId) -> Result<Workload> {
        self.inner
            .store
            .get_workload(id)
            .await?
            .ok_or_else(|| OrchestratorError::workload_not_found(id))
    }

    pub async fn list_workloads(
        &self,
        filter: &WorkloadFilter,
        cursor: Option<&(Timestamp, String)>,
        limit: u64,
    ) -> Result<WorkloadPage> {
        Ok(self
            .inner
            .store
            .list_workloads(filter, cursor, limit)
            .await?)
    }

    /// Asks the workload's supervisor to start, stop or restart it, and returns
    /// the operation's progress: the accepted snapshot, then every change and the
    /// operation's log lines in the order they happened, then its outcome. A
    /// refusal (invalid state, unknown id) comes back as the error. With
    /// `deployment_id`, the workload must belong to that deployment. Dropping the
    /// receiver does not cancel the operation.
    pub async fn operate(
        &self,
        id: &WorkloadId,
        deployment_id: Option<&DeploymentId>,
        operation: Operation,
        grace: Option<Duration>,
    ) -> Result<ProgressReceiver> {
        self.operate_placed(id, deployment_id, operation, grace, None)
            .await
    }

    /// [`Orchestrator::operate`], for a call another node forwarded here after
    /// placement chose this node (`placement` says why), or `None` for a call
    /// made here. On a shared database a call for a workload another node owns
    /// fails with [`OrchestratorError::Elsewhere`] (the API forwards it), and a
    /// new run is placed first.
    pub async fn operate_placed(
        &self,
        id: &WorkloadId,
        deployment_id: Option<&DeploymentId>,
        operation: Operation,
        grace: Option<Duration>,
        placement: Option<String>,
    ) -> Result<ProgressReceiver> {
        OrchestratorError::refuse(
            grace
                .filter(|grace| grace.as_secs() > DeploymentSpec::MAX_SECONDS)
                .map(|_| {
                    crate::domain::FieldViolation::new(
                        "grace_period_seconds",
                        format!("must be at most {}", DeploymentSpec::MAX_SECONDS),
                    )
                }),
        )?;
        let placement = self.route(id, operation, placement).await?;
        let supervisor = self.supervisor(id, deployment_id).await?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Operate {
            operation,
            grace,
            placement,
            actor: crate::domain::current_actor(),
            reply,
        };
        supervisor
            .send(command)
            .await
            .map_err(|_| OrchestratorError::workload_not_found(id))?;
        answer
            .await
            .map_err(|_| OrchestratorError::workload_not_found(id))?
    }

    /// Stops the workload if it runs, then removes it with its logs.
    pub async fn delete_workload(&self, id: &WorkloadId) -> Result<()> {
        self.route_to_owner(id).await?;
        let supervisor = self.supervisor(id, None).await?;
        let (reply, answer) = oneshot::channel();
        supervisor
            .send(Command::Delete {
                actor: crate::domain::current_actor(),
                reply,
            })
            .await
            .map_err(|_| OrchestratorError::workload_not_found(id))?;
        answer
            .await
            .map_err(|_| OrchestratorError::workload_not_found(id))?
    }

    /// The workload's supervisor, started if it is not running.
    async fn supervisor(
        &self,
        id: &WorkloadId,
        deployment_id: Option<&DeploymentId>,
    ) -> Result<mpsc::Sender<Command>> {
        // A workload left by an earlier Slipway is controlled once reconcile
        // has adopted or stopped its instance.
        self.inner.wait_reconciled(id).await?;
        let existing = {
            let supervisors = self
                .inner
                .supervisors
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            supervisors
                .get(id)
                .filter(|sender| !sender.is_closed())
                .cloned()
        };
        let workload = match (&existing, deployment_id) {
            (Some(_), None) => None,
            _ => Some(self.get_workload(id).await?),
        };
        if let (Some(workload), Some(expected)) = (&workload, deployment_id) {
            if &workload.deployment_id != expected {
                return Err(OrchestratorError::NotFound {
                    kind: "workload",
                    id: format!("{id} in deployment {expected}"),
                });
            }
        }
        if let Some(sender) = existing {
            return Ok(sender);
        }
        let workload = workload.ok_or_else(|| OrchestratorError::workload_not_found(id))?;
        Ok(self.spawn_supervisor(workload))
    }

    /// Starts a supervisor that carries on with an adopted instance.
    fn spawn_adopted_supervisor(&self, supervisor: Supervisor, id: WorkloadId) {
        let (sender, commands) = mpsc::channel(64);
        let mut supervisors = self
            .inner
            .supervisors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        supervisors.insert(id, sender);
        tokio::spawn(supervisor.serve(commands));
    }

    /// Starts a supervisor for `workload` unless one runs already.
    fn spawn_supervisor(&self, workload: Workload) -> mpsc::Sender<Command> {
        let mut supervisors = self
            .inner
            .supervisors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(sender) = supervisors
            .get(&workload.id)
            .filter(|sender| !sender.is_closed())
        {
            return sender.clone();
        }
        let (sender, commands) = mpsc::channel(64);
        supervisors.insert(workload.id.clone(), sender.clone());
        let supervisor = Supervisor::new(self.inner.clone(), workload);
        tokio::spawn(supervisor.serve(commands));
        sender
    }

    // ----- logs and events ---------------------------------------------------

    /// Up to `limit` stored lines after `after_seq`, the last stored seq, and how
    /// many lines after `after_seq` retention dropped before the first returned.
    pub async fn get_logs(
        &self,
        id: &WorkloadId,
        after_seq: u64,
        limit: u64,
    ) -> Result<(Vec<LogLine>, u64, u64)> {
        OrchestratorError::refuse(crate::domain::validate_position("after_seq", after_seq))?;
        self.get_workload(id).await?;
        // Readers use the readers' pool: they never take a writer's connection.
        let store = &self.inner.store.for_reading();
        let first = store.first_log_seq(id).await?;
        let dropped = first.map_or(0, |first| first.saturating_sub(after_seq + 1));
        let lines = store.read_log_lines(id, after_seq, limit).await?;
        let last = store.last_log_seq(id).await?;
        Ok((lines, last, dropped))
    }

    /// A reader of the workload's log as `query` asks.
    pub async fn read_logs(&self, id: &WorkloadId, query: LogQuery) -> Result<LogReader> {
        let generation = query.filter.generation;
        OrchestratorError::refuse(
            crate::domain::validate_position("from_seq", query.from_seq)
                .into_iter()
                .chain(
                    generation
                        .and_then(|value| crate::domain::validate_position("generation", value)),
                ),
        )?;
        let workload = self.get_workload(id).await?;
        let store = &self.inner.store.for_reading();
        let after_seq = match (query.tail, query.filter.since) {
            (Some(tail), _) => store.tail_start(id, tail, &query.filter).await?,
            (None, Some(since)) => store
                .seq_before_time(id, since.0)
                .await?
                .max(query.from_seq.saturating_sub(1)),
            (None, None) => query.from_seq.saturating_sub(1),
        };
        Ok(self.inner.logs.reader(
            id,
            after_seq,
            query.follow,
            workload.stage.is_terminal(),
            query.filter,
        ))
    }

    /// Events after `since` that pass `filter`, then live ones, with a bookmark
    /// after `bookmark_interval` without any.
    pub async fn watch_events(
        &self,
        since: u64,
        filter: EventFilter,
        bookmark_interval: Duration,
    ) -> Result<impl Stream<Item = Result<WatchItem>> + Send + 'static> {
        use futures::StreamExt;
        let events = self
            .inner
            .events
            .watch(since, filter, bookmark_interval)
            .await?;
        Ok(events.map(|item| item.map_err(OrchestratorError::from)))
    }

    /// The newest event revision.
    pub fn revision(&self) -> u64 {
        self.inner.events.latest_revision()
    }

    /// The port pool (for inspection).
    pub fn ports(&self) -> &PortPool {
        &self.inner.ports
    }

    /// The log pipeline's counts of lines stored and dropped (for the metrics).
    pub fn log_counters(&self) -> crate::logs::LogCounters {
        self.inner.logs.counters().clone()
    }
}
