//! `slipway deploy -f`, `slipway deployments` and `slipway deployment rm`.

use slipway_sdk::{ChangeOutcome, Client, proto::CreateDeploymentRequest};

use super::{
    args::DeployArgs,
    changes::report_change,
    error::{CliError, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK},
    output::outln,
    output::{Printer, age, print_table, short_id},
    resolve::{Catalog, is_active},
    run::{StageDisplay, start_and_show},
    spec_file::SpecFile,
    view::{DeploymentHealthView, DeploymentView},
};

/// `slipway deploy -f FILE`: applies the file. A new deployment is created
/// and (unless --no-start) a workload of it started and waited for until
/// RUNNING, printing its id; an existing one is updated to match (its
/// rollout followed unless -d), or left as it is when nothing differs.
pub async fn deploy(client: &Client, printer: Printer, args: DeployArgs) -> Result<u8, CliError> {
    let request = SpecFile::read(&args.file)?
        .into_request()
        .map_err(|message| CliError::SpecFile {
            path: args.file.clone(),
            message,
        })?;
    let name = request.name.clone();
    let change = client
        .apply(request)
        .await
        .map_err(|error| CliError::server(format!("cannot apply deployment {name:?}"), error))?;
    if change.outcome != ChangeOutcome::Created {
        return report_change(client, printer, change, args.detach).await;
    }
    let deployment = change.deployment;
    if !printer.json() {
        eprintln!(
            "{} created (revision {})",
            deployment.name, deployment.revision
        );
    }
    if args.no_start {
        if printer.json() {
            printer.print_json(&DeploymentView::new(&deployment))?;
        } else {
            outln!("{}", deployment.id);
        }
        return Ok(EXIT_OK);
    }
    let workload = client
        .create_workload(&deployment.id)
        .await
        .map_err(|error| CliError::server("cannot create a workload", error))?;
    let display = StageDisplay::for_stderr(printer);
    let running = start_and_show(client, &workload.id, display).await?;
    if printer.json() {
        let mut view = super::view::WorkloadView::new(&running, Some(&deployment.name));
        view.deployment = Some(DeploymentView::new(&deployment));
        printer.print_json(&view)?;
    } else {
        outln!("{}", running.id);
    }
    Ok(EXIT_OK)
}

/// Creates a deployment, naming it in the error.
pub async fn create_deployment(
    client: &Client,
    request: CreateDeploymentRequest,
) -> Result<slipway_sdk::proto::Deployment, CliError> {
    let name = request.name.clone();
    client.create_deployment(request).await.map_err(|error| {
        let context = if name.is_empty() {
            "cannot create the deployment".to_owned()
        } else {
            format!("cannot create deployment {name:?}")
        };
        CliError::server(context, error)
    })
}

/// `slipway deployments`.
pub async fn list_deployments(client: &Client, printer: Printer) -> Result<u8, CliError> {
    let catalog = Catalog::load(client).await?;
    if printer.json() {
        let views: Vec<DeploymentView> = catalog
            .deployments
            .iter()
            .map(DeploymentView::new)
            .collect();
        return printer.print_json(&views).map(|()| EXIT_OK);
    }
    let rows: Vec<Vec<String>> = catalog
        .deployments
        .iter()
        .map(|deployment| {
            let spec = deployment.spec.clone().unwrap_or_default();
            let what = if spec.image.is_empty() {
                spec.command.join(" ")
            } else {
                spec.image.clone()
            };
            let of_deployment = catalog
                .workloads
                .iter()
                .filter(|workload| workload.deployment_id == deployment.id);
            let total = of_deployment.clone().count();
            let active = of_deployment
                .filter(|workload| is_active(workload.stage()))
                .count();
            let health = deployment
                .health
                .as_ref()
                .map_or("unknown", |health| DeploymentHealthView::new(health).state);
            vec![
                deployment.name.clone(),
                short_id(&deployment.id).to_owned(),
                deployment.service_path.clone(),
                format!("{active}/{total}"),
                deployment.revision.to_string(),
                health.to_owned(),
                truncate(&what, 40),
                age(deployment.created_at.as_ref()),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME", "ID", "PATH", "ACTIVE", "REV", "HEALTH", "COMMAND", "AGE",
        ],
        &rows,
    );
    Ok(EXIT_OK)
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// `slipway deployment rm NAME|ID...`: each with its own result line.
pub async fn remove_deployments(
    client: &Client,
    printer: Printer,
    targets: Vec<String>,
) -> Result<u8, CliError> {
    let catalog = Catalog::load(client).await?;
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for target in targets {
        let removed = match catalog.resolve_deployment(&target) {
            Ok(deployment) => client
                .delete_deployment(&deployment.id)
                .await
                .map(|workloads| (deployment.clone(), workloads))
                .map_err(|error| {
                    CliError::server(
                        format!("cannot remove deployment {:?}", deployment.name),
                        error,
                    )
                }),
            Err(error) => Err(error),
        };
        match removed {
            Ok((deployment, workloads)) => {
                if !printer.json() {
                    outln!(
                        "{}  removed with {} workload(s)",
                        deployment.name,
                        workloads.len()
                    );
                }
                results.push(serde_json::json!({
                    "target": target,
                    "id": deployment.id,
                    "name": deployment.name,
                    "ok": true,
                    "deleted_workload_ids": workloads,
                }));
            }
            Err(error) => {
                eprintln!("slipway: {error}");
                results.push(serde_json::json!({
                    "target": target,
                    "ok": false,
                    "error": error.to_string(),
                }));
                failures.push(error);
            }
        }
    }
    if printer.json() {
        printer.print_json(&results)?;
    }
    Ok(if failures.is_empty() {
        EXIT_OK
    } else if failures
        .iter()
        .all(|error| error.exit_code() == EXIT_NOT_FOUND)
    {
        EXIT_NOT_FOUND
    } else {
        EXIT_FAILED
    })
}
