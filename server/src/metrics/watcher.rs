//! The metrics read from the event log: failures by stage and error type,
//! restarts by policy, start and build durations, for the workloads this node
//! runs (every node sees every event; each counts its own runs only).

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::{
    domain::{EventKind, NodeId, Stage, Workload, WorkloadId},
    orchestrator::{Orchestrator, OrchestratorError, WatchItem},
    store::EventFilter,
};

/// What the watcher remembers of a workload between its events.
#[derive(Default)]
struct Seen {
    stage: Option<Stage>,
    /// When the current run entered `validate` and `build` (µs).
    validate_at: Option<i64>,
    build_at: Option<i64>,
    restart_count: u32,
}

/// Follows the event log from now until `closing`, counting into `metrics`.
/// A watch that falls behind the retained events starts again from the newest.
pub async fn watch_events(
    metrics: Metrics,
    orchestrator: Orchestrator,
    node: NodeId,
    closing: CancellationToken,
) {
    let mut seen: HashMap<WorkloadId, Seen> = HashMap::new();
    let mut since = orchestrator.revision();
    while !closing.is_cancelled() {
        let events = match orchestrator
            .watch_events(since, EventFilter::default(), Duration::from_secs(60))
            .await
        {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "metrics: could not watch the events; trying again");
                since = orchestrator.revision();
                tokio::select! {
                    _ = closing.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        let mut events = std::pin::pin!(events.take_until(closing.clone().cancelled_owned()));
        while let Some(item) = events.next().await {
            match item {
                Ok(WatchItem::Event(event)) => {
                    since = event.revision;
                    match (event.kind, event.workload) {
                        (
                            EventKind::WorkloadUpdated | EventKind::WorkloadCreated,
                            Some(workload),
                        ) if workload.node_id.as_ref() == Some(&node) => {
                            let entry = seen.entry(workload.id.clone()).or_default();
                            count(&metrics, entry, &workload, event.timestamp.0);
                        }
                        (EventKind::WorkloadDeleted, _) => {
                            if let Some(id) = &event.workload_id {
                                seen.remove(id);
                            }
                        }
                        _ => {}
                    }
                }
                Ok(WatchItem::Bookmark(revision)) => since = revision,
                Err(OrchestratorError::Compacted { .. }) => {
                    since = orchestrator.revision();
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics: the event watch ended; watching again");
                    break;
                }
            }
        }
    }
}

/// Counts what changed between `seen` and `workload` (the event at `at`, µs).
fn count(metrics: &Metrics, seen: &mut Seen, workload: &Workload, at: i64) {
    let seconds =
        |from: i64| Duration::from_micros(u64::try_from(at - from).unwrap_or(0)).as_secs_f64();
    if workload.restart_count > seen.restart_count {
        metrics
            .inner
            .restarts
            .inc_by(u64::from(workload.restart_count - seen.restart_count));
    }
    seen.restart_count = workload.restart_count;
    if seen.stage == Some(workload.stage) {
        return;
    }
    let previous = seen.stage.replace(workload.stage);
    if previous == Some(Stage::Build)
        && let Some(build_at) = seen.build_at.take()
    {
        metrics.inner.build_seconds.observe(seconds(build_at));
    }
    match workload.stage {
        Stage::Validate => {
            seen.validate_at = Some(at);
            seen.build_at = None;
        }
        Stage::Build => seen.build_at = Some(at),
        Stage::Running => {
            if let Some(validate_at) = seen.validate_at.take() {
                metrics.inner.start_seconds.observe(seconds(validate_at));
            }
        }
        Stage::Failed => {
            seen.validate_at = None;
            let stage = workload.failed_stage.unwrap_or(Stage::Failed);
            metrics.workload_failed(stage, error_type(workload));
        }
        _ => {}
    }
}

/// A small, fixed set of error types, so that the label stays bounded.
fn error_type(workload: &Workload) -> &'static str {
    let error = workload.error.as_deref().unwrap_or_default();
    if error.contains("orchestrator restarted") {
        "orchestrator_restarted"
    } else if error.contains("node") && error.contains("lost") {
        "node_lost"
    } else if workload.exit_code.is_some() {
        "exited"
    } else if error.contains("ready") || error.contains("readiness") {
        "not_ready"
    } else if error.contains("health") {
        "unhealthy"
    } else {
        "error"
    }
}
