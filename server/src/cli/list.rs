//! Read-only commands: `ps`, `inspect` and `events`.

use futures::StreamExt;
use slipway_sdk::{
    Client,
    proto::{Event, Health, ListWorkloadsRequest, Stage, WatchEventsRequest, Workload},
};

use super::{
    args::{EventsArgs, InspectArgs, PsArgs},
    error::{CliError, EXIT_OK},
    output::outln,
    output::{Printer, age, print_table, rfc3339, short_id, to_datetime},
    resolve::{Catalog, is_active},
    view::{DeploymentView, EventView, WorkloadView, event_type_label},
};

/// `slipway ps`.
pub async fn ps(client: &Client, printer: Printer, args: PsArgs) -> Result<u8, CliError> {
    let stage = match &args.stage {
        Some(text) => Some(Stage::from_label(text).ok_or_else(|| {
            CliError::usage(format!(
                "unknown stage {text:?}; one of pending, validate, build, deploy, running, stopping, stopped, failed"
            ))
        })?),
        None => None,
    };
    let catalog = Catalog::load(client).await?;
    let deployment_id = match &args.deployment {
        Some(target) => Some(catalog.resolve_deployment(target)?.id.clone()),
        None => None,
    };
    let shown: Vec<&Workload> = catalog
        .workloads
        .iter()
        .filter(|workload| match stage {
            Some(stage) => workload.stage() == stage,
            None => args.all || is_active(workload.stage()),
        })
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
        .collect();
    if printer.json() {
        let views: Vec<WorkloadView> = shown
            .iter()
            .map(|workload| {
                WorkloadView::new(workload, catalog.deployment_name(&workload.deployment_id))
            })
            .collect();
        return printer.print_json(&views).map(|()| EXIT_OK);
    }
    if args.quiet {
        for workload in shown {
            outln!("{}", short_id(&workload.id));
        }
        return Ok(EXIT_OK);
    }
    let mut behind = false;
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|workload| {
            let current = catalog
                .deployment(&workload.deployment_id)
                .map_or(0, |deployment| deployment.revision);
            let (revision, old) = spec_revision(workload.spec_revision, current);
            behind |= old;
            vec![
                short_id(&workload.id).to_owned(),
                catalog
                    .deployment_name(&workload.deployment_id)
                    .unwrap_or("-")
                    .to_owned(),
                printer.stage(workload.stage()),
                Health::try_from(workload.health)
                    .map_or("unknown", Health::label)
                    .to_owned(),
                if workload.port == 0 {
                    "-".to_owned()
                } else {
                    workload.port.to_string()
                },
                workload.generation.to_string(),
                revision,
                age(workload.created_at.as_ref()),
            ]
        })
        .collect();
    print_table(
        &[
            "ID",
            "NAME",
            "STAGE",
            "HEALTH",
            "PORT",
            "GENERATION",
            "REV",
            "AGE",
        ],
        &rows,
    );
    if behind {
        outln!(
            "* runs an older revision than its deployment's current one (the current one in parentheses)"
        );
    }
    Ok(EXIT_OK)
}

/// The REV column: the revision the workload's run started from, marked
/// `*` with the current one when that is newer (`2* (3)`); `-` before its
/// first run. Also whether it is behind.
fn spec_revision(runs: u64, current: u64) -> (String, bool) {
    match runs {
        0 => ("-".to_owned(), false),
        runs if runs < current => (format!("{runs}* ({current})"), true),
        runs => (runs.to_string(), false),
    }
}

/// `slipway inspect`: always JSON, one object.
pub async fn inspect(client: &Client, printer: Printer, args: InspectArgs) -> Result<u8, CliError> {
    let catalog = Catalog::load(client).await?;
    let found = catalog.resolve_workload(&args.target)?;
    let workload = client
        .get_workload(&found.id)
        .await
        .map_err(|error| CliError::server("cannot get the workload", error))?;
    let deployment = catalog.deployment(&workload.deployment_id);
    let mut view = WorkloadView::new(&workload, deployment.map(|found| found.name.as_str()));
    view.deployment = deployment.map(DeploymentView::new);
    printer.print_json(&view).map(|()| EXIT_OK)
}

/// `slipway events`: the retained events up to now (or after --since-revision);
/// with -f, then new ones until interrupted.
pub async fn events(client: &Client, printer: Printer, args: EventsArgs) -> Result<u8, CliError> {
    let catalog = Catalog::load(client).await?;
    let deployment_id = match &args.deployment {
        Some(target) => catalog.resolve_deployment(target)?.id.clone(),
        None => String::new(),
    };
    let workload_id = match &args.workload {
        Some(target) => catalog.resolve_workload(target)?.id,
        None => String::new(),
    };
    let since = args
        .since
        .as_deref()
        .map(|text| super::logs::parse_time("--since", text, chrono::Utc::now()))
        .transpose()?;
    // The revision of "now": without -f the command ends once it has printed it.
    let current_revision = client
        .list_workloads(ListWorkloadsRequest {
            page_size: 1,
            ..ListWorkloadsRequest::default()
        })
        .await
        .map_err(|error| CliError::server("cannot read the current revision", error))?
        .revision;
    if !args.follow && current_revision <= args.since_revision {
        return Ok(EXIT_OK);
    }
    let mut stream = Box::pin(
        client
            .watch_events(WatchEventsRequest {
                since_revision: args.since_revision,
                deployment_id,
                workload_id,
                // A bookmark tells when every event up to "now" has been seen.
                bookmark_interval_seconds: Some(1),
            })
            .await
            .map_err(|error| CliError::server("cannot watch events", error))?,
    );
    if !printer.json() {
        outln!(
            "{:<9} {:<24} {:<20} {:<12} {:<9} MESSAGE",
            "REVISION",
            "TIME",
            "TYPE",
            "WORKLOAD",
            "STAGE"
        );
    }
    let mut events_done = !args.follow && current_revision <= args.since_revision;
    while !events_done {
        let Some(event) = stream.next().await else {
            break;
        };
        let event = event.map_err(|error| CliError::server("the event stream failed", error))?;
        if event.r#type() == slipway_sdk::proto::EventType::Bookmark {
            // Every event up to the bookmark's revision was sent (or filtered out).
            events_done = !args.follow && event.revision >= current_revision;
            continue;
        }
        let before_since = match (&since, event.timestamp.as_ref().and_then(to_datetime)) {
            (Some(since), Some(time)) => time < *since,
            _ => false,
        };
        if !before_since {
            print_event(printer, &catalog, &event)?;
        }
        events_done = !args.follow && event.revision >= current_revision;
    }
    Ok(EXIT_OK)
}

fn print_event(printer: Printer, catalog: &Catalog, event: &Event) -> Result<(), CliError> {
    if printer.json() {
        return printer.print_json_line(&EventView::new(event));
    }
    let stage = event
        .workload
        .as_ref()
        .map_or(String::from("-"), |workload| {
            workload.stage().label().to_owned()
        });
    let workload = if event.workload_id.is_empty() {
        catalog
            .deployment_name(&event.deployment_id)
            .unwrap_or("-")
            .to_owned()
    } else {
        short_id(&event.workload_id).to_owned()
    };
    outln!(
        "{:<9} {:<24} {:<20} {:<12} {:<9} {}",
        event.revision,
        rfc3339(event.timestamp.as_ref()).unwrap_or_default(),
        event_type_label(event.r#type),
        workload,
        stage,
        if event.actor.is_empty() {
            event.message.clone()
        } else {
            format!("{} (by {})", event.message, event.actor)
        }
    );
    Ok(())
}
