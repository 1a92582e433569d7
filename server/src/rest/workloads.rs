//! The workload endpoints: each decodes the HTTP request into
//! the gRPC request it stands for, calls the gRPC service in process, and
//! encodes the answer.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use futures::{Stream, StreamExt};
use http::{Extensions, HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway::v1::{
    CreateWorkloadRequest, GetLogsRequest, GetWorkloadRequest, ListWorkloadsRequest,
    RestartWorkloadRequest, StartWorkloadRequest, StopWorkloadRequest, Workload, WorkloadProgress,
    workload_progress::Update, workload_service_server::WorkloadService,
};
use tonic::Status;

use super::{ApiError, RestState, grpc_request, json, parse_body};

type Result<T> = std::result::Result<T, ApiError>;

// ----- workloads ---------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewWorkloadBody {
    #[serde(default)]
    deployment_id: String,
}

async fn create(
    state: &RestState,
    headers: &HeaderMap,
    extensions: Extensions,
    deployment_id: String,
) -> Result<Response> {
    let request = CreateWorkloadRequest { deployment_id };
    let workload = state
        .workloads
        .create_workload(grpc_request(headers, extensions, request))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(json::workload(&workload))).into_response())
}

pub async fn create_workload(
    State(state): State<RestState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response> {
    let body = parse_body::<NewWorkloadBody>(&body)?;
    create(&state, &headers, extensions, body.deployment_id).await
}

pub async fn create_deployment_workload(
    State(state): State<RestState>,
    Path(deployment_id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response> {
    create(&state, &headers, extensions, deployment_id).await
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadsQuery {
    deployment_id: Option<String>,
    deployment_name: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
}

async fn list(
    state: &RestState,
    headers: &HeaderMap,
    extensions: Extensions,
    query: WorkloadsQuery,
) -> Result<Json<Value>> {
    let request = ListWorkloadsRequest {
        deployment_id: query.deployment_id.unwrap_or_default(),
        deployment_name: query.deployment_name.unwrap_or_default(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
        ..ListWorkloadsRequest::default()
    };
    let page = state
        .workloads
        .list_workloads(grpc_request(headers, extensions, request))
        .await?
        .into_inner();
    Ok(Json(json!({
        "workloads": page.workloads.iter().map(json::workload).collect::<Vec<_>>(),
        "nextPageToken": page.next_page_token,
        "revision": page.revision,
    })))
}

pub async fn list_workloads(
    State(state): State<RestState>,
    Query(query): Query<WorkloadsQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    list(&state, &headers, extensions, query).await
}

pub async fn list_deployment_workloads(
    State(state): State<RestState>,
    Path(deployment_id): Path<String>,
    Query(query): Query<WorkloadsQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    let query = WorkloadsQuery {
        deployment_id: Some(deployment_id),
        ..query
    };
    list(&state, &headers, extensions, query).await
}

/// The workload, checked to belong to `deployment_id` when one is given
/// (`404` when it does not).
async fn fetch_workload(
    state: &RestState,
    headers: &HeaderMap,
    extensions: Extensions,
    workload_id: String,
    deployment_id: Option<&str>,
) -> Result<Workload> {
    let request = GetWorkloadRequest {
        workload_id: workload_id.clone(),
    };
    let workload = state
        .workloads
        .get_workload(grpc_request(headers, extensions, request))
        .await?
        .into_inner();
    if let Some(deployment_id) = deployment_id
        && workload.deployment_id != deployment_id
    {
        return Err(ApiError(Status::not_found(format!(
            "workload {workload_id} is not a workload of deployment {deployment_id}"
        ))));
    }
    Ok(workload)
}

pub async fn get_workload(
    State(state): State<RestState>,
    Path(workload_id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    let workload = fetch_workload(&state, &headers, extensions, workload_id, None).await?;
    Ok(Json(json::workload(&workload)))
}

pub async fn get_workload_in_deployment(
    State(state): State<RestState>,
    Path((deployment_id, workload_id)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    let workload = fetch_workload(
        &state,
        &headers,
        extensions,
        workload_id,
        Some(&deployment_id),
    )
    .await?;
    Ok(Json(json::workload(&workload)))
}

// ----- logs --------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogsQuery {
    after_seq: Option<u64>,
    limit: Option<u32>,
}

async fn read_logs(
    state: &RestState,
    headers: &HeaderMap,
    extensions: Extensions,
    workload_id: String,
    query: LogsQuery,
) -> Result<Json<Value>> {
    let request = GetLogsRequest {
        workload_id,
        after_seq: query.after_seq.unwrap_or(0),
        limit: query.limit.unwrap_or(0),
    };
    let page = state
        .workloads
        .get_logs(grpc_request(headers, extensions, request))
        .await?
        .into_inner();
    Ok(Json(json!({
        "entries": page.entries.iter().map(json::log_entry).collect::<Vec<_>>(),
        "nextAfterSeq": page.next_after_seq,
        "lastSeq": page.last_seq,
        "dropped": page.dropped,
    })))
}

pub async fn logs(
    State(state): State<RestState>,
    Path(workload_id): Path<String>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    read_logs(&state, &headers, extensions, workload_id, query).await
}

pub async fn logs_in_deployment(
    State(state): State<RestState>,
    Path((deployment_id, workload_id)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>> {
    fetch_workload(
        &state,
        &headers,
        extensions.clone(),
        workload_id.clone(),
        Some(&deployment_id),
    )
    .await?;
    read_logs(&state, &headers, extensions, workload_id, query).await
}

// ----- operations --------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OperationQuery {
    /// `false`: answer `202` once the operation is accepted, and let it run.
    wait: Option<bool>,
    /// Stop only: the grace period before SIGKILL, instead of the spec's.
    grace_period_seconds: Option<u32>,
}

#[derive(Clone, Copy)]
enum Kind {
    Start,
    Stop,
    Restart,
}

/// Runs an operation and answers with the final workload (`200`), or with
/// the accepted workload (`202`) when `wait=false`; a refusal or a failure is
/// the error the gRPC stream ends with.
async fn operate(
    state: &RestState,
    headers: &HeaderMap,
    extensions: Extensions,
    kind: Kind,
    workload_id: String,
    deployment_id: String,
    query: OperationQuery,
) -> Result<Response> {
    let api = &state.workloads;
    let wait = query.wait.unwrap_or(true);
    let grace_period_seconds = query.grace_period_seconds;
    match kind {
        Kind::Start => {
            let request = StartWorkloadRequest {
                workload_id,
                deployment_id,
            };
            let stream = api
                .start_workload(grpc_request(headers, extensions, request))
                .await?;
            follow(stream.into_inner(), wait).await
        }
        Kind::Stop => {
            let request = StopWorkloadRequest {
                workload_id,
                deployment_id,
                grace_period_seconds,
            };
            let stream = api
                .stop_workload(grpc_request(headers, extensions, request))
                .await?;
            follow(stream.into_inner(), wait).await
        }
        Kind::Restart => {
            let request = RestartWorkloadRequest {
                workload_id,
                deployment_id,
            };
            let stream = api
                .restart_workload(grpc_request(headers, extensions, request))
                .await?;
            follow(stream.into_inner(), wait).await
        }
    }
}

async fn follow(
    progress: impl Stream<Item = std::result::Result<WorkloadProgress, Status>> + Unpin,
    wait: bool,
) -> Result<Response> {
    let mut progress = progress;
    let mut last = None;
    while let Some(message) = progress.next().await {
        if let Some(Update::Workload(workload)) = message?.update {
            if !wait {
                return Ok((StatusCode::ACCEPTED, Json(json::workload(&workload))).into_response());
            }
            last = Some(workload);
        }
    }
    let workload =
        last.ok_or_else(|| Status::internal("the operation ended without its workload"))?;
    Ok(Json(json::workload(&workload)).into_response())
}

macro_rules! operation_handlers {
    ($($name:ident, $in_deployment:ident, $kind:expr;)*) => {$(
        pub async fn $name(
            State(state): State<RestState>,
            Path(workload_id): Path<String>,
            Query(query): Query<OperationQuery>,
            headers: HeaderMap,
            extensions: Extensions,
        ) -> Result<Response> {
            operate(&state, &headers, extensions, $kind, workload_id, String::new(), query).await
        }

        pub async fn $in_deployment(
            State(state): State<RestState>,
            Path((deployment_id, workload_id)): Path<(String, String)>,
            Query(query): Query<OperationQuery>,
            headers: HeaderMap,
            extensions: Extensions,
        ) -> Result<Response> {
            operate(&state, &headers, extensions, $kind, workload_id, deployment_id, query).await
        }
    )*};
}

operation_handlers! {
    start, start_in_deployment, Kind::Start;
    stop, stop_in_deployment, Kind::Stop;
    restart, restart_in_deployment, Kind::Restart;
}
