//! Orchestrator errors to gRPC statuses, with rich details: `ErrorInfo` for an
//! invalid state, `BadRequest` field violations for invalid input.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{FieldViolation, Operation},
    orchestrator::{OperationFailure, OrchestratorError},
};

/// The `ErrorInfo.domain` of Slipway's errors.
pub const ERROR_DOMAIN: &str = "slipway.dev";

/// `INVALID_ARGUMENT` naming every bad field.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(&violation.field, &violation.description);
    }
    let message = violations
        .iter()
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ");
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {message}"),
        details,
    )
}

/// The status a client gets for `error`. Internal details are logged, not sent.
pub fn to_status(error: OrchestratorError) -> Status {
    match error {
        OrchestratorError::NotFound { .. } => Status::not_found(error.to_string()),
        OrchestratorError::InvalidArgument { violations } => invalid_argument(&violations),
        OrchestratorError::InvalidState {
            workload_id,
            current_stage,
            message,
        } => {
            let mut details = ErrorDetails::new();
            let metadata = HashMap::from([
                ("workload_id".to_owned(), workload_id.to_string()),
                (
                    "current_stage".to_owned(),
                    current_stage.as_str().to_owned(),
                ),
            ]);
            details.set_error_info("INVALID_STATE", ERROR_DOMAIN, metadata);
            Status::with_error_details(Code::FailedPrecondition, message, details)
        }
        OrchestratorError::AlreadyExists { .. } => Status::already_exists(error.to_string()),
        OrchestratorError::DeploymentInUse { ref id } => {
            let mut details = ErrorDetails::new();
            let metadata = HashMap::from([("deployment_id".to_owned(), id.to_string())]);
            details.set_error_info("DEPLOYMENT_IN_USE", ERROR_DOMAIN, metadata);
            Status::with_error_details(Code::FailedPrecondition, error.to_string(), details)
        }
        OrchestratorError::Compacted { requested, oldest } => {
            let mut details = ErrorDetails::new();
            let metadata = HashMap::from([
                ("requested_revision".to_owned(), requested.to_string()),
                ("oldest_revision".to_owned(), oldest.to_string()),
            ]);
            details.set_error_info("REVISION_COMPACTED", ERROR_DOMAIN, metadata);
            Status::with_error_details(Code::OutOfRange, error.to_string(), details)
        }
        OrchestratorError::RevisionAhead { requested, current } => {
            let mut details = ErrorDetails::new();
            let metadata = HashMap::from([
                ("requested_revision".to_owned(), requested.to_string()),
                ("current_revision".to_owned(), current.to_string()),
            ]);
            details.set_error_info("REVISION_AHEAD", ERROR_DOMAIN, metadata);
            Status::with_error_details(Code::OutOfRange, error.to_string(), details)
        }
        OrchestratorError::RevisionConflict { ref id, current } => {
            let mut details = ErrorDetails::new();
            let metadata = HashMap::from([
                ("deployment_id".to_owned(), id.to_string()),
                ("current_revision".to_owned(), current.to_string()),
            ]);
            details.set_error_info("REVISION_CONFLICT", ERROR_DOMAIN, metadata);
            Status::with_error_details(Code::Aborted, error.to_string(), details)
        }
        OrchestratorError::Unavailable(message) => Status::unavailable(message),
        // Forwarded by the API; seen here only when forwarding is not possible.
        OrchestratorError::Elsewhere { .. } => Status::unavailable(error.to_string()),
        OrchestratorError::NoNodeFits { .. } => Status::failed_precondition(error.to_string()),
        OrchestratorError::Internal { context, source } => {
            tracing::error!(error = %source, context, "internal error");
            Status::internal(format!("internal error while {context}"))
        }
    }
}

/// The status that ends the progress stream of an operation that did not reach
/// its goal: `ABORTED` with `ErrorInfo{reason: "OPERATION_FAILED"}` carrying the
/// workload, the stage, the reason, the exit code and the last lines of output
/// (one per line in `last_lines`).
pub fn operation_failed(operation: Operation, failure: &OperationFailure) -> Status {
    let mut metadata = HashMap::from([
        ("workload_id".to_owned(), failure.workload.id.to_string()),
        ("operation".to_owned(), operation.as_str().to_owned()),
        ("stage".to_owned(), failure.stage.as_str().to_owned()),
        (
            "current_stage".to_owned(),
            failure.workload.stage.as_str().to_owned(),
        ),
        ("reason".to_owned(), failure.reason.clone()),
        ("last_lines".to_owned(), failure.last_lines.join("\n")),
    ]);
    if let Some(code) = failure.exit_code {
        metadata.insert("exit_code".to_owned(), code.to_string());
    }
    let mut details = ErrorDetails::new();
    details.set_error_info("OPERATION_FAILED", ERROR_DOMAIN, metadata);
    let message = format!(
        "{} failed in {}: {}",
        operation.as_str(),
        failure.stage,
        failure.reason
    );
    Status::with_error_details(Code::Aborted, message, details)
}
