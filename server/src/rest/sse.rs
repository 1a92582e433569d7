//! The SSE streams. Every event carries an id a client resumes from with
//! `Last-Event-ID`: a log line's seq, an event's revision. Resuming replays
//! from Slipway's own store, with no gap and no duplicate.

use std::{collections::HashMap, convert::Infallible};

use axum::{
    extract::{Path, Query, State},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt, stream};
use http::{Extensions, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway::v1::{
    EventType, ListDeploymentsRequest, ListWorkloadsRequest, StreamLogsRequest, WatchEventsRequest,
    deployment_service_server::DeploymentService, workload_service_server::WorkloadService,
};
use tonic::{Code, Status};

use super::{ApiError, RestState, grpc_request, json};

type Result<T> = std::result::Result<T, ApiError>;
type Events = std::pin::Pin<Box<dyn Stream<Item = SseEvent> + Send>>;

/// How often, at most, an idle deployments stream gets a `ping` event with
/// the current revision (so that a client resumes from there).
const PING_SECONDS: u32 = 15;

/// The `Last-Event-ID` header: absent, or a number (`400` otherwise).
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_field(
                "Last-Event-ID",
                "is not an event id of this stream (a number)",
            )
        })
}

fn error_event(status: &Status) -> SseEvent {
    let (_, body) = super::error::body(status);
    SseEvent::default().event("error").data(body.to_string())
}

fn respond(state: &RestState, events: Events) -> Response {
    let closing = state.closing.clone().cancelled_owned();
    let events = events.take_until(closing).map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.keep_alive))
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamQuery {
    /// Keep the stream open for new lines (default), until the run ends.
    follow: Option<bool>,
    /// Start with the last `tail` lines (ignored when resuming).
    tail: Option<u32>,
}

/// `GET /api/workloads/:id/logs/stream`: `log` events (a `truncated` event
/// for lines retention dropped), id = seq; `end` when the log is complete.
pub async fn logs(
    State(state): State<RestState>,
    Path(workload_id): Path<String>,
    Query(query): Query<LogStreamQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response> {
    let resume = last_event_id(&headers)?;
    let request = StreamLogsRequest {
        workload_id,
        from_seq: resume.map_or(0, |seq| seq.saturating_add(1)),
        tail: if resume.is_some() { None } else { query.tail },
        follow: query.follow.unwrap_or(true),
        ..StreamLogsRequest::default()
    };
    let lines = state
        .workloads
        .stream_logs(grpc_request(&headers, extensions, request))
        .await?
        .into_inner();
    let events = stream::unfold(Some(lines), |lines| async move {
        let mut lines = lines?;
        match lines.next().await {
            Some(Ok(entry)) => {
                let kind = if entry.dropped > 0 {
                    "truncated"
                } else {
                    "log"
                };
                let event = SseEvent::default()
                    .event(kind)
                    .id(entry.seq.to_string())
                    .data(json::log_entry(&entry).to_string());
                Some((event, Some(lines)))
            }
            Some(Err(status)) => Some((error_event(&status), None)),
            None => Some((SseEvent::default().event("end").data("{}"), None)),
        }
    });
    Ok(respond(&state, Box::pin(events)))
}

/// `GET /api/projects/:projectId/deployments/stream`: an `init` snapshot (the
/// project's deployments with their workloads, id = its revision), then
/// `workload-update` and `deployment-update` events (id = revision), and a
/// `ping` with the current revision when nothing happened for a while.
/// `-` is the project of deployments created without one. With
/// `Last-Event-ID`, the stream resumes after that revision without a new
/// snapshot — unless the events since were compacted, when it starts over
/// with one.
pub async fn deployments(
    State(state): State<RestState>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response> {
    let project = if project_id == "-" {
        String::new()
    } else {
        project_id
    };
    let resume = last_event_id(&headers)?;
    let watch = |since: u64| WatchEventsRequest {
        since_revision: since,
        bookmark_interval_seconds: Some(PING_SECONDS),
        ..WatchEventsRequest::default()
    };
    let mut projects = ProjectOf::new(&state, &headers, &extensions, project.clone());
    let (init, events) = match resume {
        Some(since) => {
            let watched = state
                .workloads
                .watch_events(grpc_request(&headers, extensions.clone(), watch(since)))
                .await;
            match watched {
                Ok(events) => (None, events.into_inner()),
                Err(status) if status.code() == Code::OutOfRange => {
                    let (init, revision) =
                        snapshot(&state, &headers, &extensions, &project).await?;
                    let events = state
                        .workloads
                        .watch_events(grpc_request(&headers, extensions.clone(), watch(revision)))
                        .await?;
                    (Some(init), events.into_inner())
                }
                Err(status) => return Err(status.into()),
            }
        }
        None => {
            let (init, revision) = snapshot(&state, &headers, &extensions, &project).await?;
            let events = state
                .workloads
                .watch_events(grpc_request(&headers, extensions.clone(), watch(revision)))
                .await?;
            (Some(init), events.into_inner())
        }
    };
    for deployment in init
        .as_ref()
        .and_then(|init| init.get("deployments"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = deployment.get("id").and_then(Value::as_str) {
            projects.known.insert(id.to_owned(), true);
        }
    }
    let first = init.map(|init| {
        let revision = init["revision"].as_u64().unwrap_or(0);
        SseEvent::default()
            .event("init")
            .id(revision.to_string())
            .data(init.to_string())
    });
    let updates = stream::unfold(Some((events, projects)), |state| async move {
        let (mut events, mut projects) = state?;
        loop {
            let event = match events.next().await {
                Some(Ok(event)) => event,
                Some(Err(status)) => return Some((Some(error_event(&status)), None)),
                None => return None,
            };
            let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
            let name = match kind {
                EventType::Bookmark => {
                    let ping = SseEvent::default()
                        .event("ping")
                        .id(event.revision.to_string())
                        .data(json!({ "revision": event.revision }).to_string());
                    return Some((Some(ping), Some((events, projects))));
                }
                EventType::DeploymentCreated | EventType::DeploymentDeleted => "deployment-update",
                _ => "workload-update",
            };
            if !projects.includes(&event.deployment_id).await {
                continue;
            }
            let update = SseEvent::default()
                .event(name)
                .id(event.revision.to_string())
                .data(json::event(&event).to_string());
            return Some((Some(update), Some((events, projects))));
        }
    })
    .filter_map(|event| async move { event });
    let events = stream::iter(first).chain(updates);
    Ok(respond(&state, Box::pin(events)))
}

/// The `init` snapshot of `project` and the revision it is consistent with:
/// the workloads are listed first, so that every change after the revision
/// comes as an event.
async fn snapshot(
    state: &RestState,
    headers: &HeaderMap,
    extensions: &Extensions,
    project: &str,
) -> Result<(Value, u64)> {
    let mut workloads = Vec::new();
    let mut revision = None;
    let mut page_token = String::new();
    loop {
        let request = ListWorkloadsRequest {
            page_size: 1000,
            page_token: page_token.clone(),
            ..ListWorkloadsRequest::default()
        };
        let page = state
            .workloads
            .list_workloads(grpc_request(headers, extensions.clone(), request))
            .await?
            .into_inner();
        revision.get_or_insert(page.revision);
        workloads.extend(page.workloads);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut deployments = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListDeploymentsRequest {
            project: project.to_owned(),
            page_size: 1000,
            page_token: page_token.clone(),
        };
        let page = state
            .deployments
            .list_deployments(grpc_request(headers, extensions.clone(), request))
            .await?
            .into_inner();
        deployments.extend(
            page.deployments
                .into_iter()
                .filter(|deployment| deployment.project == project),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let revision = revision.unwrap_or(0);
    let deployments: Vec<Value> = deployments
        .iter()
        .map(|deployment| {
            let mut value = json::deployment(deployment);
            let of_deployment: Vec<Value> = workloads
                .iter()
                .filter(|workload| workload.deployment_id == deployment.id)
                .map(json::workload)
                .collect();
            value["workloads"] = Value::Array(of_deployment);
            value
        })
        .collect();
    let project = if project.is_empty() {
        Value::Null
    } else {
        json!(project)
    };
    Ok((
        json!({ "revision": revision, "project": project, "deployments": deployments }),
        revision,
    ))
}

/// Which deployments belong to the stream's project, read once each.
struct ProjectOf {
    state: RestState,
    headers: HeaderMap,
    extensions: Extensions,
    project: String,
    known: HashMap<String, bool>,
}

impl ProjectOf {
    fn new(
        state: &RestState,
        headers: &HeaderMap,
        extensions: &Extensions,
        project: String,
    ) -> ProjectOf {
        ProjectOf {
            state: state.clone(),
            headers: headers.clone(),
            extensions: extensions.clone(),
            project,
            known: HashMap::new(),
        }
    }

    /// Whether the deployment `id` is of the project; one that cannot be read
    /// (deleted before it was seen) is not.
    async fn includes(&mut self, id: &str) -> bool {
        if let Some(known) = self.known.get(id) {
            return *known;
        }
        let request = slipway::v1::GetDeploymentRequest {
            id: id.to_owned(),
            ..slipway::v1::GetDeploymentRequest::default()
        };
        let belongs = match self
            .state
            .deployments
            .get_deployment(grpc_request(
                &self.headers,
                self.extensions.clone(),
                request,
            ))
            .await
        {
            Ok(deployment) => deployment.get_ref().project == self.project,
            Err(_) => return false,
        };
        self.known.insert(id.to_owned(), belongs);
        belongs
    }
}
