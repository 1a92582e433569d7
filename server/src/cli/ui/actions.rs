//! What the UI can do to workloads and nodes, what each costs (the sentence a
//! confirmation shows), and when it applies. Workload actions apply only when
//! the workload's `allowed_actions` (the server's one admission rule) names
//! them; node actions when the node's state says so.

use slipway_sdk::proto::{Action, Node, NodeScheduling, NodeState, Workload};

/// A control on workloads, offered when the workload's `allowed_actions` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadAction {
    Start,
    Stop,
    Restart,
    Delete,
}

impl WorkloadAction {
    /// The `allowed_actions` entry that admits this action.
    pub fn proto(self) -> Action {
        match self {
            WorkloadAction::Start => Action::Start,
            WorkloadAction::Stop => Action::Stop,
            WorkloadAction::Restart => Action::Restart,
            WorkloadAction::Delete => Action::Delete,
        }
    }

    /// `stop`, as people read it.
    pub fn verb(self) -> &'static str {
        self.proto().label()
    }

    /// Whether `workload` admits this action now.
    pub fn allowed_for(self, workload: &Workload) -> bool {
        workload.allowed_actions.contains(&(self.proto() as i32))
    }

    /// What the action does to each workload, for the confirmation.
    pub fn impact(self) -> &'static str {
        match self {
            WorkloadAction::Start => "runs the pipeline (validate, build, deploy) until RUNNING",
            WorkloadAction::Stop => {
                "sends the stop signal, kills after the grace period; ends STOPPED"
            }
            WorkloadAction::Restart => {
                "stops it if it runs, then runs it again as the next generation"
            }
            WorkloadAction::Delete => "stops it if needed, then removes it and its logs for good",
        }
    }
}

/// The node controls the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeActionKind {
    Pause,
    Resume,
    Drain,
}

/// A control on a node: its key, what it does, when it applies, and whether
/// it needs the node's name typed out.
#[derive(Debug)]
pub struct NodeAction {
    pub kind: NodeActionKind,
    pub key: char,
    pub verb: &'static str,
    /// What it does, for the confirmation.
    pub impact: &'static str,
    /// Whether it applies to this node.
    pub applies: fn(&Node) -> bool,
    /// Whether the server will refuse it without `force` and the node's name
    /// (given the node and every node): then the confirmation asks for the name.
    pub needs_typed_confirmation: fn(&Node, &[Node]) -> bool,
}

fn is_active(node: &Node) -> bool {
    node.state == NodeState::Active as i32
}

fn is_paused(node: &Node) -> bool {
    node.scheduling != NodeScheduling::Eligible as i32
}

fn is_draining_or_drained(node: &Node) -> bool {
    node.scheduling == NodeScheduling::Draining as i32
        || node.scheduling == NodeScheduling::Drained as i32
}

fn takes_work(node: &Node) -> bool {
    is_active(node) && !is_paused(node)
}

/// The node controls, in the order the help lists them.
pub const NODE_ACTIONS: &[NodeAction] = &[
    NodeAction {
        kind: NodeActionKind::Pause,
        key: 'p',
        verb: "pause",
        impact: "it takes no new workloads; what runs there keeps running",
        applies: |node| is_active(node) && !is_paused(node),
        // Pausing the last node that takes work leaves nothing to place on.
        needs_typed_confirmation: |node, all| {
            !all.iter()
                .any(|other| other.id != node.id && takes_work(other))
        },
    },
    NodeAction {
        kind: NodeActionKind::Resume,
        key: 'u',
        verb: "resume",
        impact: "it takes new workloads again (and starts those waiting for it)",
        applies: is_paused,
        needs_typed_confirmation: |_, _| false,
    },
    NodeAction {
        kind: NodeActionKind::Drain,
        key: 'd',
        verb: "drain",
        impact: "it takes no new workloads, and each of its workloads moves to another node (a replacement ready first, then the old one stops); it ends drained",
        applies: |node| is_active(node) && !is_draining_or_drained(node),
        // Draining the last node that takes work leaves its workloads nowhere to go.
        needs_typed_confirmation: |node, all| {
            !all.iter()
                .any(|other| other.id != node.id && takes_work(other))
        },
    },
];

/// The node action bound to `key`, if any.
pub fn node_action_for_key(key: char) -> Option<&'static NodeAction> {
    NODE_ACTIONS.iter().find(|action| action.key == key)
}
