//! Operators' controls of a node: pause (no new workloads; what runs keeps
//! running) and resume. Taking the last node that takes work out of placement
//! is refused unless forced, with the node's name typed out as confirmation.

use crate::{
    domain::{Node, NodeState, Scheduling},
    store::{Store, StoreError},
};

/// Why a control was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("node {0} not found")]
    NotFound(String),
    /// Unsafe without `force` and a confirmation: what would happen, and how
    /// to do it anyway.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pauses `target` (an id or a name): placement gives it no new workloads.
pub async fn pause(
    store: &Store,
    target: &str,
    force: bool,
    confirm: &str,
) -> Result<Node, ControlError> {
    let node = store
        .node(target)
        .await?
        .ok_or_else(|| ControlError::NotFound(target.to_owned()))?;
    let name = &node.registration.name;
    if node.scheduling == Scheduling::Paused {
        return Ok(node);
    }
    let others_take_work = store.nodes(false).await?.iter().any(|other| {
        other.registration.id != node.registration.id
            && other.state == NodeState::Active
            && other.scheduling == Scheduling::Eligible
    });
    if !others_take_work {
        let confirmed = force && confirm == name;
        if !confirmed {
            let how = if force {
                format!("the confirmation must be the node's name, {name:?}")
            } else {
                format!(
                    "to pause it anyway, add force with the confirmation {name:?} (slipway node pause {name} --force --confirm {name})"
                )
            };
            return Err(ControlError::Refused(format!(
                "node {name} is the last node that takes new workloads: paused, no workload could start anywhere until a node is resumed; {how}"
            )));
        }
    }
    store
        .set_node_scheduling(&node.registration.id, Scheduling::Paused)
        .await?;
    tracing::info!(node = %node.registration.id, name = %name, "paused a node");
    Ok(Node {
        scheduling: Scheduling::Paused,
        ..node
    })
}

/// Resumes `target`: it takes new workloads again.
pub async fn resume(store: &Store, target: &str) -> Result<Node, ControlError> {
    let node = store
        .node(target)
        .await?
        .ok_or_else(|| ControlError::NotFound(target.to_owned()))?;
    store
        .set_node_scheduling(&node.registration.id, Scheduling::Eligible)
        .await?;
    tracing::info!(node = %node.registration.id, name = %node.registration.name, "resumed a node");
    Ok(Node {
        scheduling: Scheduling::Eligible,
        ..node
    })
}
