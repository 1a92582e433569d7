//! Fleet operations: draining a node and rolling restarts of a set of
//! workloads. Each is a row (`store::fleet`) with an item per workload; the
//! node that creates one carries it out, and every node's sweep takes over the
//! operations of nodes that are lost (or of this node's earlier run), resuming
//! from the items' recorded progress. See [`runner`] for how an operation
//! proceeds, and `node::controls` for the safety checks it shares with pause.

mod control;
mod rollout;
mod runner;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

pub use control::Control;

use crate::{
    domain::{
        DeploymentId, FailurePolicy, FieldViolation, FleetItem, FleetOperation, FleetParams,
        FleetState, MaxUnavailable, NodeId, NodeState, Scheduling, Stage, Timestamp, Workload, now,
    },
    node::controls::{self, ControlError, Safety},
    orchestrator::Orchestrator,
    store::{Store, StoreError},
};

/// Deployments read at once when a selector is matched.
const DEPLOYMENT_PAGE: u64 = 500;

/// How often a node looks for operations to take over.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The defaults a Nomad user knows: a drain has an hour, moves one workload at
/// a time, a replacement counts as healthy after 10 s of readiness, and one
/// that is not within 5 min has failed.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);
pub const DEFAULT_MIN_HEALTHY: Duration = Duration::from_secs(10);
pub const DEFAULT_HEALTHY_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    NotFound(String),
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// Unsafe without force and a confirmation.
    #[error("{0}")]
    Refused(String),
    /// Not possible in the operation's or node's present state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ControlError> for FleetError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::NotFound(node) => FleetError::NotFound(format!("node {node} not found")),
            ControlError::Refused(why) => FleetError::Refused(why),
            ControlError::Store(error) => FleetError::Store(error),
        }
    }
}

/// Settings from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetSettings {
    pub safety: Safety,
    /// The fewest running workloads a deployment keeps during a rolling
    /// restart (`--min-available`); a request may ask for more.
    pub min_available: u32,
}

pub struct DrainRequest {
    pub node: String,
    pub deadline: Option<Duration>,
    pub parallel: u32,
    pub min_healthy: Option<Duration>,
    pub healthy_deadline: Option<Duration>,
    pub force: bool,
    pub confirm: String,
}

/// The workloads a rolling restart acts on.
pub enum RestartSet {
    Deployment(String),
    Selector(BTreeMap<String, String>),
    Nodes(Vec<String>),
}

pub struct RollingRequest {
    pub set: RestartSet,
    pub max_unavailable: String,
    pub min_healthy: Option<Duration>,
    pub healthy_deadline: Option<Duration>,
    pub deadline: Option<Duration>,
    pub on_failure: FailurePolicy,
    pub min_available: u32,
    pub force: bool,
    pub confirm: String,
}

struct Inner {
    store: Store,
    orchestrator: Orchestrator,
    control: Control,
    node_id: NodeId,
    settings: FleetSettings,
    /// The operations this process carries out now.
    running: Mutex<HashSet<String>>,
}

/// Creates, carries out and takes over fleet operations. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn after(duration: Duration) -> Timestamp {
    Timestamp(
        now()
            .0
            .saturating_add(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)),
    )
}

impl Fleet {
    /// Starts the fleet controls, and the sweep that takes operations over.
    pub fn start(
        store: Store,
        orchestrator: Orchestrator,
        control: Control,
        node_id: NodeId,
        settings: FleetSettings,
    ) -> Fleet {
        let fleet = Fleet {
            inner: Arc::new(Inner {
                store,
                orchestrator,
                control,
                node_id,
                settings,
                running: Mutex::new(HashSet::new()),
            }),
        };
        fleet.spawn_sweeps();
        fleet
    }

    pub fn settings(&self) -> FleetSettings {
        self.inner.settings
    }

    fn spawn_sweeps(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let fleet = Fleet { inner };
                if let Err(error) = fleet.adopt().await {
                    tracing::warn!(%error, "looking for fleet operations to take over failed");
                }
            }
        });
    }

    /// Takes over the operations under way whose node is lost, or that this
    /// node carried out before it restarted.
    async fn adopt(&self) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for operation in store.operations_to_adopt(&self.inner.node_id).await? {
            if self.is_running(&operation.id) {
                continue;
            }
            if let Some(claimed) = store
                .claim_operation(&operation, &self.inner.node_id)
                .await?
            {
                tracing::warn!(
                    operation = %claimed.id,
                    from = ?operation.node_id,
                    "took over a fleet operation"
                );
                self.spawn_run(claimed);
            }
        }
        Ok(())
    }

    fn is_running(&self, id: &str) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(id)
    }

    pub async fn get(&self, id: &str) -> Result<FleetOperation, FleetError> {
        self.inner
            .store
            .operation(id)
            .await?
            .ok_or_else(|| FleetError::NotFound(format!("operation {id} not found")))
    }

    pub async fn list(
        &self,
        states: &[FleetState],
        limit: u64,
    ) -> Result<Vec<FleetOperation>, FleetError> {
        Ok(self.inner.store.operations(states, limit).await?)
    }

    /// Pause, resume or cancel: the node carrying the operation out sees the
    /// new state at its next step.
    pub async fn set_state(&self, id: &str, to: FleetState) -> Result<FleetOperation, FleetError> {
        let current = self.get(id).await?;
        let from: &[FleetState] = match to {
            FleetState::Paused => &[FleetState::Running],
            FleetState::Running => &[FleetState::Paused],
            _ => &[FleetState::Running, FleetState::Paused],
        };
        if current.state == to {
            return Ok(current);
        }
        if !from.contains(&current.state) {
            return Err(FleetError::Conflict(format!(
                "operation {id} is {}: it cannot be {}",
                current.state.as_str(),
                match to {
                    FleetState::Paused => "paused",
                    FleetState::Running => "resumed",
                    _ => "cancelled",
                }
            )));
        }
        self.inner
            .store
            .set_operation_state(id, from, to)
            .await?
            .ok_or_else(|| FleetError::NotFound(format!("operation {id} not found")))
    }

    /// Drains a node: see `FleetService.DrainNode`.
    pub async fn drain(
        &self,
        actor: &str,
        request: DrainRequest,
    ) -> Result<FleetOperation, FleetError> {
        let mut violations = Vec::new();
        if request.node.trim().is_empty() {
            violations.push(FieldViolation::new(
                "node",
                "is required: a node id or name",
            ));
        }
        if request.force && request.confirm.is_empty() {
            violations.push(FieldViolation::new(
                "confirm",
                "is required with force: the node's name, typed out",
            ));
        }
        if !violations.is_empty() {
            return Err(FleetError::Invalid(violations));
        }
        let store = &self.inner.store;
        let node = controls::find(store, &request.node).await?;
        let name = node.registration.name.clone();
        if let Some(id) = store.drains_under_way().await?.get(&node.registration.id) {
            // Asked again: the drain under way is the answer.
            return self.get(id).await;
        }
        if node.state != NodeState::Active {
            return Err(FleetError::Conflict(format!(
                "node {name} is {}: its workloads are failed over to other nodes already",
                node.state.as_str()
            )));
        }
        controls::check_safe(
            store,
            &node,
            "drain",
            self.inner.settings.safety,
            request.force,
            &request.confirm,
        )
        .await?;
        store
            .set_node_scheduling(&node.registration.id, Scheduling::Draining)
            .await?;
        let live = store.live_workloads_on(&node.registration.id).await?;
        let items = self.items(&live).await;
        let created_at = now();
        let deadline = request.deadline.unwrap_or(DEFAULT_DEADLINE);
        let count = items.len();
        let operation = FleetOperation {
            id: FleetOperation::new_id(),
            params: FleetParams::Drain {
                node_id: node.registration.id.clone(),
                node_name: name.clone(),
                min_healthy_ms: millis(request.min_healthy.unwrap_or(DEFAULT_MIN_HEALTHY)),
                healthy_deadline_ms: millis(
                    request.healthy_deadline.unwrap_or(DEFAULT_HEALTHY_DEADLINE),
                ),
                force: request.force,
            },
            target: format!("node {name}"),
            state: FleetState::Running,
            message: format!("draining node {name}: {count} workloads to move"),
            items,
            parallel: request.parallel.max(1),
            node_id: Some(self.inner.node_id.clone()),
            owner_epoch: 1,
            actor: actor.to_owned(),
            created_at,
            updated_at: created_at,
            finished_at: None,
            deadline: after(deadline),
        };
        store.insert_operation(&operation).await?;
        tracing::info!(operation = %operation.id, node = %name, workloads = count, "draining a node");
        self.spawn_run(operation.clone());
        Ok(operation)
    }

    /// An item per workload, reading each deployment once (its name and stop
    /// grace period).
    async fn items(&self, workloads: &[Workload]) -> Vec<FleetItem> {
        let mut deployments: HashMap<DeploymentId, (String, Duration)> = HashMap::new();
        let mut items = Vec::new();
        for workload in workloads {
            let id = &workload.deployment_id;
            if !deployments.contains_key(id) {
                let known = match self.inner.orchestrator.get_deployment(id).await {
                    Ok(deployment) => (deployment.name, deployment.spec.stop_grace_period),
                    Err(_) => (String::new(), Duration::ZERO),
                };
                deployments.insert(id.clone(), known);
            }
            let (name, grace) = deployments[id].clone();
            items.push(FleetItem::new(workload.id.clone(), id.clone(), name, grace));
        }
        items
    }

    /// Restarts a set of workloads in place: see `FleetService.RollingRestart`.
    pub async fn rolling_restart(
        &self,
        actor: &str,
        request: RollingRequest,
    ) -> Result<FleetOperation, FleetError> {
        let mut violations = Vec::new();
        let max_unavailable = match MaxUnavailable::parse(&request.max_unavailable) {
            Ok(value) => Some(value),
            Err(why) => {
                violations.push(FieldViolation::new("max_unavailable", why));
                None
            }
        };
        let (field, target) = match &request.set {
            RestartSet::Deployment(name) if name.trim().is_empty() => {
                violations.push(FieldViolation::new(
                    "deployment",
                    "give a deployment, a selector or nodes",
                ));
                ("deployment", String::new())
            }
            RestartSet::Deployment(name) => ("deployment", name.clone()),
            RestartSet::Selector(labels) if labels.is_empty() => {
                violations.push(FieldViolation::new("selector", "is empty"));
                ("selector", String::new())
            }
            RestartSet::Selector(labels) => (
                "selector",
                labels
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            RestartSet::Nodes(nodes) if nodes.is_empty() => {
                violations.push(FieldViolation::new("nodes", "is empty"));
                ("nodes", String::new())
            }
            RestartSet::Nodes(nodes) => ("nodes", nodes.join(",")),
        };
        if request.force && request.confirm.is_empty() {
            violations.push(FieldViolation::new(
                "confirm",
                format!("is required with force: the target, typed out ({target:?})"),
            ));
        }
        let Some(max_unavailable) = max_unavailable.filter(|_| violations.is_empty()) else {
            return Err(FleetError::Invalid(violations));
        };
        let workloads = self.restart_set(&request.set).await?;
        if workloads.is_empty() {
            return Err(FleetError::Invalid(vec![FieldViolation::new(
                field,
                format!("{target:?} matches no running workload"),
            )]));
        }
        let parallel = max_unavailable.of(workloads.len());
        // The least a deployment keeps running while it restarts.
        let minimum = request.min_available.max(self.inner.settings.min_available);
        if minimum > 0 {
            let mut in_set: BTreeMap<DeploymentId, usize> = BTreeMap::new();
            for workload in &workloads {
                *in_set.entry(workload.deployment_id.clone()).or_default() += 1;
            }
            let mut below = Vec::new();
            for (deployment_id, count) in in_set {
                let running = self
                    .inner
                    .store
                    .workloads_of_deployment(&deployment_id)
                    .await?
                    .iter()
                    .filter(|workload| workload.stage == Stage::Running)
                    .count();
                let down = count.min(parallel as usize);
                let left = running.saturating_sub(down);
                if left < minimum as usize {
                    let name = self
                        .inner
                        .orchestrator
                        .get_deployment(&deployment_id)
                        .await
                        .map(|deployment| deployment.name)
                        .unwrap_or_else(|_| deployment_id.to_string());
                    below.push(format!(
                        "deployment {name} would have {left} of {running} workloads running, below the minimum of {minimum}"
                    ));
                }
            }
            let confirmed = request.force && request.confirm == target;
            if !below.is_empty() && !confirmed {
                let how = if request.force {
                    format!("the confirmation must be the target, {target:?}")
                } else {
                    format!("lower max_unavailable, or add force with the confirmation {target:?}")
                };
                return Err(FleetError::Refused(format!(
                    "restarting {parallel} at a time is unsafe: {}; {how}",
                    below.join("; ")
                )));
            }
        }
        let items = self.items(&workloads).await;
        let created_at = now();
        let count = items.len();
        let operation = FleetOperation {
            id: FleetOperation::new_id(),
            params: FleetParams::RollingRestart {
                max_unavailable: request.max_unavailable.trim().to_owned(),
                min_healthy_ms: millis(request.min_healthy.unwrap_or(DEFAULT_MIN_HEALTHY)),
                healthy_deadline_ms: millis(
                    request.healthy_deadline.unwrap_or(DEFAULT_HEALTHY_DEADLINE),
                ),
                on_failure: request.on_failure,
            },
            target: format!("{field} {target}"),
            state: FleetState::Running,
            message: format!("restarting {count} workloads, {parallel} at a time"),
            items,
            parallel,
            node_id: Some(self.inner.node_id.clone()),
            owner_epoch: 1,
            actor: actor.to_owned(),
            created_at,
            updated_at: created_at,
            finished_at: None,
            deadline: after(request.deadline.unwrap_or(DEFAULT_DEADLINE)),
        };
        self.inner.store.insert_operation(&operation).await?;
        tracing::info!(operation = %operation.id, target = %operation.target, workloads = count, "rolling restart");
        self.spawn_run(operation.clone());
        Ok(operation)
    }

    /// The running workloads of a rolling restart's set, in creation order.
    async fn restart_set(&self, set: &RestartSet) -> Result<Vec<Workload>, FleetError> {
        let store = &self.inner.store;
        let mut workloads = Vec::new();
        match set {
            RestartSet::Deployment(name) => {
                let deployment = match DeploymentId::parse(name) {
                    Ok(id) => store.get_deployment(&id).await?,
                    Err(_) => None,
                };
                let deployment = match deployment {
                    Some(deployment) => deployment,
                    None => store.find_deployment_by_name(name).await?.ok_or_else(|| {
                        FleetError::NotFound(format!("deployment {name} not found"))
                    })?,
                };
                workloads = store.workloads_of_deployment(&deployment.id).await?;
            }
            RestartSet::Selector(labels) => {
                let mut cursor = None;
                loop {
                    let page = store
                        .list_deployments(None, cursor.as_ref(), DEPLOYMENT_PAGE)
                        .await?;
                    for deployment in page.iter().filter(|deployment| {
                        labels
                            .iter()
                            .all(|(key, value)| deployment.labels.get(key) == Some(value))
                    }) {
                        workloads.extend(store.workloads_of_deployment(&deployment.id).await?);
                    }
                    match page.last() {
                        Some(last) if page.len() as u64 == DEPLOYMENT_PAGE => {
                            cursor = Some((last.created_at, last.id.to_string()));
                        }
                        _ => break,
                    }
                }
            }
            RestartSet::Nodes(nodes) => {
                for wanted in nodes {
                    let node = controls::find(store, wanted).await?;
                    workloads.extend(store.live_workloads_on(&node.registration.id).await?);
                }
            }
        }
        workloads.retain(|workload| workload.stage == Stage::Running);
        workloads.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        workloads.dedup_by(|a, b| a.id == b.id);
        Ok(workloads)
    }
}
