//! What the orchestrator tells callers when it cannot do what they asked.

use crate::{
    domain::{DeploymentId, FieldViolation, Stage, WorkloadId},
    events::{CommitError, WatchError},
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("invalid request: {}", describe(violations))]
    InvalidArgument { violations: Vec<FieldViolation> },
    /// The workload's stage does not allow the operation.
    #[error("{message}")]
    InvalidState {
        workload_id: WorkloadId,
        current_stage: Stage,
        message: String,
    },
    #[error("a deployment named {name:?} already exists")]
    AlreadyExists { name: String },
    /// The deployment still has workloads (they kept being created while it was
    /// deleted).
    #[error("deployment {id} still has workloads")]
    DeploymentInUse { id: DeploymentId },
    /// A watch asked for events that are no longer retained.
    #[error("revision {requested} is no longer retained; the oldest retained revision is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    /// A watch asked for a revision that does not exist yet.
    #[error("revision {requested} is ahead of the current revision {current}")]
    RevisionAhead { requested: u64, current: u64 },
    /// A change of a deployment named a revision that is not its current one
    /// (or another change won the race from the same revision).
    #[error(
        "deployment {id} is at revision {current}: the change was made from another revision; read it again and retry"
    )]
    RevisionConflict { id: DeploymentId, current: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The call is for another node: the workload's owner, or the node
    /// placement chose for its next run (`placement` says why). The API
    /// forwards it there.
    #[error("workload {workload_id} is run by node {} at {}", node.registration.name, node.registration.address)]
    Elsewhere {
        workload_id: WorkloadId,
        node: Box<crate::domain::Node>,
        placement: Option<String>,
    },
    /// No node can run the workload now: it waits, PENDING with the reason,
    /// and is placed once a node fits.
    #[error(
        "no node can run workload {workload_id} now, it stays pending and starts once a node fits: {reason}"
    )]
    NoNodeFits {
        workload_id: WorkloadId,
        reason: String,
    },
    /// Something broke inside; the details are logged, not sent.
    #[error("internal error while {context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl OrchestratorError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            violations: vec![FieldViolation::new(field, description)],
        }
    }

    /// `Ok` when there is no violation, else `InvalidArgument` naming each one.
    pub fn refuse(violations: impl IntoIterator<Item = FieldViolation>) -> Result<(), Self> {
        let violations: Vec<FieldViolation> = violations.into_iter().collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Self::InvalidArgument { violations })
        }
    }

    pub fn workload_not_found(id: impl ToString) -> Self {
        Self::NotFound {
            kind: "workload",
            id: id.to_string(),
        }
    }

    pub fn deployment_not_found(id: impl ToString) -> Self {
        Self::NotFound {
            kind: "deployment",
            id: id.to_string(),
        }
    }

    pub(crate) fn internal(
        context: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            context,
            source: Box::new(source),
        }
    }
}

impl From<StoreError> for OrchestratorError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NameTaken { name } => Self::AlreadyExists { name },
            StoreError::DeploymentNotFound { id } => Self::deployment_not_found(id),
            StoreError::DeploymentHasWorkloads { id } => Self::DeploymentInUse { id },
            StoreError::RevisionConflict { id, current } => Self::RevisionConflict { id, current },
            other => Self::internal("using the store", other),
        }
    }
}

impl From<CommitError> for OrchestratorError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Store(store) => store.into(),
            CommitError::Closed => Self::Unavailable("the server is shutting down".to_owned()),
        }
    }
}

impl From<WatchError> for OrchestratorError {
    fn from(error: WatchError) -> Self {
        match error {
            WatchError::Compacted { requested, oldest } => Self::Compacted { requested, oldest },
            WatchError::Ahead { requested, current } => Self::RevisionAhead { requested, current },
            WatchError::Store(store) => store.into(),
        }
    }
}
