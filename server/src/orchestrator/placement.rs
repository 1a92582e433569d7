//! Placement: which node runs a workload. A node is eligible when it is up,
//! offers the deployment's runtime, has room (`--max-workloads`) and carries
//! every label of the deployment's node selector; of those, the one that runs
//! the fewest workloads is chosen. The choice is explained in an event; a
//! workload that fits nowhere waits, PENDING with the reason, until one fits.

use std::collections::BTreeMap;

use super::{Orchestrator, OrchestratorError};
use crate::domain::{Deployment, Node, NodeState, Scheduling};

/// Where a workload's next run goes.
#[derive(Debug)]
pub enum Placement {
    /// On this node; why, when there was a choice (more than one node).
    Here(Option<String>),
    /// On another node; why.
    There { node: Box<Node>, why: String },
    /// On no node now; why, node by node.
    Nowhere(String),
}

/// Why `node` cannot run `deployment`, if it cannot.
fn unfit(node: &Node, deployment: &Deployment) -> Option<String> {
    let runtime = deployment.spec.runtime.as_str();
    let registration = &node.registration;
    if node.state != NodeState::Active {
        return Some(format!("is {}", node.state.as_str()));
    }
    if node.scheduling != Scheduling::Eligible {
        return Some(format!("is {}", node.scheduling.as_str()));
    }
    if !registration
        .runtimes
        .iter()
        .any(|offered| offered == runtime)
    {
        return Some(format!("does not offer the {runtime} runtime"));
    }
    if registration.capacity > 0 && node.active_workloads >= registration.capacity {
        return Some(format!(
            "is full ({} of {} workloads)",
            node.active_workloads, registration.capacity
        ));
    }
    let missing: Vec<String> = deployment
        .spec
        .node_selector
        .iter()
        .filter(|(key, value)| registration.labels.get(*key) != Some(*value))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !missing.is_empty() {
        return Some(format!("lacks the label {}", missing.join(", ")));
    }
    None
}

impl Orchestrator {
    /// Where the next run of a workload of `deployment` goes. With
    /// `prefer_here`, this node wins a tie (a call that reached it needs no
    /// forwarding); without, ties go to the lowest node id, so that every node
    /// that looks at a waiting workload picks the same one.
    pub(super) async fn place(
        &self,
        deployment: &Deployment,
        prefer_here: bool,
    ) -> Result<Placement, OrchestratorError> {
        let nodes = self.inner.store.nodes(false).await?;
        if nodes.is_empty() {
            // No node registered (an orchestrator on its own, as in tests).
            return Ok(Placement::Here(None));
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut eligible: Vec<&Node> = Vec::new();
        for node in &nodes {
            match unfit(node, deployment) {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => eligible.push(node),
            }
        }
        let here = &self.inner.node_id;
        let Some(chosen) = eligible.iter().copied().min_by(|a, b| {
            a.active_workloads
                .cmp(&b.active_workloads)
                .then_with(|| {
                    let a_here = prefer_here && &a.registration.id == here;
                    let b_here = prefer_here && &b.registration.id == here;
                    b_here.cmp(&a_here)
                })
                .then_with(|| a.registration.id.cmp(&b.registration.id))
        }) else {
            let why = reasons
                .iter()
                .map(|(reason, count)| {
                    let noun = if *count == 1 { "node" } else { "nodes" };
                    format!("{count} {noun} {reason}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(Placement::Nowhere(format!(
                "no node fits: 0 of {} nodes can run it ({why})",
                nodes.len()
            )));
        };
        let why = format!(
            "placed on node {}: {} of {} nodes fit, it runs the fewest workloads ({})",
            chosen.registration.name,
            eligible.len(),
            nodes.len(),
            chosen.active_workloads
        );
        if &chosen.registration.id == here {
            Ok(Placement::Here((nodes.len() > 1).then_some(why)))
        } else {
            Ok(Placement::There {
                node: Box::new(chosen.clone()),
                why,
            })
        }
    }
}
