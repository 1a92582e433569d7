//! The tools' parameters. Their JSON schemas (what an MCP client shows the
//! model) come from these types and their doc comments.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// `list_deployments`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDeploymentsParams {
    /// Only deployments of this project.
    #[serde(default)]
    pub project: Option<String>,
}

/// `list_workloads`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListWorkloadsParams {
    /// Only workloads of the deployment with this name.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Also workloads whose run is over (stopped, failed); by default only
    /// those pending, on their way or running.
    #[serde(default)]
    pub all: bool,
}

/// A tool that acts on one workload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkloadParams {
    /// A workload id (32 hex digits or a hyphenated UUID), or a deployment
    /// name standing for its newest workload.
    pub workload: String,
}

/// `stop`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StopParams {
    /// A workload id, or a deployment name standing for its newest workload.
    pub workload: String,
    /// Seconds between the stop signal and the kill (default: the deployment's).
    #[serde(default)]
    pub grace_seconds: Option<u32>,
}

/// `start`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StartParams {
    /// A pending workload's id, or a deployment name: then a workload of it is
    /// started unless one already runs (or is on its way).
    pub target: String,
}

/// `delete_deployment`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeploymentParams {
    /// The deployment's name or id.
    pub deployment: String,
}

/// `run`: a new deployment and a workload of it, started.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunParams {
    /// The deployment's name (unique; letters, digits, '_', '.', '-').
    /// Generated when not given.
    #[serde(default)]
    pub name: Option<String>,
    /// The program and its arguments, run without a shell, e.g.
    /// ["python3", "-m", "http.server"]. Either this or `shell` (or `image`).
    #[serde(default)]
    pub command: Vec<String>,
    /// A shell command line, run with `sh -c`, e.g.
    /// "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1".
    #[serde(default)]
    pub shell: Option<String>,
    /// The service directory, relative to the server's root (default ".").
    #[serde(default)]
    pub dir: Option<String>,
    /// Whether the service listens on a port: it gets a free one in $PORT and
    /// is ready once the port accepts connections.
    #[serde(default)]
    pub port: bool,
    /// With `port`: ready once GET on this path answers 2xx or 3xx (instead
    /// of a TCP connect).
    #[serde(default)]
    pub http_ready_path: Option<String>,
    /// Environment variables for the service.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Docker: run this image instead of a command.
    #[serde(default)]
    pub image: Option<String>,
    /// Docker, with `image` and `port`: the port the container listens on.
    #[serde(default)]
    pub container_port: Option<u16>,
    /// The project the deployment belongs to.
    #[serde(default)]
    pub project: Option<String>,
}

/// `read_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadLogsParams {
    /// A workload id, or a deployment name standing for its newest workload.
    pub workload: String,
    /// The last N lines (default 50, at most 1000). Ignored with `after_seq`.
    #[serde(default)]
    pub tail: Option<u32>,
    /// Instead of a tail: the lines after this seq (the `next_after_seq` of a
    /// previous answer), oldest first.
    #[serde(default)]
    pub after_seq: Option<u64>,
    /// Also Slipway's own lines about the workload (stages, readiness, exit);
    /// by default only the service's stdout and stderr.
    #[serde(default)]
    pub include_system: bool,
}

/// `wait_for_stage`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitParams {
    /// A workload id, or a deployment name standing for its newest workload.
    pub workload: String,
    /// What to wait for: a stage (`running`, `stopped`, `failed`, ...),
    /// `healthy`, `terminal` (stopped or failed, no restart pending) or
    /// `settled` (running, or terminal).
    pub stage: String,
    /// How long to wait, in seconds (default 15, at most 20); on time-out
    /// the answer says `reached: false` and the workload as it is: call again.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}
