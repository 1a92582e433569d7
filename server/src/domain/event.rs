//! Events: every change of state, with a global, increasing revision.

use serde::{Deserialize, Serialize};

use super::{DeploymentId, Timestamp, Workload, WorkloadId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    DeploymentCreated,
    DeploymentDeleted,
    /// A new revision of the deployment's spec or labels.
    DeploymentUpdated,
    WorkloadCreated,
    /// A stage or health change; the event carries the new snapshot.
    WorkloadUpdated,
    WorkloadDeleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DeploymentCreated => "deployment_created",
            EventKind::DeploymentDeleted => "deployment_deleted",
            EventKind::DeploymentUpdated => "deployment_updated",
            EventKind::WorkloadCreated => "workload_created",
            EventKind::WorkloadUpdated => "workload_updated",
            EventKind::WorkloadDeleted => "workload_deleted",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        [
            EventKind::DeploymentCreated,
            EventKind::DeploymentDeleted,
            EventKind::DeploymentUpdated,
            EventKind::WorkloadCreated,
            EventKind::WorkloadUpdated,
            EventKind::WorkloadDeleted,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

tokio::task_local! {
    /// Who the code running in this task acts for: set by the access layer
    /// around each call (the caller's name), and by fleet operations.
    static ACTOR: String;
}

/// Runs `work` acting for `actor`: the events it causes name them.
pub async fn acting_as<F: std::future::Future>(actor: String, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// Who the current task acts for, if anyone (none: Slipway itself, as for a
/// restart policy, a health check or a fail-over).
pub fn current_actor() -> Option<String> {
    ACTOR.try_with(Clone::clone).ok()
}

/// An event before it has its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub deployment_id: DeploymentId,
    pub workload_id: Option<WorkloadId>,
    /// The workload's state after the change, for workload events.
    pub workload: Option<Workload>,
    pub message: String,
    /// Who caused it; none for Slipway's own doing.
    pub actor: Option<String>,
}

impl NewEvent {
    /// An event about a workload, carrying its snapshot, caused by whoever the
    /// current task acts for.
    pub fn workload(kind: EventKind, workload: &Workload, message: impl Into<String>) -> Self {
        Self {
            kind,
            deployment_id: workload.deployment_id.clone(),
            workload_id: Some(workload.id.clone()),
            workload: Some(workload.clone()),
            message: message.into(),
            actor: current_actor(),
        }
    }

    /// The same event, caused by `actor`.
    pub fn by(mut self, actor: Option<String>) -> Self {
        self.actor = actor;
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub revision: u64,
    pub timestamp: Timestamp,
    pub kind: EventKind,
    pub deployment_id: DeploymentId,
    pub workload_id: Option<WorkloadId>,
    pub workload: Option<Workload>,
    pub message: String,
    pub actor: Option<String>,
}
