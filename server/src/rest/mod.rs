//! REST and SSE on the gRPC port: the endpoints of the source documents as
//! JSON, and `GET /metrics`. Each handler is a thin adapter over the gRPC
//! service it stands for ([`WorkloadApi`], [`DeploymentApi`]), called in
//! process with the caller the access layer authenticated — so validation,
//! project scopes, forwarding to a workload's owner, errors and the audit
//! trail are the gRPC side's, and a REST call needs the role of its gRPC
//! method ([`grpc_method`]).

mod deployments;
mod error;
mod health;
pub mod json;
mod sse;
mod workloads;

pub use error::{ApiError, outcome, status_response};

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderMap, Method};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{
    api::{DeploymentApi, WorkloadApi},
    domain::NodeId,
    metrics::Metrics,
    orchestrator::Orchestrator,
};

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    pub workloads: Arc<WorkloadApi>,
    pub deployments: Arc<DeploymentApi>,
    pub orchestrator: Orchestrator,
    pub metrics: Metrics,
    /// This node, whose running workloads' usage `/metrics` reports.
    pub node: NodeId,
    /// Cancelled when the server shuts down: SSE streams end then.
    pub closing: CancellationToken,
    /// How often an idle SSE stream gets a comment, so that proxies keep it.
    pub keep_alive: Duration,
}

/// The REST routes, to be merged with the gRPC routes.
pub fn router(state: RestState) -> Router {
    use deployments::*;
    use workloads::*;
    let operations = Router::new()
        .route("/api/workloads/{workload_id}/start", post(start))
        .route("/api/workloads/{workload_id}/stop", post(stop))
        .route("/api/workloads/{workload_id}/restart", post(restart))
        .route(
            "/api/deployments/{deployment_id}/workloads/{workload_id}/start",
            post(start_in_deployment),
        )
        .route(
            "/api/deployments/{deployment_id}/workloads/{workload_id}/stop",
            post(stop_in_deployment),
        )
        .route(
            "/api/deployments/{deployment_id}/workloads/{workload_id}/restart",
            post(restart_in_deployment),
        );
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/api/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route("/api/deployments/{deployment_id}", get(get_deployment))
        .route(
            "/api/deployments/{deployment_id}/workloads",
            get(list_deployment_workloads).post(create_deployment_workload),
        )
        .route(
            "/api/deployments/{deployment_id}/workloads/{workload_id}",
            get(get_workload_in_deployment),
        )
        .route(
            "/api/deployments/{deployment_id}/workloads/{workload_id}/logs",
            get(logs_in_deployment),
        )
        .route("/api/workloads", get(list_workloads).post(create_workload))
        .route("/api/workloads/{workload_id}", get(get_workload))
        .route("/api/workloads/{workload_id}/status", get(get_workload))
        .route("/api/workloads/{workload_id}/logs", get(logs))
        .route("/api/workloads/{workload_id}/health", get(health::history))
        .route("/api/workloads/{workload_id}/logs/stream", get(sse::logs))
        .route(
            "/api/projects/{project_id}/deployments/stream",
            get(sse::deployments),
        )
        .merge(operations)
        .route("/api", axum::routing::any(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .with_state(state)
}

/// `GET /metrics`.
async fn metrics(State(state): State<RestState>) -> Response {
    let text = state.metrics.render(&state.orchestrator, &state.node).await;
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// Any other path under `/api`.
async fn not_found() -> ApiError {
    ApiError(Status::not_found("no such endpoint"))
}

/// Whether `path` is served by the REST router rather than gRPC.
pub fn is_rest_path(path: &str) -> bool {
    path == "/metrics" || path == "/api" || path.starts_with("/api/")
}

/// The gRPC method a REST call stands for: it needs that method's role, and
/// is audited as it. `None` for a path the router does not serve.
pub fn grpc_method(method: &Method, path: &str) -> Option<&'static str> {
    if path == "/metrics" {
        return (method == Method::GET).then_some("/slipway.http/Metrics");
    }
    let segments: Vec<&str> = path.strip_prefix("/api/")?.split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let workload_call = |rest: &[&str]| match rest {
        [] | ["status"] if get => Some("/slipway.v1.WorkloadService/GetWorkload"),
        ["logs"] if get => Some("/slipway.v1.WorkloadService/GetLogs"),
        ["health"] if get => Some("/slipway.v1.WorkloadService/GetHealthHistory"),
        ["logs", "stream"] if get => Some("/slipway.v1.WorkloadService/StreamLogs"),
        ["start"] if post => Some("/slipway.v1.WorkloadService/StartWorkload"),
        ["stop"] if post => Some("/slipway.v1.WorkloadService/StopWorkload"),
        ["restart"] if post => Some("/slipway.v1.WorkloadService/RestartWorkload"),
        _ => None,
    };
    match segments.as_slice() {
        ["deployments"] if get => Some("/slipway.v1.DeploymentService/ListDeployments"),
        ["deployments"] if post => Some("/slipway.v1.DeploymentService/CreateDeployment"),
        ["deployments", _] if get => Some("/slipway.v1.DeploymentService/GetDeployment"),
        ["deployments", _, "workloads"] if get => Some("/slipway.v1.WorkloadService/ListWorkloads"),
        ["deployments", _, "workloads"] if post => {
            Some("/slipway.v1.WorkloadService/CreateWorkload")
        }
        ["deployments", _, "workloads", _, rest @ ..] => workload_call(rest),
        ["workloads"] if get => Some("/slipway.v1.WorkloadService/ListWorkloads"),
        ["workloads"] if post => Some("/slipway.v1.WorkloadService/CreateWorkload"),
        ["workloads", _, rest @ ..] => workload_call(rest),
        ["projects", _, "deployments", "stream"] if get => {
            Some("/slipway.v1.WorkloadService/WatchEvents")
        }
        _ => None,
    }
}

/// A JSON body, or `400` naming the field serde stumbled on.
fn parse_body<T: serde::de::DeserializeOwned + Default>(
    body: &axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        // serde's message may quote the value: never a secret's.
        if field.starts_with("secretEnv") {
            return ApiError::bad_field(&field, "must map names to string values");
        }
        ApiError::bad_field(&field, &error.inner().to_string())
    })
}

/// A gRPC request for `message` on behalf of the REST call: its extensions
/// (the caller, the audit note) and its `authorization` header, which a call
/// forwarded to a workload's owner carries on.
fn grpc_request<T>(
    headers: &HeaderMap,
    extensions: http::Extensions,
    message: T,
) -> tonic::Request<T> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    if let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| tonic::metadata::AsciiMetadataValue::try_from(value.as_bytes()).ok())
    {
        metadata.insert("authorization", value);
    }
    tonic::Request::from_parts(metadata, extensions, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::permission_for;

    #[test]
    fn every_rest_call_stands_for_a_method_with_a_permission() {
        let calls = [
            (Method::GET, "/metrics", "Metrics"),
            (Method::GET, "/api/deployments", "ListDeployments"),
            (Method::POST, "/api/deployments", "CreateDeployment"),
            (Method::GET, "/api/deployments/d", "GetDeployment"),
            (Method::GET, "/api/deployments/d/workloads", "ListWorkloads"),
            (
                Method::POST,
                "/api/deployments/d/workloads",
                "CreateWorkload",
            ),
            (
                Method::POST,
                "/api/deployments/d/workloads/w/stop",
                "StopWorkload",
            ),
            (
                Method::POST,
                "/api/deployments/d/workloads/w/restart",
                "RestartWorkload",
            ),
            (
                Method::GET,
                "/api/deployments/d/workloads/w/logs",
                "GetLogs",
            ),
            (Method::POST, "/api/workloads/w/start", "StartWorkload"),
            (Method::POST, "/api/workloads/w/stop", "StopWorkload"),
            (Method::GET, "/api/workloads/w/status", "GetWorkload"),
            (Method::GET, "/api/workloads/w/health", "GetHealthHistory"),
            (Method::GET, "/api/workloads/w/logs/stream", "StreamLogs"),
            (
                Method::GET,
                "/api/projects/p/deployments/stream",
                "WatchEvents",
            ),
        ];
        for (method, path, name) in calls {
            let grpc = grpc_method(&method, path).unwrap_or_else(|| panic!("{method} {path}"));
            assert!(
                grpc.ends_with(&format!("/{name}")),
                "{method} {path}: {grpc}"
            );
            assert!(permission_for(grpc).is_some(), "{grpc} has no permission");
        }
        assert_eq!(grpc_method(&Method::DELETE, "/api/workloads/w/stop"), None);
        assert_eq!(grpc_method(&Method::GET, "/api/workloads/w/stop"), None);
        assert_eq!(grpc_method(&Method::GET, "/api/nothing"), None);
    }
}
