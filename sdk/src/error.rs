//! The SDK's typed errors, decoded from gRPC statuses and their rich details.

use slipway::v1::{Stage, Workload};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path, like `spec.env[1BAD]` or `service_path`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// How an accepted operation ended without reaching its goal.
///
/// ```no_run
/// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
/// use slipway_sdk::Error;
/// match client.start_workload(id).await?.finish().await {
///     Err(Error::OperationFailed(failure)) => {
///         eprintln!("{} failed in {}: {}", failure.operation, failure.stage.label(), failure.reason);
///         for line in &failure.last_lines {
///             eprintln!("  | {line}");
///         }
///     }
///     other => println!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    /// The workload the error is about.
    pub workload_id: String,
    /// `start`, `stop` or `restart`.
    pub operation: String,
    /// The stage the run failed in (or was in when it ended).
    pub stage: Stage,
    /// The workload's stage when the operation ended (FAILED or STOPPED).
    pub current_stage: Stage,
    /// Why, in a sentence: "exited with code 3", "readiness timed out", …
    pub reason: String,
    /// The service's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The last lines of the workload's own output during the operation.
    pub last_lines: Vec<String>,
    /// The whole message, as the server put it.
    pub message: String,
}

/// What went wrong with a call. New variants may come (`#[non_exhaustive]`).
///
/// ```no_run
/// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
/// use slipway_sdk::Error;
/// match client.stop_workload(id, None).await {
///     Ok(progress) => drop(progress.finish().await?),
///     Err(Error::InvalidState { current_stage, .. }) => println!("already {}", current_stage.label()),
///     Err(Error::NotFound { .. }) => println!("gone"),
///     Err(error) if error.is_retryable() => println!("try again later: {error}"),
///     Err(error) => return Err(error),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A start, stop or restart was accepted but did not reach its goal: the
    /// process exited, the readiness check timed out, a build step failed, or a
    /// stop came first. Its stream ended with `ABORTED` and these details.
    #[error("{}", .0.message)]
    OperationFailed(Box<OperationFailure>),
    /// The workload's stage does not allow the operation (`FAILED_PRECONDITION`).
    #[error("{message}")]
    InvalidState {
        /// The workload the error is about.
        workload_id: String,
        /// The stage the workload is in.
        current_stage: Stage,
        /// The message, as the server put it.
        message: String,
    },
    /// No such deployment or workload.
    #[error("{message}")]
    NotFound {
        /// The message, as the server put it.
        message: String,
    },
    /// The request was malformed; every bad field is named.
    #[error("{message}")]
    InvalidArgument {
        /// The message, as the server put it.
        message: String,
        /// Every bad field.
        violations: Vec<FieldViolation>,
    },
    /// A deployment with that name exists.
    #[error("{message}")]
    AlreadyExists {
        /// The message, as the server put it.
        message: String,
    },
    /// A watch asked for a revision that is no longer retained: list again, then
    /// watch from the list's revision.
    #[error("{message}")]
    Compacted {
        /// The oldest revision still retained.
        oldest_revision: u64,
        /// The message, as the server put it.
        message: String,
    },
    /// A watch asked for a revision the server has not reached yet
    /// (`OUT_OF_RANGE`, reason `REVISION_AHEAD`): watch from `current_revision`
    /// or below.
    #[error("{message}")]
    RevisionAhead {
        /// The revision asked for.
        requested_revision: u64,
        /// The server's current revision.
        current_revision: u64,
        /// The message, as the server put it.
        message: String,
    },
    /// A change of a deployment named an `expected_revision` that is not the
    /// current one, or another change from the same revision won (`ABORTED`,
    /// reason `REVISION_CONFLICT`): read the deployment again and retry.
    #[error("{message}")]
    RevisionConflict {
        /// The deployment's revision now.
        current_revision: u64,
        /// The message, as the server put it.
        message: String,
    },
    /// No valid credentials: no token, an unknown, expired or revoked one
    /// (`UNAUTHENTICATED`). Give a token with `Client::builder(url).token(..)`.
    #[error("{message}")]
    Unauthenticated {
        /// The message, as the server put it.
        message: String,
    },
    /// The token's role or projects do not allow the call
    /// (`PERMISSION_DENIED`); `project` names the project when that was the reason.
    #[error("{message}")]
    PermissionDenied {
        /// The message, as the server put it.
        message: String,
        /// The project refused, when that was the reason.
        project: Option<String>,
    },
    /// The server (or a runtime's engine) cannot be reached.
    #[error("unavailable: {message}")]
    Unavailable {
        /// The message, as the server put it.
        message: String,
    },
    /// The connection could not be made; the message names the cause
    /// ("Connection refused", …).
    #[error("cannot connect to {url}: {}", cause_chain(source))]
    Connect {
        /// The address that was tried.
        url: String,
        /// The transport's error, with its own sources below it.
        #[source]
        source: tonic::transport::Error,
    },
    /// The token given to [`ClientBuilder::token`](crate::ClientBuilder::token)
    /// cannot be sent.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The TLS options given to the [`ClientBuilder`](crate::ClientBuilder)
    /// cannot be used (a CA or certificate with a URL that is not `https://`).
    #[error("invalid TLS settings: {0}")]
    InvalidTls(String),
    /// A wait ended because the workload settled in another stage.
    #[error("workload {} is {} (waiting for {}): {}", workload.id, stage_name(workload.stage), wanted.label(), workload.error)]
    UnexpectedStage {
        /// The workload as it came to rest.
        workload: Box<Workload>,
        /// The stage waited for.
        wanted: Stage,
    },
    /// A wait did not end within its timeout.
    #[error("gave up waiting after {waited:?}")]
    TimedOut {
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// A stream ended before it said what the caller waited for.
    #[error("the stream ended early: {0}")]
    StreamEnded(&'static str),
    /// Any other status.
    #[error("{code:?}: {message}")]
    Other {
        /// The gRPC code.
        code: Code,
        /// The message, as the server put it.
        message: String,
    },
}

fn stage_name(value: i32) -> &'static str {
    Stage::try_from(value).map_or("unknown", Stage::label)
}

impl Error {
    /// The gRPC code behind the error, when it came from the server.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::InvalidState { .. } => Some(Code::FailedPrecondition),
            Error::OperationFailed(_) | Error::RevisionConflict { .. } => Some(Code::Aborted),
            Error::NotFound { .. } => Some(Code::NotFound),
            Error::InvalidArgument { .. } => Some(Code::InvalidArgument),
            Error::AlreadyExists { .. } => Some(Code::AlreadyExists),
            Error::Compacted { .. } | Error::RevisionAhead { .. } => Some(Code::OutOfRange),
            Error::Unavailable { .. } => Some(Code::Unavailable),
            Error::Unauthenticated { .. } => Some(Code::Unauthenticated),
            Error::PermissionDenied { .. } => Some(Code::PermissionDenied),
            Error::Other { code, .. } => Some(*code),
            Error::Connect { .. }
            | Error::UnexpectedStage { .. }
            | Error::StreamEnded(_)
            | Error::InvalidToken(_)
            | Error::InvalidTls(_)
            | Error::TimedOut { .. } => None,
        }
    }
}

impl Error {
    /// Whether the same call may succeed if tried again later: the server or
    /// its engine could not be reached, was overloaded, or a deadline passed.
    /// Invalid input, an invalid state and a failed operation are not retryable
    /// as they are.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Connect { .. } | Error::TimedOut { .. } => true,
            Error::Other { code, .. } => matches!(
                code,
                Code::ResourceExhausted | Code::DeadlineExceeded | Code::Unavailable
            ),
            _ => false,
        }
    }
}

/// An error and its sources, joined: tonic's transport error says only
/// "transport error" at the top, the cause is below.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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
            Code::Aborted
                if info
                    .as_ref()
                    .is_some_and(|info| info.reason == "REVISION_CONFLICT") =>
            {
                Error::RevisionConflict {
                    current_revision: info
                        .as_ref()
                        .and_then(|info| info.metadata.get("current_revision"))
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0),
                    message,
                }
            }
            Code::Aborted => match info.filter(|info| info.reason == "OPERATION_FAILED") {
                Some(info) => {
                    let field = |name: &str| info.metadata.get(name).cloned().unwrap_or_default();
                    let stage = |name: &str| {
                        info.metadata
                            .get(name)
                            .and_then(|stage| Stage::from_label(stage))
                            .unwrap_or(Stage::Unspecified)
                    };
                    let last_lines = field("last_lines");
                    Error::OperationFailed(Box::new(OperationFailure {
                        workload_id: field("workload_id"),
                        operation: field("operation"),
                        stage: stage("stage"),
                        current_stage: stage("current_stage"),
                        reason: field("reason"),
                        exit_code: info
                            .metadata
                            .get("exit_code")
                            .and_then(|code| code.parse().ok()),
                        last_lines: if last_lines.is_empty() {
                            Vec::new()
                        } else {
                            last_lines.split('\n').map(str::to_owned).collect()
                        },
                        message,
                    }))
                }
                None => Error::Other {
                    code: Code::Aborted,
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
            Code::OutOfRange => {
                let number = |name: &str| {
                    info.as_ref()
                        .and_then(|info| info.metadata.get(name))
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0)
                };
                if info
                    .as_ref()
                    .is_some_and(|info| info.reason == "REVISION_AHEAD")
                {
                    Error::RevisionAhead {
                        requested_revision: number("requested_revision"),
                        current_revision: number("current_revision"),
                        message,
                    }
                } else if info
                    .as_ref()
                    .is_some_and(|info| info.reason == "REVISION_COMPACTED")
                {
                    Error::Compacted {
                        oldest_revision: number("oldest_revision"),
                        message,
                    }
                } else {
                    // Not about revisions: a message over the server's size
                    // limit, say.
                    Error::Other {
                        code: Code::OutOfRange,
                        message,
                    }
                }
            }
            Code::Unavailable => Error::Unavailable { message },
            Code::Unauthenticated => Error::Unauthenticated { message },
            Code::PermissionDenied => Error::PermissionDenied {
                project: info
                    .filter(|info| info.reason == "PROJECT_DENIED")
                    .and_then(|info| info.metadata.get("project").cloned()),
                message,
            },
            code => Error::Other { code, message },
        }
    }
}
