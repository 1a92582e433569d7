//! Nodes: every `slipway serve` is one. They register in the shared database,
//! heartbeat, and judge each other by the heartbeat TTL each declares.

use std::{collections::BTreeMap, time::Duration};

use super::{NodeId, Timestamp};

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Heartbeating and taking work.
    Active,
    /// Missed its heartbeat TTL and was declared lost.
    Down,
    /// Shut down cleanly and deregistered.
    Left,
}

impl NodeState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Down => "down",
            NodeState::Left => "left",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<NodeState> {
        match text {
            "active" => Some(NodeState::Active),
            "down" => Some(NodeState::Down),
            "left" => Some(NodeState::Left),
            _ => None,
        }
    }
}

/// What a node says about itself when it registers.
/// Whether placement may give a node new workloads: an operator's decision,
/// kept across the node's restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduling {
    /// It takes new workloads.
    #[default]
    Eligible,
    /// Paused: no new workloads; what runs there keeps running.
    Paused,
    /// Being drained: no new workloads, and its workloads move elsewhere.
    Draining,
    /// Drained: no new workloads and none of its own left running.
    Drained,
}

impl Scheduling {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduling::Eligible => "eligible",
            Scheduling::Paused => "paused",
            Scheduling::Draining => "draining",
            Scheduling::Drained => "drained",
        }
    }

    pub fn parse(text: &str) -> Option<Scheduling> {
        match text {
            "eligible" => Some(Scheduling::Eligible),
            "paused" => Some(Scheduling::Paused),
            "draining" => Some(Scheduling::Draining),
            "drained" => Some(Scheduling::Drained),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    pub id: NodeId,
    pub name: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub runtimes: Vec<String>,
    /// The most workloads it runs at once; 0 for no limit.
    pub capacity: u32,
    pub version: String,
    pub heartbeat_interval: Duration,
    pub heartbeat_ttl: Duration,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub registration: NodeRegistration,
    pub state: NodeState,
    /// Counts the registrations of this id: each start is a new incarnation.
    pub incarnation: u64,
    pub registered_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// Why it is down, when it is.
    pub reason: String,
    /// Its workloads that are not stopped or failed.
    pub active_workloads: u32,
    /// Whether placement may give it new workloads.
    pub scheduling: Scheduling,
}
