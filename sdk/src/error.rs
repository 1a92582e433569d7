//! The SDK's typed errors, decoded from gRPC statuses and their rich details.

use slipway::v1::{Stage, Workload};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path, like `spec.env[1BAD]` or `service_path`.
    pub field: String,
    pub description: String,
}

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workload's stage does not allow the operation (`FAILED_PRECONDITION`).
    #[error("{message}")]
    InvalidState {
        workload_id: String,
        current_stage: Stage,
        message: String,
    },
    /// No such deployment or workload.
    #[error("{message}")]
    NotFound { message: String },
    /// The request was malformed; every bad field is named.
    #[error("{message}")]
    InvalidArgument {
        message: String,
        violations: Vec<FieldViolation>,
    },
    /// A deployment with that name exists.
    #[error("{message}")]
    AlreadyExists { message: String },
    /// A watch asked for a revision that is no longer retained: list again, then
    /// watch from the list's revision.
    #[error("{message}")]
    Compacted {
        oldest_revision: u64,
        message: String,
    },
    /// The server (or a runtime's engine) cannot be reached.
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    /// The connection could not be made.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// A wait ended because the workload settled in another stage.
    #[error("workload {} is {} (waiting for {}): {}", workload.id, stage_name(workload.stage), wanted.label(), workload.error)]
    UnexpectedStage {
        workload: Box<Workload>,
        wanted: Stage,
    },
    /// A stream ended before it said what the caller waited for.
    #[error("the stream ended early: {0}")]
    StreamEnded(&'static str),
    /// Any other status.
    #[error("{code:?}: {message}")]
    Other { code: Code, message: String },
}

fn stage_name(value: i32) -> &'static str {
    Stage::try_from(value).map_or("unknown", Stage::label)
}

impl Error {
    /// The gRPC code behind the error, when it came from the server.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::InvalidState { .. } => Some(Code::FailedPrecondition),
            Error::NotFound { .. } => Some(Code::NotFound),
            Error::InvalidArgument { .. } => Some(Code::InvalidArgument),
            Error::AlreadyExists { .. } => Some(Code::AlreadyExists),
            Error::Compacted { .. } => Some(Code::OutOfRange),
            Error::Unavailable { .. } => Some(Code::Unavailable),
            Error::Other { code, .. } => Some(*code),
            Error::Connect { .. } | Error::UnexpectedStage { .. } | Error::StreamEnded(_) => None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        let message = status.message().to_owned();
        let info = status.get_details_error_info();
        match status.code() {
            Code::FailedPrecondition => match info.filter(|info| info.reason == "INVALID_STATE") {
                Some(info) => Error::InvalidState {
                    workload_id: info
                        .metadata
                        .get("workload_id")
                        .cloned()
                        .unwrap_or_default(),
                    current_stage: info
                        .metadata
                        .get("current_stage")
                        .and_then(|stage| Stage::from_label(stage))
                        .unwrap_or(Stage::Unspecified),
                    message,
                },
                None => Error::Other {
                    code: Code::FailedPrecondition,
                    message,
                },
            },
            Code::NotFound => Error::NotFound { message },
            Code::InvalidArgument => Error::InvalidArgument {
                violations: status
                    .get_details_bad_request()
                    .map(|bad_request| {
                        bad_request
                            .field_violations
                            .into_iter()
                            .map(|violation| FieldViolation {
                                field: violation.field,
                                description: violation.description,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                message,
            },
            Code::AlreadyExists => Error::AlreadyExists { message },
            Code::OutOfRange => Error::Compacted {
                oldest_revision: info
                    .and_then(|info| {
                        info.metadata
                            .get("oldest_revision")
                            .and_then(|value| value.parse().ok())
                    })
                    .unwrap_or(0),
                message,
            },
            Code::Unavailable => Error::Unavailable { message },
            code => Error::Other { code, message },
        }
    }
}
