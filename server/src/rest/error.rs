//! gRPC statuses as REST errors: an HTTP status and a JSON body in the shape
//! of the source documents, `{"error": "InvalidState", "message": …,
//! "workloadId": …, "currentStage": …}`, built from the status's rich details.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde_json::{Map, Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A failed REST call: the status the gRPC side would have answered.
#[derive(Debug)]
pub struct ApiError(pub Status);

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        ApiError(status)
    }
}

/// The result of a REST call, in the response's extensions for the audit
/// trail: the code and message of the status it stands for.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    /// `400 InvalidArgument` naming `field`.
    pub fn bad_field(field: &str, description: &str) -> ApiError {
        ApiError(crate::api::invalid_argument(&[
            crate::domain::FieldViolation::new(field, description),
        ]))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0;
        let (http_status, body) = body(&status);
        let mut response = (http_status, Json(body)).into_response();
        response.extensions_mut().insert(Outcome {
            code: status.code(),
            message: status.message().to_owned(),
        });
        response
    }
}

/// The HTTP status and JSON body for `status`.
pub fn body(status: &Status) -> (StatusCode, Value) {
    let details = status.get_error_details();
    let info = details.error_info();
    let reason = info.map(|info| info.reason.as_str()).unwrap_or_default();
    let metadata = |key: &str| {
        info.and_then(|info| info.metadata.get(key))
            .map(|value| Value::String(value.clone()))
    };
    let (http_status, error) = match (status.code(), reason) {
        (Code::FailedPrecondition, "INVALID_STATE") => (StatusCode::CONFLICT, "InvalidState"),
        (Code::FailedPrecondition, "DEPLOYMENT_IN_USE") => {
            (StatusCode::CONFLICT, "DeploymentInUse")
        }
        (Code::FailedPrecondition, _) => (StatusCode::CONFLICT, "FailedPrecondition"),
        (Code::Aborted, "OPERATION_FAILED") => {
            (StatusCode::UNPROCESSABLE_ENTITY, "OperationFailed")
        }
        (Code::Aborted, _) => (StatusCode::CONFLICT, "Aborted"),
        (Code::NotFound, _) => (StatusCode::NOT_FOUND, "NotFound"),
        (Code::InvalidArgument, _) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
        (Code::AlreadyExists, _) => (StatusCode::CONFLICT, "AlreadyExists"),
        (Code::Unauthenticated, _) => (StatusCode::UNAUTHORIZED, "Unauthenticated"),
        (Code::PermissionDenied, _) => (StatusCode::FORBIDDEN, "PermissionDenied"),
        (Code::ResourceExhausted, _) => (StatusCode::TOO_MANY_REQUESTS, "ResourceExhausted"),
        (Code::OutOfRange, "REVISION_COMPACTED") => (StatusCode::GONE, "RevisionCompacted"),
        (Code::OutOfRange, _) => (StatusCode::BAD_REQUEST, "OutOfRange"),
        (Code::Unavailable, _) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        (Code::DeadlineExceeded, _) => (StatusCode::GATEWAY_TIMEOUT, "DeadlineExceeded"),
        (Code::Cancelled, _) => (StatusCode::SERVICE_UNAVAILABLE, "Cancelled"),
        (Code::Unimplemented, _) => (StatusCode::NOT_IMPLEMENTED, "Unimplemented"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
    };
    let mut body = Map::new();
    body.insert("error".to_owned(), json!(error));
    body.insert("message".to_owned(), json!(status.message()));
    for (key, name) in [
        ("workload_id", "workloadId"),
        ("current_stage", "currentStage"),
        ("deployment_id", "deploymentId"),
        ("project", "project"),
        ("operation", "operation"),
        ("stage", "stage"),
        ("reason", "reason"),
        ("exit_code", "exitCode"),
        ("requested_revision", "requestedRevision"),
        ("oldest_revision", "oldestRevision"),
    ] {
        if let Some(value) = metadata(key) {
            body.insert(name.to_owned(), value);
        }
    }
    if let Some(lines) = info.and_then(|info| info.metadata.get("last_lines")) {
        body.insert(
            "lastLines".to_owned(),
            json!(lines.lines().collect::<Vec<_>>()),
        );
    }
    if let Some(bad_request) = details.bad_request() {
        let fields: Vec<Value> = bad_request
            .field_violations
            .iter()
            .map(
                |violation| json!({"field": violation.field, "description": violation.description}),
            )
            .collect();
        body.insert("fields".to_owned(), Value::Array(fields));
    }
    (http_status, Value::Object(body))
}

/// The response for a call refused before it reached a handler (no token,
/// the wrong role, a limit), as the HTTP response the layers send back.
pub fn status_response(status: &Status) -> http::Response<tonic::body::Body> {
    ApiError(status.clone())
        .into_response()
        .map(tonic::body::Body::new)
}

/// The code and message a REST response stands for, for the audit trail.
pub fn outcome<B>(response: &http::Response<B>) -> (Code, String) {
    if let Some(outcome) = response.extensions().get::<Outcome>() {
        return (outcome.code, outcome.message.clone());
    }
    let code = match response.status() {
        status if status.is_success() => Code::Ok,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Code::Unimplemented,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE => Code::InvalidArgument,
        _ => Code::Unknown,
    };
    (code, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_state_is_a_409_in_the_documents_shape() {
        let status = crate::api::to_status(crate::orchestrator::OrchestratorError::InvalidState {
            workload_id: crate::domain::WorkloadId::generate(),
            current_stage: crate::domain::Stage::Stopped,
            message: "Cannot stop workload: already stopped".to_owned(),
        });
        let (http_status, body) = body(&status);
        assert_eq!(http_status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "InvalidState");
        assert_eq!(body["message"], "Cannot stop workload: already stopped");
        assert_eq!(body["currentStage"], "stopped");
        assert!(body["workloadId"].as_str().is_some_and(|id| !id.is_empty()));
    }

    #[test]
    fn invalid_input_names_the_fields() {
        let (http_status, body) = body(&ApiError::bad_field("Last-Event-ID", "is not a number").0);
        assert_eq!(http_status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "InvalidArgument");
        assert_eq!(body["fields"][0]["field"], "Last-Event-ID");
    }
}
