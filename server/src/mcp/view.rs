//! What the MCP tools answer: workloads, deployments, log lines and errors as
//! JSON an agent reads, each naming the tools that apply next.

use serde::Serialize;
use serde_json::{Value, json};
use slipway_sdk::{
    Error,
    proto::{Action, Deployment, Health, LogEntry, Stage, Stream, Workload},
};
use tonic::Code;

use crate::cli::output::rfc3339;

/// The tools that apply to `workload` now, from the server's
/// `allowed_actions`, plus the read-only ones that always do.
pub fn allowed_actions(workload: &Workload) -> Vec<&'static str> {
    let mut tools: Vec<&'static str> = workload
        .allowed_actions
        .iter()
        .filter_map(|action| Action::try_from(*action).ok())
        .filter_map(|action| match action {
            Action::Start => Some("start"),
            Action::Stop => Some("stop"),
            Action::Restart => Some("restart"),
            Action::Delete => Some("delete_workload"),
            Action::Unspecified => None,
        })
        .collect();
    tools.extend(["read_logs", "wait_for_stage"]);
    tools
}

/// A workload as the tools show it.
#[derive(Debug, Serialize)]
pub struct WorkloadView {
    pub id: String,
    pub deployment_id: String,
    /// The deployment's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    pub stage: &'static str,
    pub health: &'static str,
    pub generation: u64,
    /// The port it serves on (127.0.0.1), while it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Why it failed or stopped, when it did.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<&'static str>,
    pub restart_count: u32,
    /// When the restart policy runs it again, while it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_restart_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// What the runtime could not apply to this run, one sentence each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The tools that apply to it now.
    pub allowed_actions: Vec<&'static str>,
}

impl WorkloadView {
    /// The view of `workload`, naming its deployment when known.
    pub fn new(workload: &Workload, deployment_name: Option<&str>) -> WorkloadView {
        let failed_stage = match workload.failed_stage() {
            Stage::Unspecified => None,
            stage => Some(stage.label()),
        };
        WorkloadView {
            id: workload.id.clone(),
            deployment_id: workload.deployment_id.clone(),
            deployment_name: deployment_name.map(str::to_owned),
            stage: workload.stage().label(),
            health: Health::try_from(workload.health).map_or("unknown", Health::label),
            generation: workload.generation,
            port: (workload.port != 0).then_some(workload.port),
            error: workload.error.clone(),
            exit_code: workload.exit_code,
            failed_stage,
            restart_count: workload.restart_count,
            next_restart_at: rfc3339(workload.next_restart_at.as_ref()),
            started_at: rfc3339(workload.started_at.as_ref()),
            stopped_at: rfc3339(workload.stopped_at.as_ref()),
            warnings: workload.warnings.clone(),
            allowed_actions: allowed_actions(workload),
        }
    }
}

/// A deployment as the tools show it (secret values are masked by the server).
#[derive(Debug, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    pub service_path: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Whether its workloads get a port.
    pub listens: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The tools that apply to it: `start` runs a new workload of it when none
    /// runs, `list_workloads` shows its workloads.
    pub allowed_actions: Vec<&'static str>,
}

impl DeploymentView {
    pub fn new(deployment: &Deployment) -> DeploymentView {
        let spec = deployment.spec.clone().unwrap_or_default();
        DeploymentView {
            id: deployment.id.clone(),
            name: deployment.name.clone(),
            project: deployment.project.clone(),
            service_path: deployment.service_path.clone(),
            command: spec.command,
            image: spec.image,
            listens: spec.listen.is_some(),
            created_at: rfc3339(deployment.created_at.as_ref()),
            allowed_actions: vec!["start", "list_workloads", "delete_deployment"],
        }
    }
}

/// One log line.
#[derive(Debug, Serialize)]
pub struct LogLineView {
    pub seq: u64,
    pub generation: u64,
    /// `stdout`, `stderr` or `system` (Slipway's own lines).
    pub stream: &'static str,
    pub level: String,
    pub stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub message: String,
}

impl LogLineView {
    pub fn new(entry: &LogEntry) -> LogLineView {
        LogLineView {
            seq: entry.seq,
            generation: entry.generation,
            stream: Stream::try_from(entry.stream).map_or("unspecified", Stream::label),
            level: entry
                .level()
                .as_str_name()
                .trim_start_matches("LEVEL_")
                .to_lowercase(),
            stage: entry.stage().label(),
            time: rfc3339(entry.timestamp.as_ref()),
            message: entry.message.clone(),
        }
    }
}

/// The gRPC code's canonical name, like `FAILED_PRECONDITION`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A tool error as JSON: the SDK error's message and code, whether trying
/// again may help, and what the error knows (bad fields, the stage, the
/// failure's reason and last lines).
pub fn error_json(error: &Error) -> Value {
    let code = match error {
        Error::Connect { .. } => "UNAVAILABLE",
        Error::TimedOut { .. } => "DEADLINE_EXCEEDED",
        Error::InvalidToken(_) => "UNAUTHENTICATED",
        other => other.code().map_or("UNKNOWN", code_name),
    };
    let mut body = json!({
        "code": code,
        "message": error.to_string(),
        "retryable": error.is_retryable(),
    });
    match error {
        Error::InvalidArgument { violations, .. } => {
            body["field_violations"] = violations
                .iter()
                .map(|violation| json!({"field": violation.field, "description": violation.description}))
                .collect();
        }
        Error::InvalidState {
            workload_id,
            current_stage,
            ..
        } => {
            body["workload_id"] = json!(workload_id);
            body["current_stage"] = json!(current_stage.label());
        }
        Error::OperationFailed(failure) => {
            body["workload_id"] = json!(failure.workload_id);
            body["operation"] = json!(failure.operation);
            body["failed_in_stage"] = json!(failure.stage.label());
            body["current_stage"] = json!(failure.current_stage.label());
            body["reason"] = json!(failure.reason);
            body["exit_code"] = json!(failure.exit_code);
            body["last_lines"] = json!(failure.last_lines);
        }
        Error::UnexpectedStage { workload, wanted } => {
            body["wanted_stage"] = json!(wanted.label());
            body["workload"] = json!(WorkloadView::new(workload, None));
        }
        Error::PermissionDenied {
            project: Some(project),
            ..
        } => {
            body["project"] = json!(project);
        }
        _ => {}
    }
    json!({ "error": body })
}
