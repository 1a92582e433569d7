//! A workload: one run of a deployment, and the runs after it.

use super::{DeploymentId, Health, NodeId, Stage, Timestamp, WorkloadId};

/// A workload's state, as stored and as returned to clients.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Workload {
    pub id: WorkloadId,
    pub deployment_id: DeploymentId,
    pub stage: Stage,
    pub health: Health,
    /// 1 for the first run, + 1 per restart.
    pub generation: u64,
    /// The port from the pool while the run holds one.
    pub port: Option<u16>,
    /// The runtime's handle: a pid or a container id.
    pub runtime_id: Option<String>,
    /// For processes, the start time of `runtime_id` (clock ticks since boot), so a
    /// reused pid is never taken for the workload's process.
    pub process_start_time: Option<u64>,
    /// Why the run failed or was stopped, when it did.
    pub error: Option<String>,
    /// The stage the run failed in.
    pub failed_stage: Option<Stage>,
    pub exit_code: Option<i32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    /// The revision of the event that last changed the workload: watch from here.
    pub revision: u64,
    /// Restarts by the restart policy in the current streak.
    #[serde(default)]
    pub restart_count: u32,
    /// When the restart policy runs it again, while it waits.
    #[serde(default)]
    pub next_restart_at: Option<Timestamp>,
    /// What the runtime could not apply to the current run as its spec asks
    /// (a resource limit without its cgroup controller, …): reported, never
    /// silently ignored. Cleared when a new run starts.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The node that owns the workload's run (runs it, or ran it last); none
    /// while no node does (never started, or its node was lost).
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Raised each time the workload changes owner. A write by an owner holds
    /// the epoch it was given and is refused once the epoch moved on, so a node
    /// that lost the workload can never overwrite what a newer owner wrote.
    #[serde(default)]
    pub owner_epoch: u64,
    /// Set while the workload waits to be placed on a node (PENDING): why no
    /// node runs it yet.
    #[serde(default)]
    pub pending_reason: Option<String>,
    /// The deployment revision whose spec the current (or last) run started
    /// from; none before the first run.
    #[serde(default)]
    pub spec_revision: Option<u64>,
}

impl Workload {
    /// A new, pending workload of a deployment.
    pub fn new(deployment_id: DeploymentId) -> Self {
        let created_at = super::now();
        Self {
            id: WorkloadId::generate(),
            deployment_id,
            stage: Stage::Pending,
            health: Health::Unknown,
            generation: 1,
            port: None,
            runtime_id: None,
            process_start_time: None,
            error: None,
            failed_stage: None,
            exit_code: None,
            created_at,
            updated_at: created_at,
            started_at: None,
            stopped_at: None,
            revision: 0,
            restart_count: 0,
            next_restart_at: None,
            warnings: Vec::new(),
            node_id: None,
            owner_epoch: 0,
            pending_reason: None,
            spec_revision: None,
        }
    }
}
