//! What `-o json` prints: explicit views of the wire types with stable snake_case
//! field names, enum values as lowercase labels (`running`) and RFC 3339 times.
//! Scripts depend on these names; add fields, never rename them.

use std::collections::BTreeMap;

use serde::Serialize;
use slipway_sdk::proto::{
    Action, Deployment, DeploymentHealth, DeploymentHealthState, DeploymentSpec, Event, EventType,
    Health, Level, LogEntry, Runtime, Stage, Stream, Workload, readiness::Probe,
};

use super::output::{rfc3339, short_id};

fn stage_label(value: i32) -> &'static str {
    Stage::try_from(value).map_or("unspecified", Stage::label)
}

/// A workload, as `inspect` and `ps -o json` print it.
#[derive(Debug, Serialize)]
pub struct WorkloadView {
    pub id: String,
    pub short_id: String,
    pub deployment_id: String,
    /// The deployment's name, when known.
    pub deployment_name: Option<String>,
    pub stage: &'static str,
    pub health: &'static str,
    pub generation: u64,
    /// The port from the pool, while it has one.
    pub port: Option<u32>,
    pub runtime_id: String,
    pub error: String,
    pub exit_code: Option<i32>,
    pub failed_stage: Option<&'static str>,
    pub allowed_actions: Vec<&'static str>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    pub revision: u64,
    /// Restarts by the restart policy in the current streak.
    pub restart_count: u32,
    /// When the restart policy runs it again, while it waits.
    pub next_restart_at: Option<String>,
    /// What the runtime could not apply to the current run (a limit, …).
    pub warnings: Vec<String>,
    /// The node that owns its run, when one does.
    pub node_id: Option<String>,
    /// Why it waits, PENDING, for a node, while it does.
    pub pending_reason: Option<String>,
    /// The deployment revision its current (or last) run started from; none
    /// before its first run.
    pub spec_revision: Option<u64>,
    /// The deployment, in full (only `inspect` fills it in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentView>,
}

impl WorkloadView {
    /// The view of `workload`, naming its deployment when `deployment_name` is known.
    pub fn new(workload: &Workload, deployment_name: Option<&str>) -> WorkloadView {
        WorkloadView {
            id: workload.id.clone(),
            short_id: short_id(&workload.id).to_owned(),
            deployment_id: workload.deployment_id.clone(),
            deployment_name: deployment_name.map(str::to_owned),
            stage: stage_label(workload.stage),
            health: Health::try_from(workload.health).map_or("unknown", Health::label),
            generation: workload.generation,
            port: Some(workload.port).filter(|port| *port != 0),
            runtime_id: workload.runtime_id.clone(),
            error: workload.error.clone(),
            exit_code: workload.exit_code,
            failed_stage: Some(workload.failed_stage)
                .filter(|stage| *stage != Stage::Unspecified as i32)
                .map(stage_label),
            allowed_actions: workload
                .allowed_actions
                .iter()
                .filter_map(|action| Action::try_from(*action).ok())
                .map(Action::label)
                .collect(),
            created_at: rfc3339(workload.created_at.as_ref()),
            updated_at: rfc3339(workload.updated_at.as_ref()),
            started_at: rfc3339(workload.started_at.as_ref()),
            stopped_at: rfc3339(workload.stopped_at.as_ref()),
            revision: workload.revision,
            restart_count: workload.restart_count,
            next_restart_at: rfc3339(workload.next_restart_at.as_ref()),
            warnings: workload.warnings.clone(),
            node_id: Some(workload.node_id.clone()).filter(|id| !id.is_empty()),
            pending_reason: Some(workload.pending_reason.clone()).filter(|why| !why.is_empty()),
            spec_revision: Some(workload.spec_revision).filter(|revision| *revision != 0),
            deployment: None,
        }
    }
}

/// A deployment, as `deployments -o json` and `inspect` print it.
#[derive(Debug, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub short_id: String,
    pub name: String,
    pub project: String,
    pub service_path: String,
    pub labels: BTreeMap<String, String>,
    pub spec: SpecView,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// The revision of its spec and labels.
    pub revision: u64,
    /// What its workloads say together, when the server said.
    pub health: Option<DeploymentHealthView>,
}

/// A deployment's health from its workloads.
#[derive(Debug, Serialize)]
pub struct DeploymentHealthView {
    /// `healthy`, `degraded` or `unavailable`.
    pub state: &'static str,
    /// Workloads that should run, and of them those up.
    pub wanted: u32,
    pub up: u32,
    pub reason: String,
}

impl DeploymentHealthView {
    pub fn new(health: &DeploymentHealth) -> DeploymentHealthView {
        let state = match health.state() {
            DeploymentHealthState::Healthy => "healthy",
            DeploymentHealthState::Degraded => "degraded",
            DeploymentHealthState::Unavailable => "unavailable",
            DeploymentHealthState::Unspecified => "unknown",
        };
        DeploymentHealthView {
            state,
            wanted: health.wanted,
            up: health.up,
            reason: health.reason.clone(),
        }
    }
}

impl DeploymentView {
    pub fn new(deployment: &Deployment) -> DeploymentView {
        DeploymentView {
            id: deployment.id.clone(),
            short_id: short_id(&deployment.id).to_owned(),
            name: deployment.name.clone(),
            project: deployment.project.clone(),
            service_path: deployment.service_path.clone(),
            labels: deployment.labels.clone().into_iter().collect(),
            spec: SpecView::new(&deployment.spec.clone().unwrap_or_default()),
            created_at: rfc3339(deployment.created_at.as_ref()),
            updated_at: rfc3339(deployment.updated_at.as_ref()),
            revision: deployment.revision,
            health: deployment.health.as_ref().map(DeploymentHealthView::new),
        }
    }
}

/// A deployment's spec.
#[derive(Debug, Serialize)]
pub struct SpecView {
    pub runtime: &'static str,
    pub command: Vec<String>,
    pub build: Vec<Vec<String>>,
    pub env: BTreeMap<String, String>,
    /// Present when the workload listens on a port.
    pub listen: Option<ListenView>,
    /// `tcp`, `http` or `none`; absent for the server's default.
    pub readiness: Option<&'static str>,
    /// The path of an `http` readiness check.
    pub readiness_http_path: Option<String>,
    pub stop_grace_period_seconds: Option<u32>,
    pub startup_timeout_seconds: Option<u32>,
    pub image: String,
    pub dockerfile: String,
    pub memory_bytes: u64,
    pub millicpus: u32,
    /// `never`, `on_failure` or `always`.
    pub restart: &'static str,
    pub max_restarts: u32,
    /// The names of the secret environment variables (values are never shown).
    pub secret_env: Vec<String>,
    pub stop_signal: String,
    /// Who the workload runs as; empty: the server's default.
    pub user: String,
    /// RLIMIT_NOFILE of its processes, when set.
    pub max_open_files: Option<u64>,
    /// Labels a node needs to run its workloads.
    pub node_selector: BTreeMap<String, String>,
}

/// Where a workload listens.
#[derive(Debug, Serialize)]
pub struct ListenView {
    /// The port inside the container (Docker), 0 for processes.
    pub container_port: u32,
}

impl SpecView {
    pub fn new(spec: &DeploymentSpec) -> SpecView {
        let probe = spec
            .readiness
            .as_ref()
            .and_then(|readiness| readiness.probe.as_ref());
        let resources = spec.resources.unwrap_or_default();
        SpecView {
            runtime: match Runtime::try_from(spec.runtime) {
                Ok(Runtime::Docker) => "docker",
                _ => "process",
            },
            command: spec.command.clone(),
            build: spec.build.iter().map(|step| step.command.clone()).collect(),
            env: spec.env.clone().into_iter().collect(),
            listen: spec.listen.as_ref().map(|listen| ListenView {
                container_port: listen.container_port,
            }),
            readiness: probe.map(|probe| match probe {
                Probe::Tcp(_) => "tcp",
                Probe::Http(_) => "http",
                Probe::None(_) => "none",
            }),
            readiness_http_path: match probe {
                Some(Probe::Http(http)) => Some(http.path.clone()),
                _ => None,
            },
            stop_grace_period_seconds: spec.stop_grace_period_seconds,
            startup_timeout_seconds: spec.startup_timeout_seconds,
            image: spec.image.clone(),
            dockerfile: spec.dockerfile.clone(),
            memory_bytes: resources.memory_bytes,
            millicpus: resources.millicpus,
            restart: match spec.restart_policy.as_ref().map(|policy| policy.mode()) {
                Some(slipway_sdk::proto::restart_policy::Mode::OnFailure) => "on_failure",
                Some(slipway_sdk::proto::restart_policy::Mode::Always) => "always",
                _ => "never",
            },
            max_restarts: spec
                .restart_policy
                .as_ref()
                .map_or(0, |policy| policy.max_restarts),
            secret_env: spec.secret_env.keys().cloned().collect(),
            stop_signal: if spec.stop_signal.is_empty() {
                "SIGTERM".to_owned()
            } else {
                spec.stop_signal.clone()
            },
            user: spec.user.clone(),
            max_open_files: spec.max_open_files,
            node_selector: spec
                .node_selector
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        }
    }
}

/// One log line.
#[derive(Debug, Serialize)]
pub struct LogView {
    pub workload_id: String,
    pub seq: u64,
    pub generation: u64,
    pub timestamp: Option<String>,
    pub stage: &'static str,
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// `stdout`, `stderr` or `system`.
    pub stream: &'static str,
    pub message: String,
}

impl LogView {
    pub fn new(entry: &LogEntry) -> LogView {
        LogView {
            workload_id: entry.workload_id.clone(),
            seq: entry.seq,
            generation: entry.generation,
            timestamp: rfc3339(entry.timestamp.as_ref()),
            stage: stage_label(entry.stage),
            level: match Level::try_from(entry.level) {
                Ok(Level::Debug) => "debug",
                Ok(Level::Warn) => "warn",
                Ok(Level::Error) => "error",
                _ => "info",
            },
            stream: Stream::try_from(entry.stream).map_or("unspecified", Stream::label),
            message: entry.message.clone(),
        }
    }
}

/// One event.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub revision: u64,
    pub timestamp: Option<String>,
    /// `deployment_created`, `workload_updated`, …
    #[serde(rename = "type")]
    pub event_type: String,
    pub deployment_id: String,
    pub workload_id: String,
    pub message: String,
    /// Who caused it; empty for Slipway's own doing.
    pub actor: String,
    pub workload: Option<WorkloadView>,
}

impl EventView {
    pub fn new(event: &Event) -> EventView {
        EventView {
            revision: event.revision,
            timestamp: rfc3339(event.timestamp.as_ref()),
            event_type: event_type_label(event.r#type),
            deployment_id: event.deployment_id.clone(),
            workload_id: event.workload_id.clone(),
            message: event.message.clone(),
            actor: event.actor.clone(),
            workload: event
                .workload
                .as_ref()
                .map(|workload| WorkloadView::new(workload, None)),
        }
    }
}

/// `workload_updated` for `EVENT_TYPE_WORKLOAD_UPDATED`.
pub fn event_type_label(value: i32) -> String {
    EventType::try_from(value)
        .map(|event_type| {
            event_type
                .as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unspecified".to_owned())
}

/// The result of one control operation (`start`, `stop`, `restart`, `rm`) on one workload.
#[derive(Debug, Serialize)]
pub struct OperationResultView {
    /// What was asked for on the command line (an id, a prefix, a name).
    pub target: String,
    /// The workload's full id, when the target resolved to one.
    pub id: Option<String>,
    pub operation: &'static str,
    pub ok: bool,
    /// The stage the workload ended in, when known.
    pub stage: Option<&'static str>,
    pub error: Option<String>,
    pub hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_views_use_labels_and_stable_names() {
        let workload = Workload {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            stage: Stage::Running as i32,
            health: Health::Healthy as i32,
            generation: 2,
            port: 3100,
            allowed_actions: vec![Action::Stop as i32, Action::Restart as i32],
            ..Workload::default()
        };
        let json =
            serde_json::to_value(WorkloadView::new(&workload, Some("web"))).unwrap_or_default();
        assert_eq!(json["stage"], "running");
        assert_eq!(json["health"], "healthy");
        assert_eq!(json["short_id"], "0123456789ab");
        assert_eq!(json["deployment_name"], "web");
        assert_eq!(json["port"], 3100);
        assert_eq!(json["allowed_actions"][1], "restart");
        assert!(json.get("deployment").is_none());
    }

    #[test]
    fn event_types_print_as_lowercase_labels() {
        assert_eq!(
            event_type_label(EventType::WorkloadUpdated as i32),
            "workload_updated"
        );
    }
}
