//! `slipway node drain`, `slipway rollout restart`, `slipway operations` and
//! `slipway operation …`: fleet operations, followed until they end.

use futures::StreamExt;
use serde::Serialize;
use slipway_sdk::{
    Client,
    proto::{
        DrainNodeRequest, FailurePolicy, FleetOperation, ItemState, ListOperationsRequest,
        OperationKind, OperationState, RollingRestartRequest,
    },
};

use super::{
    args::{DrainArgs, OperationCommand, OperationsArgs, RolloutRestartArgs},
    error::{CliError, EXIT_FAILED, EXIT_OK},
    output::{Printer, age, print_table, rfc3339},
};

/// An operation, as `-o json` and `operation inspect` print it.
#[derive(Debug, Serialize)]
pub struct OperationView {
    pub id: String,
    pub kind: &'static str,
    pub target: String,
    pub state: &'static str,
    pub message: String,
    pub parallel: u32,
    pub finished_items: u32,
    pub total_items: u32,
    pub eta_seconds: u64,
    pub node_id: String,
    pub actor: String,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    pub deadline: Option<String>,
    pub parameters: serde_json::Value,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    pub workload_id: String,
    pub deployment: String,
    pub state: &'static str,
    pub replacement_id: String,
    pub message: String,
}

fn kind(operation: &FleetOperation) -> &'static str {
    match operation.kind() {
        OperationKind::Drain => "drain",
        OperationKind::RollingRestart => "rolling-restart",
        OperationKind::Rollout => "rollout",
        OperationKind::Unspecified => "unspecified",
    }
}

fn state(operation: &FleetOperation) -> &'static str {
    match operation.state() {
        OperationState::Running => "running",
        OperationState::Paused => "paused",
        OperationState::Succeeded => "succeeded",
        OperationState::Failed => "failed",
        OperationState::Cancelled => "cancelled",
        OperationState::Unspecified => "unspecified",
    }
}

fn item_state(state: ItemState) -> &'static str {
    match state {
        ItemState::Waiting => "waiting",
        ItemState::Active => "active",
        ItemState::Done => "done",
        ItemState::Failed => "failed",
        ItemState::Skipped => "skipped",
        ItemState::Unspecified => "unspecified",
    }
}

impl OperationView {
    pub fn new(operation: &FleetOperation) -> OperationView {
        OperationView {
            id: operation.id.clone(),
            kind: kind(operation),
            target: operation.target.clone(),
            state: state(operation),
            message: operation.message.clone(),
            parallel: operation.parallel,
            finished_items: operation.finished_items,
            total_items: operation.total_items,
            eta_seconds: operation.eta_ms / 1000,
            node_id: operation.node_id.clone(),
            actor: operation.actor.clone(),
            created_at: rfc3339(operation.created_at.as_ref()),
            finished_at: rfc3339(operation.finished_at.as_ref()),
            deadline: rfc3339(operation.deadline.as_ref()),
            parameters: serde_json::from_str(&operation.parameters)
                .unwrap_or(serde_json::Value::Null),
            items: operation
                .items
                .iter()
                .map(|item| ItemView {
                    workload_id: item.workload_id.clone(),
                    deployment: item.deployment_name.clone(),
                    state: item_state(item.state()),
                    replacement_id: item.replacement_id.clone(),
                    message: item.message.clone(),
                })
                .collect(),
        }
    }
}

/// Asks for the confirmation on a terminal; elsewhere, says to use --confirm.
pub(super) fn ask_confirmation(what: &str, expected: &str) -> Result<String, CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "--force needs {what} as confirmation: add --confirm {expected}"
        )));
    }
    eprint!("type {what} to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::usage(format!("cannot read the confirmation: {error}")))?;
    Ok(answer.trim().to_owned())
}

/// `slipway node drain NODE`.
pub async fn drain(client: &Client, printer: Printer, args: DrainArgs) -> Result<u8, CliError> {
    let confirm = match (args.force, args.confirm) {
        (true, None) => ask_confirmation("the node's name", &args.node)?,
        (_, confirm) => confirm.unwrap_or_default(),
    };
    let operation = client
        .drain_node(DrainNodeRequest {
            node: args.node,
            deadline_seconds: seconds(args.deadline),
            parallel: args.parallel,
            min_healthy_seconds: Some(seconds(args.min_healthy)),
            healthy_deadline_seconds: seconds(args.healthy_deadline),
            force: args.force,
            confirm,
        })
        .await
        .map_err(|error| CliError::server("cannot drain the node", error))?;
    begun(client, printer, operation, args.detach).await
}

/// `slipway rollout restart`.
pub async fn rollout_restart(
    client: &Client,
    printer: Printer,
    args: RolloutRestartArgs,
) -> Result<u8, CliError> {
    let target = match (
        &args.deployment,
        args.selector.is_empty(),
        args.nodes.is_empty(),
    ) {
        (Some(deployment), true, true) => deployment.clone(),
        (None, false, true) => args
            .selector
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(","),
        (None, true, false) => args.nodes.join(","),
        _ => {
            return Err(CliError::usage(
                "give exactly one of: a deployment, --selector K=V, --node NODE",
            ));
        }
    };
    let confirm = match (args.force, args.confirm) {
        (true, None) => ask_confirmation("the target", &target)?,
        (_, confirm) => confirm.unwrap_or_default(),
    };
    let operation = client
        .rolling_restart(RollingRestartRequest {
            deployment: args.deployment.unwrap_or_default(),
            selector: args.selector.into_iter().collect(),
            nodes: args.nodes,
            max_unavailable: args.max_unavailable,
            min_healthy_seconds: Some(seconds(args.min_healthy)),
            healthy_deadline_seconds: seconds(args.healthy_deadline),
            deadline_seconds: seconds(args.deadline),
            on_failure: if args.on_failure == "abort" {
                FailurePolicy::Abort
            } else {
                FailurePolicy::Pause
            } as i32,
            min_available: args.min_available,
            force: args.force,
            confirm,
        })
        .await
        .map_err(|error| CliError::server("cannot start the rolling restart", error))?;
    begun(client, printer, operation, args.detach).await
}

fn seconds(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

async fn begun(
    client: &Client,
    printer: Printer,
    operation: FleetOperation,
    detach: bool,
) -> Result<u8, CliError> {
    if detach {
        if printer.json() {
            return printer
                .print_json(&OperationView::new(&operation))
                .map(|()| EXIT_OK);
        }
        println!("{}", operation.id);
        return Ok(EXIT_OK);
    }
    if !printer.json() {
        println!(
            "{} {}: {}",
            operation.id,
            kind(&operation),
            operation.message
        );
    }
    follow(client, printer, &operation.id).await
}

/// Prints each change of the operation's items until it ends (or pauses);
/// exit 0 when it succeeded.
pub(super) async fn follow(client: &Client, printer: Printer, id: &str) -> Result<u8, CliError> {
    let mut stream = Box::pin(
        client
            .watch_operation(id)
            .await
            .map_err(|error| CliError::server("cannot follow the operation", error))?,
    );
    let mut seen: Vec<(i32, String)> = Vec::new();
    let mut last = None;
    while let Some(operation) = stream.next().await {
        let operation = operation.map_err(|error| CliError::server("lost the operation", error))?;
        if printer.json() {
            printer.print_json_line(&OperationView::new(&operation))?;
        } else {
            for (index, item) in operation.items.iter().enumerate() {
                let now = (item.state, item.message.clone());
                if seen.get(index) != Some(&now) && !item.message.is_empty() {
                    println!(
                        "  {} {} ({}): {}",
                        item_state(item.state()),
                        item.workload_id,
                        item.deployment_name,
                        item.message
                    );
                }
            }
            seen = operation
                .items
                .iter()
                .map(|item| (item.state, item.message.clone()))
                .collect();
        }
        let paused = operation.state() == OperationState::Paused;
        last = Some(operation);
        if paused {
            break;
        }
    }
    let Some(operation) = last else {
        return Ok(EXIT_FAILED);
    };
    if !printer.json() {
        println!(
            "{} {}: {}",
            operation.id,
            state(&operation),
            operation.message
        );
    }
    Ok(if operation.state() == OperationState::Succeeded {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// `slipway operations`.
pub async fn list(client: &Client, printer: Printer, args: OperationsArgs) -> Result<u8, CliError> {
    let states = if args.running {
        vec![
            OperationState::Running as i32,
            OperationState::Paused as i32,
        ]
    } else {
        Vec::new()
    };
    let operations = client
        .list_operations(ListOperationsRequest { states, limit: 0 })
        .await
        .map_err(|error| CliError::server("cannot list operations", error))?;
    if printer.json() {
        let views: Vec<OperationView> = operations.iter().map(OperationView::new).collect();
        return printer.print_json(&views).map(|()| EXIT_OK);
    }
    let rows: Vec<Vec<String>> = operations
        .iter()
        .map(|operation| {
            vec![
                operation.id.clone(),
                kind(operation).to_owned(),
                operation.target.clone(),
                state(operation).to_owned(),
                format!("{}/{}", operation.finished_items, operation.total_items),
                if operation.eta_ms > 0 {
                    format!("{}s", operation.eta_ms.div_ceil(1000))
                } else {
                    "-".to_owned()
                },
                age(operation.created_at.as_ref()),
                operation.message.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "KIND", "TARGET", "STATE", "DONE", "ETA", "AGE", "MESSAGE",
        ],
        &rows,
    );
    Ok(EXIT_OK)
}

/// `slipway operation …`.
pub async fn operation(
    client: &Client,
    printer: Printer,
    command: OperationCommand,
) -> Result<u8, CliError> {
    let (operation, what) = match command {
        OperationCommand::Inspect { id } => {
            let operation = client
                .get_operation(&id)
                .await
                .map_err(|error| CliError::server("cannot read the operation", error))?;
            return printer
                .print_json(&OperationView::new(&operation))
                .map(|()| EXIT_OK);
        }
        OperationCommand::Watch { id } => return follow(client, printer, &id).await,
        OperationCommand::Pause { id } => (client.pause_operation(&id).await, "pause"),
        OperationCommand::Resume { id } => (client.resume_operation(&id).await, "resume"),
        OperationCommand::Cancel { id } => (client.cancel_operation(&id).await, "cancel"),
    };
    let operation = operation
        .map_err(|error| CliError::server(format!("cannot {what} the operation"), error))?;
    if printer.json() {
        return printer
            .print_json(&OperationView::new(&operation))
            .map(|()| EXIT_OK);
    }
    println!(
        "{} {}: {}",
        operation.id,
        state(&operation),
        operation.message
    );
    Ok(EXIT_OK)
}
