//! `start`, `stop`, `restart` and `rm` on several workloads at once: in parallel,
//! each with its own result line and timeout; one failure does not cancel the others.

use std::{collections::BTreeSet, time::Duration};

use futures::{StreamExt, stream::FuturesUnordered};
use slipway_sdk::{
    Client,
    proto::{Action, ListWorkloadsRequest, Stage, Workload},
};

use super::{
    args::ControlArgs,
    error::{CliError, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK},
    output::outln,
    output::{Printer, short_id},
    resolve::{Catalog, NameScope, admits, is_active},
    view::OperationResultView,
};

/// A control operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Start,
    Stop { grace_seconds: Option<u32> },
    Restart,
    Remove,
}

impl Operation {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop { .. } => "stop",
            Operation::Restart => "restart",
            Operation::Remove => "rm",
        }
    }

    /// What a deployment name stands for.
    fn name_scope(self) -> NameScope {
        match self {
            Operation::Start => NameScope::WhereOrLatest(Action::Start),
            // A restart of a name means its live workloads (those a stop would reach).
            Operation::Stop { .. } | Operation::Restart => NameScope::WhereOrLatest(Action::Stop),
            Operation::Remove => NameScope::All,
        }
    }

    /// Which workloads the selectors (`--deployment`, `-l`, `--all`) pick.
    fn selects(self, workload: &Workload) -> bool {
        match self {
            Operation::Start => admits(workload, Action::Start),
            Operation::Stop { .. } => admits(workload, Action::Stop),
            Operation::Restart | Operation::Remove => true,
        }
    }

    /// The past tense, for result lines.
    fn done(self) -> &'static str {
        match self {
            Operation::Start => "started",
            Operation::Stop { .. } => "stopped",
            Operation::Restart => "restarted",
            Operation::Remove => "removed",
        }
    }
}

/// What happened to one target.
struct Outcome {
    target: String,
    workload: Option<Workload>,
    result: Result<Option<Stage>, CliError>,
}

/// Runs `operation` on every workload the arguments name, in parallel.
pub async fn control(
    client: &Client,
    printer: Printer,
    operation: Operation,
    args: ControlArgs,
) -> Result<u8, CliError> {
    let selecting = args.all || args.deployment.is_some() || !args.labels.is_empty();
    if args.targets.is_empty() && !selecting {
        return Err(CliError::usage(format!(
            "{} needs workload ids, a deployment name, --deployment, -l or --all",
            operation.name()
        )));
    }
    let catalog = Catalog::load(client).await?;
    let mut outcomes = Vec::new();
    let mut chosen: Vec<(String, Workload)> = Vec::new();
    let mut seen = BTreeSet::new();
    for target in &args.targets {
        if operation == Operation::Start {
            match fresh_workload_to_start(client, &catalog, target).await {
                Ok(Some(workload)) => {
                    seen.insert(workload.id.clone());
                    chosen.push((target.clone(), workload));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    outcomes.push(Outcome {
                        target: target.clone(),
                        workload: None,
                        result: Err(error),
                    });
                    continue;
                }
            }
        }
        match catalog.resolve_workloads(target, operation.name_scope()) {
            Ok(workloads) => {
                for workload in workloads {
                    if seen.insert(workload.id.clone()) {
                        chosen.push((target.clone(), workload));
                    }
                }
            }
            Err(error) => outcomes.push(Outcome {
                target: target.clone(),
                workload: None,
                result: Err(error),
            }),
        }
    }
    if selecting {
        for workload in select(&catalog, &args)? {
            if operation.selects(&workload) && seen.insert(workload.id.clone()) {
                chosen.push((short_id(&workload.id).to_owned(), workload));
            }
        }
    }
    if chosen.is_empty() && outcomes.is_empty() && !printer.json() {
        eprintln!("nothing to {}: no workload matches", operation.name());
    }
    let timeout = Duration::from_secs(args.timeout);
    let mut running: FuturesUnordered<_> = chosen
        .into_iter()
        .map(|(target, workload)| {
            let client = client.clone();
            async move {
                let result =
                    match tokio::time::timeout(timeout, perform(&client, operation, &workload.id))
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(CliError::TimedOut {
                            operation: operation.name(),
                            seconds: timeout.as_secs(),
                        }),
                    };
                Outcome {
                    target,
                    workload: Some(workload),
                    result,
                }
            }
        })
        .collect();
    for outcome in &outcomes {
        print_outcome(printer, &catalog, operation, outcome);
    }
    while let Some(outcome) = running.next().await {
        print_outcome(printer, &catalog, operation, &outcome);
        outcomes.push(outcome);
    }
    if operation == Operation::Remove {
        remove_emptied_deployments(client, printer, &catalog, &mut outcomes).await;
    }
    if printer.json() {
        let views: Vec<OperationResultView> = outcomes
            .iter()
            .map(|outcome| result_view(operation, outcome))
            .collect();
        printer.print_json(&views)?;
    }
    Ok(exit_code(&outcomes))
}

/// `start NAME` of a deployment with nothing to start (no workload pending,
/// on its way or running): a new workload of it, to start. `None` when the
/// target is not such a deployment's name.
async fn fresh_workload_to_start(
    client: &Client,
    catalog: &Catalog,
    target: &str,
) -> Result<Option<Workload>, CliError> {
    let Some(deployment) = catalog
        .deployments
        .iter()
        .find(|deployment| deployment.name == target)
    else {
        return Ok(None);
    };
    let busy = catalog
        .workloads
        .iter()
        .filter(|workload| workload.deployment_id == deployment.id)
        .any(|workload| admits(workload, Action::Start) || is_active(workload.stage()));
    if busy {
        return Ok(None);
    }
    client
        .create_workload(&deployment.id)
        .await
        .map(Some)
        .map_err(|error| CliError::server(format!("cannot create a workload of {target}"), error))
}

/// As `docker rm` frees a name: each deployment whose last workload was just
/// removed is removed too (a failure to is one more outcome).
async fn remove_emptied_deployments(
    client: &Client,
    printer: Printer,
    catalog: &Catalog,
    outcomes: &mut Vec<Outcome>,
) {
    let emptied: BTreeSet<String> = outcomes
        .iter()
        .filter(|outcome| outcome.result.is_ok())
        .filter_map(|outcome| outcome.workload.as_ref())
        .map(|workload| workload.deployment_id.clone())
        .collect();
    for deployment_id in emptied {
        let left = client
            .list_workloads(ListWorkloadsRequest {
                deployment_id: deployment_id.clone(),
                page_size: 1,
                ..ListWorkloadsRequest::default()
            })
            .await;
        if !matches!(&left, Ok(page) if page.workloads.is_empty()) {
            continue;
        }
        let name = catalog
            .deployment_name(&deployment_id)
            .unwrap_or(short_id(&deployment_id))
            .to_owned();
        match client.delete_deployment(&deployment_id).await {
            Ok(_) => {
                if !printer.json() {
                    outln!("{name}  removed (its last workload was)");
                }
            }
            // Removed meanwhile by someone else: the name is free all the same.
            Err(slipway_sdk::Error::NotFound { .. }) => {}
            Err(error) => {
                let outcome = Outcome {
                    target: name.clone(),
                    workload: None,
                    result: Err(CliError::server(
                        format!("cannot remove deployment {name}"),
                        error,
                    )),
                };
                print_outcome(printer, catalog, Operation::Remove, &outcome);
                outcomes.push(outcome);
            }
        }
    }
}

/// 0 when all succeeded; 3 when every failure was "not found"; else 1.
fn exit_code(outcomes: &[Outcome]) -> u8 {
    let failures: Vec<&CliError> = outcomes
        .iter()
        .filter_map(|outcome| outcome.result.as_ref().err())
        .collect();
    if failures.is_empty() {
        EXIT_OK
    } else if failures
        .iter()
        .all(|error| error.exit_code() == EXIT_NOT_FOUND)
    {
        EXIT_NOT_FOUND
    } else {
        EXIT_FAILED
    }
}

/// The workloads the selectors pick (before the per-operation stage filter).
fn select(catalog: &Catalog, args: &ControlArgs) -> Result<Vec<Workload>, CliError> {
    let deployment_id = match &args.deployment {
        Some(target) => Some(catalog.resolve_deployment(target)?.id.clone()),
        None => None,
    };
    Ok(catalog
        .workloads
        .iter()
        .filter(|workload| {
            deployment_id
                .as_ref()
                .is_none_or(|wanted| &workload.deployment_id == wanted)
        })
        .filter(|workload| {
            let labels = catalog
                .deployment(&workload.deployment_id)
                .map(|deployment| &deployment.labels);
            args.labels
                .iter()
                .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
        })
        .cloned()
        .collect())
}

/// Does the operation and returns the stage the workload ended in (`None` once removed).
async fn perform(
    client: &Client,
    operation: Operation,
    workload_id: &str,
) -> Result<Option<Stage>, CliError> {
    let context = format!("cannot {} {}", operation.name(), short_id(workload_id));
    let server_error = |error| CliError::server(context.clone(), error);
    let finished = match operation {
        Operation::Remove => {
            client
                .delete_workload(workload_id)
                .await
                .map_err(server_error)?;
            return Ok(None);
        }
        Operation::Start => client.start_workload(workload_id).await,
        Operation::Stop { grace_seconds } => client.stop_workload(workload_id, grace_seconds).await,
        Operation::Restart => client.restart_workload(workload_id).await,
    }
    .map_err(server_error)?
    .finish()
    .await
    .map_err(server_error)?;
    // The stream ended without a failure: the operation reached its goal.
    Ok(Some(finished.stage()))
}

fn print_outcome(printer: Printer, catalog: &Catalog, operation: Operation, outcome: &Outcome) {
    if printer.json() {
        return;
    }
    let shown = outcome
        .workload
        .as_ref()
        .map_or(outcome.target.as_str(), |workload| short_id(&workload.id));
    let name = outcome
        .workload
        .as_ref()
        .and_then(|workload| catalog.deployment_name(&workload.deployment_id))
        .unwrap_or("");
    match &outcome.result {
        Ok(_) => outln!("{shown}  {name}  {}", operation.done()),
        Err(error) => {
            eprintln!(
                "{shown}  {name}  {}: {}",
                printer.red(&format!("{} failed", operation.name())),
                error.cause_message()
            );
            if let Some(hint) = error.hint(Some(operation.name())) {
                eprintln!("  hint: {hint}");
            }
        }
    }
}

fn result_view(operation: Operation, outcome: &Outcome) -> OperationResultView {
    let (ok, stage, error, hint) = match &outcome.result {
        Ok(stage) => (true, stage.map(Stage::label), None, None),
        Err(error) => (
            false,
            None,
            Some(error.to_string()),
            error.hint(Some(operation.name())),
        ),
    };
    OperationResultView {
        target: outcome.target.clone(),
        id: outcome
            .workload
            .as_ref()
            .map(|workload| workload.id.clone()),
        operation: operation.name(),
        ok,
        stage,
        error,
        hint,
    }
}
