//! Operators' controls of a node: pause (no new workloads; what runs keeps
//! running) and resume; a drain (`crate::fleet`) starts with the same check.
//! Taking the last node that takes work out of placement, or more than the
//! configured share of the fleet, is refused unless forced, with the node's
//! name typed out as confirmation.

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

/// The most of the fleet that may take no new workloads at once, in percent
/// of the active nodes (`--max-unavailable-nodes`).
#[derive(Debug, Clone, Copy)]
pub struct Safety {
    pub max_unavailable_percent: u32,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_unavailable_percent: 50,
        }
    }
}

/// The node `target` names (an id or a name).
pub async fn find(store: &Store, target: &str) -> Result<Node, ControlError> {
    store
        .node(target)
        .await?
        .ok_or_else(|| ControlError::NotFound(target.to_owned()))
}

/// Refuses to take `node` out of placement (`action`: "pause", "drain") when
/// no other node would take work then, or when more than the allowed share of
/// the active nodes would take none, unless `force` comes with the node's name
/// as `confirm`.
pub async fn check_safe(
    store: &Store,
    node: &Node,
    action: &str,
    safety: Safety,
    force: bool,
    confirm: &str,
) -> Result<(), ControlError> {
    let name = &node.registration.name;
    let active: Vec<Node> = store
        .nodes(false)
        .await?
        .into_iter()
        .filter(|other| other.state == NodeState::Active)
        .collect();
    let others_take_work = active.iter().any(|other| {
        other.registration.id != node.registration.id && other.scheduling == Scheduling::Eligible
    });
    let out_after = active
        .iter()
        .filter(|other| {
            other.registration.id == node.registration.id
                || other.scheduling != Scheduling::Eligible
        })
        .count();
    let share = out_after * 100 / active.len().max(1);
    let why = if !others_take_work {
        Some(format!(
            "node {name} is the last node that takes new workloads: {}, no workload could start anywhere until a node is resumed",
            if action == "drain" {
                "drained, its workloads have nowhere to go and would be stopped with force"
            } else {
                "paused"
            }
        ))
    } else if share > safety.max_unavailable_percent as usize {
        Some(format!(
            "{out_after} of {} active nodes ({share}%) would take no new workloads, more than the {}% allowed (--max-unavailable-nodes)",
            active.len(),
            safety.max_unavailable_percent
        ))
    } else {
        None
    };
    let Some(why) = why else { return Ok(()) };
    if force && confirm == name {
        tracing::warn!(node = %name, action, "forced past a safety check: {why}");
        return Ok(());
    }
    let how = if force {
        format!("the confirmation must be the node's name, {name:?}")
    } else {
        format!(
            "to {action} it anyway, add force with the confirmation {name:?} (slipway node {action} {name} --force --confirm {name})"
        )
    };
    Err(ControlError::Refused(format!("{why}; {how}")))
}

/// Pauses `target` (an id or a name): placement gives it no new workloads.
pub async fn pause(
    store: &Store,
    target: &str,
    safety: Safety,
    force: bool,
    confirm: &str,
) -> Result<Node, ControlError> {
    let node = find(store, target).await?;
    if node.scheduling != Scheduling::Eligible {
        return Ok(node);
    }
    check_safe(store, &node, "pause", safety, force, confirm).await?;
    store
        .set_node_scheduling(&node.registration.id, Scheduling::Paused)
        .await?;
    tracing::info!(node = %node.registration.id, name = %node.registration.name, "paused a node");
    Ok(Node {
        scheduling: Scheduling::Paused,
        ..node
    })
}

/// Resumes `target`: it takes new workloads again.
pub async fn resume(store: &Store, target: &str) -> Result<Node, ControlError> {
    let node = find(store, target).await?;
    store
        .set_node_scheduling(&node.registration.id, Scheduling::Eligible)
        .await?;
    tracing::info!(node = %node.registration.id, name = %node.registration.name, "resumed a node");
    Ok(Node {
        scheduling: Scheduling::Eligible,
        ..node
    })
}
