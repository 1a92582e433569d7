//! The UI's link to the server, through the SDK only: lists once, then
//! follows `WatchEvents` from the last revision seen (no polling of
//! workloads), reconnects with back-off when the link breaks and resumes from
//! that revision (listing again only when the server no longer has it), runs
//! the confirmed operations with their progress, and follows the detail
//! view's log (`StreamLogs` follow) and history.

use std::{pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use slipway_sdk::{
    Client, ClientBuilder, Error, Progress,
    proto::{
        Event, EventType, GetHealthHistoryRequest, ListWorkloadsRequest, LogEntry, Stage,
        StreamLogsRequest, WatchEventsRequest, Workload,
    },
};
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

use super::{
    actions::{NODE_ACTIONS, NodeActionKind, WorkloadAction},
    app::{Command, Connection, Update},
};
use crate::cli::output::short_id;

type BoxStream<T> = Pin<Box<dyn Stream<Item = slipway_sdk::Result<T>> + Send>>;

/// How often the nodes list is read again (nodes have no watch).
const NODES_REFRESH: Duration = Duration::from_secs(5);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The wait before reconnection attempt `attempt` (1, 2, …): 250 ms doubling up to 5 s.
fn backoff(attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(5);
    (Duration::from_millis(250) * factor).min(MAX_BACKOFF)
}

/// Runs until `commands` closes (the UI ended), sending what happens to `updates`.
pub async fn run(
    builder: ClientBuilder,
    updates: mpsc::Sender<Update>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut revision = 0u64;
    let mut attempt = 0u32;
    let mut client: Option<Client> = None;
    let mut watch: Option<BoxStream<Event>> = None;
    let mut retry_at = Instant::now();
    let mut detail: Option<(String, JoinHandle<()>)> = None;
    let mut nodes_tick = tokio::time::interval(NODES_REFRESH);
    nodes_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if watch.is_none() && Instant::now() >= retry_at {
            match establish(&builder, revision, &updates).await {
                Ok((connected, stream, listed_revision)) => {
                    revision = listed_revision;
                    attempt = 0;
                    watch = Some(stream);
                    client = Some(connected.clone());
                    let _ = updates
                        .send(Update::Connection(Connection::Connected))
                        .await;
                    // The detail's streams follow the new link too.
                    if let Some((workload_id, task)) = detail.take() {
                        task.abort();
                        let task = spawn_detail(connected, workload_id.clone(), updates.clone());
                        detail = Some((workload_id, task));
                    }
                }
                Err(error) => {
                    attempt += 1;
                    retry_at = Instant::now() + backoff(attempt);
                    let reason = format!("not connected: {error}");
                    disconnected(&updates, reason, attempt).await;
                }
            }
        }
        let linked = watch.is_some();
        let next_event = async {
            match watch.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                match command {
                    Command::OpenDetail { workload_id } => {
                        if let Some((_, task)) = detail.take() {
                            task.abort();
                        }
                        if let Some(client) = &client {
                            let task = spawn_detail(client.clone(), workload_id.clone(), updates.clone());
                            detail = Some((workload_id, task));
                        }
                    }
                    Command::CloseDetail => {
                        if let Some((_, task)) = detail.take() {
                            task.abort();
                        }
                    }
                    command => execute(client.clone(), command, updates.clone()),
                }
            }
            item = next_event => match item {
                Some(Ok(event)) => {
                    revision = revision.max(event.revision);
                    let created = (event.r#type == EventType::DeploymentCreated as i32)
                        .then(|| event.deployment_id.clone());
                    let _ = updates.send(Update::Event(event)).await;
                    if let (Some(id), Some(client)) = (created, &client) {
                        if let Ok(deployment) = client.get_deployment(&id).await {
                            let _ = updates.send(Update::Deployment(Box::new(deployment))).await;
                        }
                    }
                }
                Some(Err(error)) => {
                    if matches!(error, Error::Compacted { .. } | Error::RevisionAhead { .. }) {
                        // The server no longer has (or not yet) this revision: list again.
                        revision = 0;
                    }
                    watch = None;
                    attempt += 1;
                    retry_at = Instant::now() + backoff(attempt);
                    disconnected(&updates, format!("the event stream broke: {error}"), attempt).await;
                }
                None => {
                    watch = None;
                    attempt += 1;
                    retry_at = Instant::now() + backoff(attempt);
                    disconnected(&updates, "the server ended the event stream".to_owned(), attempt).await;
                }
            },
            () = tokio::time::sleep_until(retry_at), if !linked => {}
            _ = nodes_tick.tick(), if linked => {
                if let Some(client) = &client {
                    if let Ok(nodes) = client.list_nodes(false).await {
                        let _ = updates.send(Update::Nodes(nodes)).await;
                    }
                }
            }
        }
    }
    if let Some((_, task)) = detail.take() {
        task.abort();
    }
}

async fn disconnected(updates: &mpsc::Sender<Update>, reason: String, attempt: u32) {
    let _ = updates
        .send(Update::Connection(Connection::Disconnected {
            reason,
            attempt,
        }))
        .await;
}

/// Connects and opens the watch: from `revision` when the server still has
/// it (resuming), else after listing everything again (sent as a snapshot).
/// Returns the client, the watch and the revision it starts after.
async fn establish(
    builder: &ClientBuilder,
    revision: u64,
    updates: &mpsc::Sender<Update>,
) -> slipway_sdk::Result<(Client, BoxStream<Event>, u64)> {
    let client = builder.clone().connect().await?;
    if revision > 0 {
        match watch_from(&client, revision, "").await {
            Ok(stream) => {
                let nodes = client.list_nodes(false).await?;
                let _ = updates.send(Update::Nodes(nodes)).await;
                return Ok((client, stream, revision));
            }
            Err(Error::Compacted { .. } | Error::RevisionAhead { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let (workloads, listed_revision) = all_workloads(&client).await?;
    let deployments = client.all_deployments().await?;
    let nodes = client.list_nodes(false).await?;
    let stream = watch_from(&client, listed_revision, "").await?;
    let _ = updates
        .send(Update::Snapshot {
            workloads,
            deployments,
            nodes,
            revision: listed_revision,
        })
        .await;
    Ok((client, stream, listed_revision))
}

async fn watch_from(
    client: &Client,
    revision: u64,
    workload_id: &str,
) -> slipway_sdk::Result<BoxStream<Event>> {
    let stream = client
        .watch_events(WatchEventsRequest {
            since_revision: revision,
            workload_id: workload_id.to_owned(),
            ..WatchEventsRequest::default()
        })
        .await?;
    Ok(Box::pin(stream))
}

/// Every workload, all pages, and the oldest revision a page was consistent
/// with (watching from there misses nothing; older snapshots replayed are
/// ignored by the UI, which keeps the newest revision of each workload).
async fn all_workloads(client: &Client) -> slipway_sdk::Result<(Vec<Workload>, u64)> {
    let mut all = Vec::new();
    let mut revision = u64::MAX;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_workloads(ListWorkloadsRequest {
                page_token: page_token.clone(),
                ..ListWorkloadsRequest::default()
            })
            .await?;
        revision = revision.min(page.revision);
        all.extend(page.workloads);
        if page.next_page_token.is_empty() {
            return Ok((all, revision));
        }
        page_token = page.next_page_token;
    }
}

/// Runs a workload or node command in its own task, reporting progress and outcome.
fn execute(client: Option<Client>, command: Command, updates: mpsc::Sender<Update>) {
    match command {
        Command::Workloads {
            action,
            workload_ids,
        } => {
            for workload_id in workload_ids {
                tokio::spawn(run_workload_action(
                    client.clone(),
                    action,
                    workload_id,
                    updates.clone(),
                ));
            }
        }
        Command::Node {
            action,
            node,
            force,
            confirm,
        } => {
            tokio::spawn(async move {
                let verb = NODE_ACTIONS
                    .iter()
                    .find(|entry| entry.kind == action)
                    .map_or("", |entry| entry.verb);
                let outcome = match &client {
                    None => Err(format!("{verb}: not connected to the server")),
                    Some(client) => {
                        let result = match action {
                            NodeActionKind::Pause => {
                                client.pause_node(&node, force, &confirm).await
                            }
                            NodeActionKind::Resume => client.resume_node(&node).await,
                            NodeActionKind::Drain => {
                                let outcome = drain(client, &node, force, confirm, &updates).await;
                                if let Ok(nodes) = client.list_nodes(false).await {
                                    let _ = updates.send(Update::Nodes(nodes)).await;
                                }
                                let _ = updates
                                    .send(Update::Done {
                                        target: node,
                                        outcome,
                                    })
                                    .await;
                                return;
                            }
                        };
                        match result {
                            Ok(done) => {
                                let paused = done.scheduling
                                    == slipway_sdk::proto::NodeScheduling::Paused as i32;
                                let now = if paused { "paused" } else { "taking work" };
                                Ok(format!("{verb} node {}: done, {now}", done.name))
                            }
                            Err(error) => Err(format!("{verb} node: {error}")),
                        }
                    }
                };
                if let Some(client) = &client {
                    if let Ok(nodes) = client.list_nodes(false).await {
                        let _ = updates.send(Update::Nodes(nodes)).await;
                    }
                }
                let _ = updates
                    .send(Update::Done {
                        target: node,
                        outcome,
                    })
                    .await;
            });
        }
        Command::OpenDetail { .. } | Command::CloseDetail => {}
    }
}

/// Drains `node` and follows the drain, reporting its progress on the node's
/// row, until it ends: a sentence saying how.
async fn drain(
    client: &Client,
    node: &str,
    force: bool,
    confirm: String,
    updates: &mpsc::Sender<Update>,
) -> Result<String, String> {
    use slipway_sdk::proto::{DrainNodeRequest, OperationState};
    let operation = client
        .drain_node(DrainNodeRequest {
            node: node.to_owned(),
            force,
            confirm,
            ..DrainNodeRequest::default()
        })
        .await
        .map_err(|error| format!("drain node: {error}"))?;
    let mut stream = Box::pin(
        client
            .watch_operation(&operation.id)
            .await
            .map_err(|error| format!("drain node: {error}"))?,
    );
    let mut last = operation;
    while let Some(next) = stream.next().await {
        let next = next.map_err(|error| format!("drain node: {error}"))?;
        let note = format!("{}/{}", next.finished_items, next.total_items);
        let _ = updates
            .send(Update::Note {
                target: node.to_owned(),
                note,
            })
            .await;
        last = next;
    }
    let sentence = format!("drain {}: {}", last.id, last.message);
    if last.state() == OperationState::Succeeded {
        Ok(sentence)
    } else {
        Err(sentence)
    }
}

async fn run_workload_action(
    client: Option<Client>,
    action: WorkloadAction,
    workload_id: String,
    updates: mpsc::Sender<Update>,
) {
    let verb = action.verb();
    let name = short_id(&workload_id).to_owned();
    let outcome = match client {
        None => Err(format!("{verb} {name}: not connected to the server")),
        Some(client) => {
            let stream = match action {
                WorkloadAction::Start => client.start_workload(&workload_id).await,
                WorkloadAction::Stop => client.stop_workload(&workload_id, None).await,
                WorkloadAction::Restart => client.restart_workload(&workload_id).await,
                WorkloadAction::Delete => {
                    let outcome = match client.delete_workload(&workload_id).await {
                        Ok(()) => Ok(format!("delete {name}: deleted")),
                        Err(error) => Err(format!("delete {name}: {error}")),
                    };
                    let _ = updates
                        .send(Update::Done {
                            target: workload_id,
                            outcome,
                        })
                        .await;
                    return;
                }
            };
            match stream {
                Err(error) => Err(format!("{verb} {name}: {error}")),
                Ok(mut progress) => {
                    let mut last = None;
                    let mut failure = None;
                    while let Some(item) = progress.next().await {
                        match item {
                            Ok(Progress::Workload(workload)) => {
                                let _ = updates
                                    .send(Update::Progress {
                                        target: workload_id.clone(),
                                        stage: workload.stage(),
                                    })
                                    .await;
                                last = Some(workload.stage());
                            }
                            Ok(Progress::Log(_)) => {}
                            Err(error) => {
                                failure = Some(error);
                                break;
                            }
                        }
                    }
                    match (failure, last) {
                        (Some(error), _) => Err(format!("{verb} {name}: {error}")),
                        (None, Some(stage)) => Ok(format!("{verb} {name}: {}", stage.label())),
                        (None, None) => Err(format!("{verb} {name}: no progress from the server")),
                    }
                }
            }
        }
    };
    let _ = updates
        .send(Update::Done {
            target: workload_id,
            outcome,
        })
        .await;
}

fn spawn_detail(
    client: Client,
    workload_id: String,
    updates: mpsc::Sender<Update>,
) -> JoinHandle<()> {
    tokio::spawn(follow_detail(client, workload_id, updates))
}

/// How many lines the detail view starts with.
const LOG_TAIL: u32 = 200;

async fn open_logs(
    client: &Client,
    workload_id: &str,
    next_seq: Option<u64>,
) -> slipway_sdk::Result<BoxStream<LogEntry>> {
    let request = StreamLogsRequest {
        workload_id: workload_id.to_owned(),
        follow: true,
        tail: next_seq.is_none().then_some(LOG_TAIL),
        from_seq: next_seq.unwrap_or(0),
        ..StreamLogsRequest::default()
    };
    Ok(Box::pin(client.stream_logs(request).await?))
}

/// Follows the workload's log and its events (its history, from the oldest
/// retained) until aborted; after a break, resumes both where they were. A log
/// that ended (the workload rests stopped or failed) is opened again when an
/// event shows the workload on its way again.
async fn follow_detail(client: Client, workload_id: String, updates: mpsc::Sender<Update>) {
    let checks = tokio::spawn(follow_checks(
        client.clone(),
        workload_id.clone(),
        updates.clone(),
    ));
    follow_log_and_events(client, workload_id, updates).await;
    checks.abort();
}

/// How often the detail view reads the workload's health history again.
const CHECKS_REFRESH: Duration = Duration::from_secs(2);

/// Reads the workload's liveness checks of the last hour every
/// [`CHECKS_REFRESH`] until aborted (or the workload is gone).
async fn follow_checks(client: Client, workload_id: String, updates: mpsc::Sender<Update>) {
    let mut ticks = tokio::time::interval(CHECKS_REFRESH);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let request = GetHealthHistoryRequest {
            workload_id: workload_id.clone(),
            window_seconds: 3600,
            limit: 10,
        };
        match client.health_history_with(request).await {
            Ok(history) => {
                let update = Update::Checks {
                    workload_id: workload_id.clone(),
                    history,
                };
                if updates.send(update).await.is_err() {
                    return;
                }
            }
            Err(Error::NotFound { .. }) => return,
            // Disconnected: the next tick tries again.
            Err(_) => {}
        }
    }
}

async fn follow_log_and_events(client: Client, workload_id: String, updates: mpsc::Sender<Update>) {
    let mut next_seq: Option<u64> = None;
    let mut revision = 0u64;
    let mut failures = 0u32;
    loop {
        if failures > 0 {
            tokio::time::sleep(backoff(failures)).await;
        }
        let (mut logs, mut events) = match (
            open_logs(&client, &workload_id, next_seq).await,
            watch_from(&client, revision, &workload_id).await,
        ) {
            (Ok(logs), Ok(events)) => (Some(logs), events),
            (Err(Error::NotFound { .. }), _) | (_, Err(Error::NotFound { .. })) => return,
            _ => {
                failures += 1;
                continue;
            }
        };
        loop {
            let next_line = async {
                match logs.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                line = next_line => match line {
                    Some(Ok(entry)) => {
                        next_seq = Some(entry.seq + 1);
                        failures = 0;
                        let _ = updates.send(Update::Log { workload_id: workload_id.clone(), entry }).await;
                    }
                    Some(Err(_)) => break,
                    None => logs = None,
                },
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        revision = revision.max(event.revision);
                        failures = 0;
                        let on_its_way = event.workload.as_ref().is_some_and(|workload| {
                            !matches!(workload.stage(), Stage::Stopped | Stage::Failed)
                        });
                        if logs.is_none() && on_its_way {
                            logs = open_logs(&client, &workload_id, next_seq).await.ok();
                        }
                        let _ = updates.send(Update::History { workload_id: workload_id.clone(), event }).await;
                    }
                    Some(Err(_)) | None => break,
                },
            }
        }
        failures += 1;
    }
}
