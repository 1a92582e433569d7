//! `slipway nodes` and `slipway node inspect`.

use std::collections::BTreeMap;

use serde::Serialize;
use slipway_sdk::{
    Client,
    proto::{
        FleetOperation, ListOperationsRequest, Node, NodeScheduling, NodeState, OperationState,
    },
};

use super::{
    args::NodesArgs,
    error::{CliError, EXIT_OK},
    output::{Printer, age, print_table, rfc3339},
};

/// A node, as `-o json` and `node inspect` print it.
#[derive(Debug, Serialize)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    pub address: String,
    pub state: &'static str,
    /// "eligible", or "paused", "draining", "drained" (no new workloads).
    pub scheduling: &'static str,
    /// The fleet operation acting on it (a drain), if one is.
    pub operation_id: String,
    pub reason: String,
    pub labels: BTreeMap<String, String>,
    pub runtimes: Vec<String>,
    /// 0: no limit.
    pub capacity: u32,
    pub active_workloads: u32,
    pub version: String,
    pub incarnation: u64,
    pub registered_at: Option<String>,
    pub last_heartbeat: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_ttl_ms: u64,
    /// The node that answered this request.
    pub answering: bool,
}

fn state_label(node: &Node) -> &'static str {
    match NodeState::try_from(node.state) {
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Paused as i32 => "paused",
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Draining as i32 => "draining",
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Drained as i32 => "drained",
        Ok(NodeState::Active) => "active",
        Ok(NodeState::Down) => "down",
        Ok(NodeState::Left) => "left",
        _ => "unspecified",
    }
}

impl NodeView {
    fn new(node: &Node) -> NodeView {
        NodeView {
            id: node.id.clone(),
            name: node.name.clone(),
            address: node.address.clone(),
            state: state_label(node),
            scheduling: match NodeScheduling::try_from(node.scheduling) {
                Ok(NodeScheduling::Paused) => "paused",
                Ok(NodeScheduling::Draining) => "draining",
                Ok(NodeScheduling::Drained) => "drained",
                _ => "eligible",
            },
            operation_id: node.operation_id.clone(),
            reason: node.reason.clone(),
            labels: node
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            runtimes: node.runtimes.clone(),
            capacity: node.capacity,
            active_workloads: node.active_workloads,
            version: node.version.clone(),
            incarnation: node.incarnation,
            registered_at: rfc3339(node.registered_at.as_ref()),
            last_heartbeat: rfc3339(node.last_heartbeat.as_ref()),
            heartbeat_interval_ms: node.heartbeat_interval_ms,
            heartbeat_ttl_ms: node.heartbeat_ttl_ms,
            answering: node.answering,
        }
    }
}

/// `slipway nodes`.
pub async fn list(client: &Client, printer: Printer, args: NodesArgs) -> Result<u8, CliError> {
    let nodes = client
        .list_nodes(args.all)
        .await
        .map_err(|error| CliError::server("cannot list nodes", error))?;
    if printer.json() {
        let views: Vec<NodeView> = nodes.iter().map(NodeView::new).collect();
        return printer.print_json(&views).map(|()| EXIT_OK);
    }
    // The drains under way, for the OPERATION column: progress and ETA (for
    // admins: others see the operation's id alone).
    let operations: std::collections::HashMap<String, FleetOperation> =
        if nodes.iter().any(|node| !node.operation_id.is_empty()) {
            client
                .list_operations(ListOperationsRequest {
                    states: vec![
                        OperationState::Running as i32,
                        OperationState::Paused as i32,
                    ],
                    limit: 0,
                })
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|operation| (operation.id.clone(), operation))
                .collect()
        } else {
            Default::default()
        };
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            let operation = match operations.get(&node.operation_id) {
                Some(operation) => format!(
                    "{} {}/{} eta {}s",
                    operation.id,
                    operation.finished_items,
                    operation.total_items,
                    operation.eta_ms.div_ceil(1000)
                ),
                None if !node.operation_id.is_empty() => node.operation_id.clone(),
                None => "-".to_owned(),
            };
            let name = if node.answering {
                format!("{} *", node.name)
            } else {
                node.name.clone()
            };
            let capacity = match node.capacity {
                0 => format!("{}", node.active_workloads),
                limit => format!("{}/{limit}", node.active_workloads),
            };
            let labels: Vec<String> = node
                .labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            vec![
                node.id.chars().take(12).collect(),
                name,
                node.address.clone(),
                state_label(node).to_owned(),
                capacity,
                age(node.last_heartbeat.as_ref()),
                node.version.clone(),
                if labels.is_empty() {
                    "-".to_owned()
                } else {
                    labels.join(",")
                },
                operation,
            ]
        })
        .collect();
    print_table(
        &[
            "NODE ID",
            "NAME",
            "ADDRESS",
            "STATE",
            "WORKLOADS",
            "HEARTBEAT",
            "VERSION",
            "LABELS",
            "OPERATION",
        ],
        &rows,
    );
    Ok(EXIT_OK)
}

/// `slipway node inspect NODE`.
pub async fn inspect(client: &Client, printer: Printer, node: &str) -> Result<u8, CliError> {
    let node = client
        .get_node(node)
        .await
        .map_err(|error| CliError::server("cannot read the node", error))?;
    printer.print_json(&NodeView::new(&node)).map(|()| EXIT_OK)
}

/// `slipway node pause NODE`.
pub async fn pause(
    client: &Client,
    printer: Printer,
    node: &str,
    force: bool,
    confirm: Option<String>,
) -> Result<u8, CliError> {
    let confirm = match (force, confirm) {
        (true, None) => super::fleet::ask_confirmation("the node's name", node)?,
        (_, confirm) => confirm.unwrap_or_default(),
    };
    let paused = client
        .pause_node(node, force, &confirm)
        .await
        .map_err(|error| CliError::server("cannot pause the node", error))?;
    report(printer, &paused, "paused: it takes no new workloads")
}

/// `slipway node resume NODE`.
pub async fn resume(client: &Client, printer: Printer, node: &str) -> Result<u8, CliError> {
    let resumed = client
        .resume_node(node)
        .await
        .map_err(|error| CliError::server("cannot resume the node", error))?;
    report(printer, &resumed, "resumed: it takes new workloads")
}

fn report(printer: Printer, node: &Node, what: &str) -> Result<u8, CliError> {
    if printer.json() {
        return printer.print_json(&NodeView::new(node)).map(|()| EXIT_OK);
    }
    println!("{} {what}", node.name);
    Ok(EXIT_OK)
}
