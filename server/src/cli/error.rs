//! The command line's errors, their exit codes and the hints shown with them.

use std::{path::PathBuf, process::ExitCode};

use slipway_sdk::{Error as SdkError, proto::Stage};

/// Exit code of a command that did all it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code of a command that failed (or of which one operation failed).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a command line that is wrong (also an ambiguous id prefix).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a workload or deployment does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code of a foreground `slipway run` ended with Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// What went wrong with a client command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line asks for something that cannot be done as asked.
    #[error("{message}")]
    Usage { message: String },
    /// No workload or deployment answers to what was given.
    #[error("no workload or deployment matches {target:?}")]
    NotFound { target: String },
    /// An id prefix that more than one workload or deployment starts with.
    #[error("{target:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        target: String,
        candidates: Vec<String>,
    },
    /// A call to the server failed.
    #[error("{context}: {source}")]
    Server {
        context: String,
        #[source]
        source: SdkError,
    },
    /// A file could not be read or written.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A deployment spec file that does not parse.
    #[error("{}: {message}", path.display())]
    SpecFile { path: PathBuf, message: String },
    /// An operation ran but did not end as asked (a start that failed).
    #[error("{message}")]
    Failed { message: String },
    /// An operation took longer than its timeout.
    #[error("{operation} did not finish within {seconds}s")]
    TimedOut {
        operation: &'static str,
        seconds: u64,
    },
    /// Output could not be encoded.
    #[error("cannot encode the output: {0}")]
    Encode(#[from] serde_json::Error),
}

impl CliError {
    /// A failed call to the server, with what was being done.
    pub fn server(context: impl Into<String>, source: SdkError) -> CliError {
        CliError::Server {
            context: context.into(),
            source,
        }
    }

    /// A usage error with this message.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
        }
    }

    /// The process exit code for this error (see `slipway --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } | CliError::Ambiguous { .. } | CliError::SpecFile { .. } => {
                EXIT_USAGE
            }
            CliError::NotFound { .. } => EXIT_NOT_FOUND,
            CliError::Server {
                source: SdkError::NotFound { .. },
                ..
            } => EXIT_NOT_FOUND,
            CliError::Server {
                source: SdkError::InvalidArgument { .. },
                ..
            } => EXIT_FAILED,
            _ => EXIT_FAILED,
        }
    }

    /// What the user might do about it, when something helps.
    pub fn hint(&self, operation: Option<&str>) -> Option<String> {
        match self {
            CliError::Server { source, .. } => server_hint(source, operation),
            CliError::NotFound { .. } => Some(
                "list workloads with `slipway ps -a`, deployments with `slipway deployments`"
                    .to_owned(),
            ),
            CliError::Ambiguous { .. } => Some("give more characters of the id".to_owned()),
            CliError::TimedOut { .. } => {
                Some("the operation goes on on the server; check with `slipway ps -a`".to_owned())
            }
            _ => None,
        }
    }

    /// The message without the context (for result lines that name the workload).
    pub fn cause_message(&self) -> String {
        match self {
            CliError::Server { source, .. } => source.to_string(),
            other => other.to_string(),
        }
    }

    /// The field violations of an `INVALID_ARGUMENT` answer, or the exit code and
    /// last lines of output of a failed operation, one per line.
    pub fn details(&self) -> Vec<String> {
        match self {
            CliError::Server {
                source: SdkError::OperationFailed(failure),
                ..
            } => failure
                .exit_code
                .map(|code| format!("exit code {code}"))
                .into_iter()
                .chain(
                    (!failure.last_lines.is_empty())
                        .then(|| "last lines of its output:".to_owned()),
                )
                .chain(failure.last_lines.iter().map(|line| format!("| {line}")))
                .collect(),
            CliError::Server {
                source: SdkError::InvalidArgument { violations, .. },
                ..
            } => violations
                .iter()
                .map(|violation| format!("{}: {}", violation.field, violation.description))
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn server_hint(error: &SdkError, operation: Option<&str>) -> Option<String> {
    match error {
        SdkError::Connect { .. } | SdkError::Unavailable { .. } => Some(
            "is the server running? start it with `slipway serve`, or point --server (SLIPWAY_SERVER) at it (unix:///PATH for its socket, https:// with TLS)"
                .to_owned(),
        ),
        SdkError::InvalidState { current_stage, .. } => {
            invalid_state_hint(*current_stage, operation)
        }
        SdkError::OperationFailed(failure) => Some(format!(
            "its whole output: slipway logs {}",
            super::output::short_id(&failure.workload_id)
        )),
        SdkError::Unauthenticated { .. } => Some(
            "give a token with --token or SLIPWAY_TOKEN (or --token-file); the server's first admin token is in DATA_DIR/admin.token"
                .to_owned(),
        ),
        SdkError::PermissionDenied { .. } => Some(
            "the token's role or projects do not allow this; ask an admin (slipway token create)"
                .to_owned(),
        ),
        SdkError::AlreadyExists { .. } => {
            Some("pick another --name, or remove it with `slipway deployment rm`".to_owned())
        }
        _ => None,
    }
}

fn invalid_state_hint(stage: Stage, operation: Option<&str>) -> Option<String> {
    let hint = match (operation, stage) {
        (Some("stop"), Stage::Stopped) => "already stopped — use slipway restart",
        (Some("stop"), Stage::Failed) => "it has failed — use slipway restart, or slipway logs",
        (Some("start"), Stage::Stopped | Stage::Failed) => {
            "it has run already — use slipway restart"
        }
        (Some("start"), _) => "it has started already — use slipway restart",
        (_, Stage::Stopping | Stage::Validate | Stage::Build | Stage::Deploy) => {
            "another operation is under way — wait for it (slipway ps -a) and try again"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

/// Prints an error (with its details and hint) to stderr and returns its exit code.
pub fn report(error: &CliError, operation: Option<&str>) -> ExitCode {
    use std::io::IsTerminal;
    // The message and details may quote a workload's output.
    let control_chars =
        super::output::ControlChars::choose(std::io::stderr().is_terminal(), false, false);
    eprintln!("slipway: {}", control_chars.apply(&error.to_string()));
    for detail in error.details() {
        eprintln!("  {}", control_chars.apply(&detail));
    }
    if let Some(hint) = error.hint(operation) {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(error.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(CliError::usage("bad").exit_code(), EXIT_USAGE);
        let not_found = CliError::NotFound {
            target: "abc".to_owned(),
        };
        assert_eq!(not_found.exit_code(), EXIT_NOT_FOUND);
        let server_not_found = CliError::server(
            "get",
            SdkError::NotFound {
                message: "no such workload".to_owned(),
            },
        );
        assert_eq!(server_not_found.exit_code(), EXIT_NOT_FOUND);
        let failed = CliError::Failed {
            message: "it failed".to_owned(),
        };
        assert_eq!(failed.exit_code(), EXIT_FAILED);
    }

    #[test]
    fn stopping_a_stopped_workload_hints_at_restart() {
        let error = CliError::server(
            "stop",
            SdkError::InvalidState {
                workload_id: "0".repeat(32),
                current_stage: Stage::Stopped,
                message: "Cannot stop workload: already stopped".to_owned(),
            },
        );
        let hint = error.hint(Some("stop")).unwrap_or_default();
        assert!(hint.contains("slipway restart"), "{hint}");
    }
}
