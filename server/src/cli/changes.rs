//! `slipway update`, `slipway rollout history` and `slipway rollout undo`:
//! changing a deployment, each change a revision, rolled out to its running
//! workloads as a fleet operation that these commands follow.

use clap::{Args, ValueEnum};
use serde::Serialize;
use slipway_sdk::{
    ChangeOutcome, Client, DeploymentChange, DeploymentUpdate, Error as SdkError, RolloutStrategy,
};

use super::{
    args::parse_key_value,
    error::{CliError, EXIT_OK},
    fleet::follow,
    output::{Printer, age, outln, print_table, rfc3339},
    view::DeploymentView,
};

/// `--strategy`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    /// Restarted --max-unavailable at a time, each ready before the next.
    Rolling,
    /// All restarted at once.
    Recreate,
    /// Nothing now: each runs the new spec from its next restart.
    OnRestart,
}

/// `slipway update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The deployment: its name or id.
    pub deployment: String,

    /// Set an environment variable, as NAME=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,

    /// Remove an environment variable (repeatable): the next run does not have it.
    #[arg(long = "unset-env", value_name = "NAME")]
    pub unset_env: Vec<String>,

    /// Run this Docker image.
    #[arg(long)]
    pub image: Option<String>,

    /// How this and later changes reach the running workloads.
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,

    /// Rolling: restarted at once (default 1).
    #[arg(long, value_name = "N")]
    pub max_unavailable: Option<u32>,

    /// Rolling: new workloads started first, each replacing an old one once
    /// ready (default 0: restart in place).
    #[arg(long, value_name = "N")]
    pub max_surge: Option<u32>,

    /// Change only if the deployment is at this revision (else exit 1, naming
    /// the current one).
    #[arg(long, value_name = "N")]
    pub expect_revision: Option<u64>,

    /// Do not follow the rollout: print its operation id and return.
    #[arg(short = 'd', long)]
    pub detach: bool,
}

/// `slipway rollout history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The deployment: its name or id.
    pub deployment: String,
}

/// `slipway rollout undo`.
#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The deployment: its name or id.
    pub deployment: String,

    /// The revision whose spec to restore (default: the one before the current one).
    #[arg(long, value_name = "N")]
    pub to_revision: Option<u64>,

    /// Do not follow the rollout: print its operation id and return.
    #[arg(short = 'd', long)]
    pub detach: bool,
}

/// A change as `-o json` prints it.
#[derive(Debug, Serialize)]
struct ChangeView {
    outcome: &'static str,
    revision: u64,
    changed_fields: Vec<String>,
    notes: Vec<String>,
    operation_id: Option<String>,
    deployment: DeploymentView,
}

fn outcome_label(outcome: ChangeOutcome) -> &'static str {
    match outcome {
        ChangeOutcome::Created => "created",
        ChangeOutcome::Updated => "updated",
        ChangeOutcome::Unchanged => "unchanged",
    }
}

/// Prints what a change did, then follows its rollout unless `detach`.
pub async fn report_change(
    client: &Client,
    printer: Printer,
    change: DeploymentChange,
    detach: bool,
) -> Result<u8, CliError> {
    let name = change.deployment.name.clone();
    let revision = change.deployment.revision;
    if printer.json() {
        printer.print_json(&ChangeView {
            outcome: outcome_label(change.outcome),
            revision,
            changed_fields: change.changed_fields.clone(),
            notes: change.notes.clone(),
            operation_id: change.operation_id.clone(),
            deployment: DeploymentView::new(&change.deployment),
        })?;
    } else {
        match change.outcome {
            ChangeOutcome::Created => outln!("{name} created (revision {revision})"),
            ChangeOutcome::Updated => outln!(
                "{name} updated to revision {revision} ({} changed)",
                change.changed_fields.join(", ")
            ),
            ChangeOutcome::Unchanged => outln!("{name} unchanged (revision {revision})"),
        }
        for note in &change.notes {
            eprintln!("note: {note}");
        }
    }
    match change.operation_id {
        Some(operation) if detach => {
            if !printer.json() {
                outln!("rollout {operation}");
            }
            Ok(EXIT_OK)
        }
        Some(operation) => {
            // Fleet operations are an administrator's to watch: an operator's
            // change rolls out all the same.
            if let Err(SdkError::PermissionDenied { .. }) = client.get_operation(&operation).await {
                if !printer.json() {
                    outln!(
                        "rollout {operation} under way (following it needs an admin token; `slipway ps` shows each workload's REV)"
                    );
                }
                return Ok(EXIT_OK);
            }
            if !printer.json() {
                outln!("rollout {operation}: following it (-d to return at once)");
            }
            follow(client, printer, &operation).await
        }
        None => Ok(EXIT_OK),
    }
}

/// `slipway update NAME ...`.
pub async fn update(client: &Client, printer: Printer, args: UpdateArgs) -> Result<u8, CliError> {
    let mut update = DeploymentUpdate::new(&args.deployment);
    let mut changes = 0;
    for (name, value) in args.env {
        update = update.env(name, value);
        changes += 1;
    }
    for name in args.unset_env {
        update = update.remove_env(name);
        changes += 1;
    }
    if let Some(image) = args.image {
        update = update.image(image);
        changes += 1;
    }
    let rolling_counts = args.max_unavailable.is_some() || args.max_surge.is_some();
    let strategy = match args.strategy {
        Some(StrategyArg::Recreate) | Some(StrategyArg::OnRestart) if rolling_counts => {
            return Err(CliError::usage(
                "--max-unavailable and --max-surge go with --strategy rolling",
            ));
        }
        Some(StrategyArg::Recreate) => Some(RolloutStrategy::Recreate),
        Some(StrategyArg::OnRestart) => Some(RolloutStrategy::OnRestart),
        Some(StrategyArg::Rolling) | None if rolling_counts || args.strategy.is_some() => {
            Some(RolloutStrategy::Rolling {
                max_unavailable: args.max_unavailable.unwrap_or(1),
                max_surge: args.max_surge.unwrap_or(0),
            })
        }
        _ => None,
    };
    if let Some(strategy) = strategy {
        update = update.update_strategy(strategy);
        changes += 1;
    }
    if changes == 0 {
        return Err(CliError::usage(
            "nothing to change: give -e, --unset-env, --image or --strategy",
        ));
    }
    if let Some(revision) = args.expect_revision {
        update = update.expect_revision(revision);
    }
    let change = client.update_deployment(update).await.map_err(|error| {
        CliError::server(
            format!("cannot update deployment {:?}", args.deployment),
            error,
        )
    })?;
    report_change(client, printer, change, args.detach).await
}

/// `slipway rollout history NAME`.
pub async fn history(client: &Client, printer: Printer, args: HistoryArgs) -> Result<u8, CliError> {
    let revisions = client
        .list_revisions(&args.deployment)
        .await
        .map_err(|error| {
            CliError::server(
                format!("cannot list the revisions of {:?}", args.deployment),
                error,
            )
        })?;
    if printer.json() {
        let views: Vec<serde_json::Value> = revisions
            .iter()
            .map(|revision| {
                serde_json::json!({
                    "revision": revision.revision,
                    "created_at": rfc3339(revision.created_at.as_ref()),
                    "actor": revision.actor,
                    "changed_fields": revision.changed_fields,
                    "rolled_back_from": Some(revision.rolled_back_from).filter(|from| *from != 0),
                })
            })
            .collect();
        return printer.print_json(&views).map(|()| EXIT_OK);
    }
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .enumerate()
        .map(|(index, revision)| {
            let mut change = if revision.revision == 1 {
                "created".to_owned()
            } else {
                revision.changed_fields.join(", ")
            };
            if revision.rolled_back_from != 0 {
                change = format!("{change} (rollback to {})", revision.rolled_back_from);
            }
            vec![
                if index == 0 {
                    format!("{} (current)", revision.revision)
                } else {
                    revision.revision.to_string()
                },
                age(revision.created_at.as_ref()),
                Some(revision.actor.clone())
                    .filter(|actor| !actor.is_empty())
                    .unwrap_or_else(|| "-".to_owned()),
                change,
            ]
        })
        .collect();
    print_table(&["REVISION", "AGE", "BY", "CHANGED"], &rows);
    Ok(EXIT_OK)
}

/// `slipway rollout undo NAME [--to-revision N]`.
pub async fn undo(client: &Client, printer: Printer, args: UndoArgs) -> Result<u8, CliError> {
    let change = client
        .rollback(&args.deployment, args.to_revision)
        .await
        .map_err(|error| {
            CliError::server(format!("cannot roll back {:?}", args.deployment), error)
        })?;
    report_change(client, printer, change, args.detach).await
}
