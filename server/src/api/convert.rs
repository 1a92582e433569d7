//! Wire types to domain types and back. A missing or malformed field becomes a
//! field violation (INVALID_ARGUMENT), never a panic.

use std::time::Duration;

use slipway::v1 as proto;

use crate::domain::{HealthCheck, Probe, RestartMode, RestartPolicy, Secret};

use crate::{
    domain::{
        self, Action, BuildStep, Condition, DeploymentId, DeploymentSpec, EventKind,
        FieldViolation, Health, Listen, LogFilter, LogItem, LogLevel, LogStream, Readiness,
        Resources, RuntimeKind, Stage, Timestamp, WorkloadId, allowed_actions,
    },
    orchestrator::NewDeployment,
};

pub type Violations = Vec<FieldViolation>;

/// Parses a required workload id.
pub fn workload_id(field: &str, text: &str) -> Result<WorkloadId, Violations> {
    if text.is_empty() {
        return Err(vec![FieldViolation::new(field, "is required")]);
    }
    WorkloadId::parse(text).map_err(|error| vec![FieldViolation::new(field, error.to_string())])
}

/// Parses a required deployment id.
pub fn deployment_id(field: &str, text: &str) -> Result<DeploymentId, Violations> {
    if text.is_empty() {
        return Err(vec![FieldViolation::new(field, "is required")]);
    }
    DeploymentId::parse(text).map_err(|error| vec![FieldViolation::new(field, error.to_string())])
}

/// Parses the `id` of a request that names a deployment by `id` or by `name`,
/// refusing both at once.
pub fn deployment_id_not_name(id: &str, name: &str) -> Result<DeploymentId, Violations> {
    if !id.is_empty() && !name.is_empty() {
        return Err(vec![FieldViolation::new(
            "name",
            "give the deployment's id or its name, not both",
        )]);
    }
    deployment_id("id", id)
}

/// Parses an optional deployment id (empty: none).
pub fn optional_deployment_id(field: &str, text: &str) -> Result<Option<DeploymentId>, Violations> {
    if text.is_empty() {
        Ok(None)
    } else {
        deployment_id(field, text).map(Some)
    }
}

pub fn timestamp(time: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = time.seconds_and_nanos();
    prost_types::Timestamp { seconds, nanos }
}

pub fn stage(stage: Stage) -> proto::Stage {
    match stage {
        Stage::Pending => proto::Stage::Pending,
        Stage::Validate => proto::Stage::Validate,
        Stage::Build => proto::Stage::Build,
        Stage::Deploy => proto::Stage::Deploy,
        Stage::Running => proto::Stage::Running,
        Stage::Stopping => proto::Stage::Stopping,
        Stage::Stopped => proto::Stage::Stopped,
        Stage::Failed => proto::Stage::Failed,
    }
}

/// A stage from the wire; `None` for unspecified or unknown values.
pub fn stage_from_wire(value: i32) -> Option<Stage> {
    match proto::Stage::try_from(value).ok()? {
        proto::Stage::Unspecified => None,
        proto::Stage::Pending => Some(Stage::Pending),
        proto::Stage::Validate => Some(Stage::Validate),
        proto::Stage::Build => Some(Stage::Build),
        proto::Stage::Deploy => Some(Stage::Deploy),
        proto::Stage::Running => Some(Stage::Running),
        proto::Stage::Stopping => Some(Stage::Stopping),
        proto::Stage::Stopped => Some(Stage::Stopped),
        proto::Stage::Failed => Some(Stage::Failed),
    }
}

pub fn health(health: Health) -> proto::Health {
    match health {
        Health::Unknown => proto::Health::Unknown,
        Health::Healthy => proto::Health::Healthy,
        Health::Unhealthy => proto::Health::Unhealthy,
    }
}

fn action(action: Action) -> proto::Action {
    match action {
        Action::Start => proto::Action::Start,
        Action::Stop => proto::Action::Stop,
        Action::Restart => proto::Action::Restart,
        Action::Delete => proto::Action::Delete,
    }
}

fn runtime(kind: RuntimeKind) -> proto::Runtime {
    match kind {
        RuntimeKind::Process => proto::Runtime::Process,
        RuntimeKind::Docker => proto::Runtime::Docker,
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

impl TryFrom<proto::DeploymentSpec> for DeploymentSpec {
    type Error = Violations;

    fn try_from(spec: proto::DeploymentSpec) -> Result<Self, Self::Error> {
        let mut violations = Vec::new();
        let runtime = match proto::Runtime::try_from(spec.runtime) {
            Ok(proto::Runtime::Unspecified | proto::Runtime::Process) => RuntimeKind::Process,
            Ok(proto::Runtime::Docker) => RuntimeKind::Docker,
            Err(_) => {
                violations.push(FieldViolation::new("spec.runtime", "unknown runtime"));
                RuntimeKind::Process
            }
        };
        let listen = match spec.listen {
            None => None,
            Some(listen) => match u16::try_from(listen.container_port) {
                Ok(container_port) => Some(Listen { container_port }),
                Err(_) => {
                    violations.push(FieldViolation::new(
                        "spec.listen.container_port",
                        "must be at most 65535",
                    ));
                    None
                }
            },
        };
        let readiness = match spec.readiness.and_then(|readiness| readiness.probe) {
            Some(proto::readiness::Probe::Tcp(_)) => Readiness::Tcp,
            Some(proto::readiness::Probe::Http(http)) => Readiness::Http { path: http.path },
            Some(proto::readiness::Probe::None(_)) => Readiness::None,
            None if listen.is_some() => Readiness::Tcp,
            None => Readiness::None,
        };
        let stop_grace_period = spec
            .stop_grace_period_seconds
            .map_or(DeploymentSpec::DEFAULT_STOP_GRACE_PERIOD, |seconds| {
                Duration::from_secs(seconds.into())
            });
        let startup_timeout = spec
            .startup_timeout_seconds
            .map_or(DeploymentSpec::DEFAULT_STARTUP_TIMEOUT, |seconds| {
                Duration::from_secs(seconds.into())
            });
        let resources = spec.resources.unwrap_or_default();
        let restart_policy =
            restart_policy(spec.restart_policy.unwrap_or_default(), &mut violations);
        let liveness = spec
            .liveness
            .and_then(|check| health_check(check, &mut violations));
        let update_strategy = super::changes::update_strategy(spec.update_strategy);
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(DeploymentSpec {
            runtime,
            command: spec.command,
            build: spec
                .build
                .into_iter()
                .map(|step| BuildStep {
                    command: step.command,
                })
                .collect(),
            env: spec.env.into_iter().collect(),
            listen,
            readiness,
            stop_grace_period,
            startup_timeout,
            min_ready: spec
                .min_ready_ms
                .map(|millis| Duration::from_millis(millis.into())),
            image: Some(spec.image).filter(|image| !image.is_empty()),
            dockerfile: Some(spec.dockerfile).filter(|dockerfile| !dockerfile.is_empty()),
            resources: Resources {
                memory_bytes: Some(resources.memory_bytes).filter(|bytes| *bytes > 0),
                millicpus: Some(resources.millicpus).filter(|millicpus| *millicpus > 0),
            },
            restart_policy,
            liveness,
            secret_env: spec
                .secret_env
                .into_iter()
                .map(|(name, value)| (name, Secret::from(value)))
                .collect(),
            stop_signal: Some(spec.stop_signal).filter(|signal| !signal.is_empty()),
            user: Some(spec.user).filter(|user| !user.is_empty()),
            max_open_files: spec.max_open_files.filter(|files| *files > 0),
            node_selector: spec.node_selector.into_iter().collect(),
            update_strategy,
        })
    }
}

/// What the API shows in place of a secret value.
pub const MASK: &str = domain::REDACTED;

fn restart_policy(policy: proto::RestartPolicy, violations: &mut Violations) -> RestartPolicy {
    let defaults = RestartPolicy::default();
    let mode = match proto::restart_policy::Mode::try_from(policy.mode) {
        Ok(proto::restart_policy::Mode::Unspecified | proto::restart_policy::Mode::Never) => {
            RestartMode::Never
        }
        Ok(proto::restart_policy::Mode::OnFailure) => RestartMode::OnFailure,
        Ok(proto::restart_policy::Mode::Always) => RestartMode::Always,
        Err(_) => {
            violations.push(FieldViolation::new(
                "spec.restart_policy.mode",
                "unknown mode",
            ));
            RestartMode::Never
        }
    };
    let factor = policy.backoff_factor.unwrap_or(2.0);
    if !factor.is_finite() {
        violations.push(FieldViolation::new(
            "spec.restart_policy.backoff_factor",
            "must be a number",
        ));
    }
    RestartPolicy {
        mode,
        max_restarts: policy.max_restarts,
        window: policy.window_seconds.map_or(defaults.window, |seconds| {
            Duration::from_secs(seconds.into())
        }),
        initial_backoff: policy
            .initial_backoff_ms
            .map_or(defaults.initial_backoff, |millis| {
                Duration::from_millis(millis.into())
            }),
        backoff_factor_percent: (factor.clamp(0.0, 100.0) * 100.0).round() as u32,
        max_backoff: policy
            .max_backoff_ms
            .map_or(defaults.max_backoff, |millis| {
                Duration::from_millis(millis.into())
            }),
        jitter_percent: policy.jitter_percent.unwrap_or(defaults.jitter_percent),
        stable_after: policy
            .stable_after_seconds
            .map_or(defaults.stable_after, |seconds| {
                Duration::from_secs(seconds.into())
            }),
    }
}

fn health_check(check: proto::HealthCheck, violations: &mut Violations) -> Option<HealthCheck> {
    let probe = match check.probe {
        Some(proto::health_check::Probe::Tcp(_)) => Probe::Tcp,
        Some(proto::health_check::Probe::Http(http)) => Probe::Http { path: http.path },
        Some(proto::health_check::Probe::Exec(exec)) => Probe::Exec {
            command: exec.command,
        },
        None => {
            violations.push(FieldViolation::new(
                "spec.liveness",
                "needs a tcp, http or exec probe",
            ));
            return None;
        }
    };
    Some(HealthCheck {
        probe,
        interval: Duration::from_millis(check.interval_ms.unwrap_or(10_000).into()),
        timeout: Duration::from_millis(check.timeout_ms.unwrap_or(1_000).into()),
        failure_threshold: check.failure_threshold.unwrap_or(3),
    })
}

impl TryFrom<proto::CreateDeploymentRequest> for NewDeployment {
    type Error = Violations;

    fn try_from(request: proto::CreateDeploymentRequest) -> Result<Self, Self::Error> {
        let spec = request
            .spec
            .ok_or_else(|| vec![FieldViolation::new("spec", "is required")])?;
        Ok(NewDeployment {
            name: request.name,
            project: request.project,
            service_path: request.service_path,
            spec: spec.try_into()?,
            labels: request.labels.into_iter().collect(),
        })
    }
}

impl From<DeploymentSpec> for proto::DeploymentSpec {
    fn from(spec: DeploymentSpec) -> Self {
        let min_ready_ms = spec.min_ready().as_millis().min(u32::MAX.into()) as u32;
        let probe = match spec.readiness {
            Readiness::Tcp => proto::readiness::Probe::Tcp(proto::TcpProbe {}),
            Readiness::Http { path } => proto::readiness::Probe::Http(proto::HttpProbe { path }),
            Readiness::None => proto::readiness::Probe::None(proto::NoProbe {}),
        };
        proto::DeploymentSpec {
            runtime: runtime(spec.runtime).into(),
            command: spec.command,
            build: spec
                .build
                .into_iter()
                .map(|step| proto::BuildStep {
                    command: step.command,
                })
                .collect(),
            env: spec.env.into_iter().collect(),
            listen: spec.listen.map(|listen| proto::Listen {
                container_port: listen.container_port.into(),
            }),
            readiness: Some(proto::Readiness { probe: Some(probe) }),
            stop_grace_period_seconds: Some(seconds(spec.stop_grace_period)),
            startup_timeout_seconds: Some(seconds(spec.startup_timeout)),
            min_ready_ms: Some(min_ready_ms),
            image: spec.image.unwrap_or_default(),
            dockerfile: spec.dockerfile.unwrap_or_default(),
            resources: (!spec.resources.is_empty()).then(|| proto::Resources {
                memory_bytes: spec.resources.memory_bytes.unwrap_or(0),
                millicpus: spec.resources.millicpus.unwrap_or(0),
            }),
            restart_policy: Some(proto::RestartPolicy {
                mode: match spec.restart_policy.mode {
                    RestartMode::Never => proto::restart_policy::Mode::Never,
                    RestartMode::OnFailure => proto::restart_policy::Mode::OnFailure,
                    RestartMode::Always => proto::restart_policy::Mode::Always,
                }
                .into(),
                max_restarts: spec.restart_policy.max_restarts,
                window_seconds: Some(seconds(spec.restart_policy.window)),
                initial_backoff_ms: Some(millis(spec.restart_policy.initial_backoff)),
                backoff_factor: Some(f64::from(spec.restart_policy.backoff_factor_percent) / 100.0),
                max_backoff_ms: Some(millis(spec.restart_policy.max_backoff)),
                jitter_percent: Some(spec.restart_policy.jitter_percent),
                stable_after_seconds: Some(seconds(spec.restart_policy.stable_after)),
            }),
            liveness: spec.liveness.map(|check| proto::HealthCheck {
                probe: Some(match check.probe {
                    Probe::Tcp => proto::health_check::Probe::Tcp(proto::TcpProbe {}),
                    Probe::Http { path } => {
                        proto::health_check::Probe::Http(proto::HttpProbe { path })
                    }
                    Probe::Exec { command } => {
                        proto::health_check::Probe::Exec(proto::ExecProbe { command })
                    }
                }),
                interval_ms: Some(millis(check.interval)),
                timeout_ms: Some(millis(check.timeout)),
                failure_threshold: Some(check.failure_threshold),
            }),
            // Secrets go in, never out.
            secret_env: spec
                .secret_env
                .into_keys()
                .map(|name| (name, MASK.to_owned()))
                .collect(),
            stop_signal: spec.stop_signal.unwrap_or_default(),
            user: spec.user.unwrap_or_default(),
            max_open_files: spec.max_open_files,
            node_selector: spec.node_selector.into_iter().collect(),
            update_strategy: Some(super::changes::update_strategy_to_wire(
                spec.update_strategy,
            )),
        }
    }
}

impl From<domain::Deployment> for proto::Deployment {
    fn from(deployment: domain::Deployment) -> Self {
        proto::Deployment {
            id: deployment.id.to_string(),
            name: deployment.name,
            project: deployment.project,
            service_path: deployment.service_path,
            spec: Some(deployment.spec.into()),
            labels: deployment.labels.into_iter().collect(),
            created_at: Some(timestamp(deployment.created_at)),
            updated_at: Some(timestamp(deployment.updated_at)),
            // Read from its workloads where it is asked for: super::health.
            health: None,
            revision: deployment.revision,
        }
    }
}

impl From<domain::Workload> for proto::Workload {
    fn from(workload: domain::Workload) -> Self {
        let allowed = allowed_actions(Condition::of(&workload));
        proto::Workload {
            id: workload.id.to_string(),
            deployment_id: workload.deployment_id.to_string(),
            stage: stage(workload.stage).into(),
            health: health(workload.health).into(),
            generation: workload.generation,
            port: workload.port.map_or(0, u32::from),
            runtime_id: workload.runtime_id.unwrap_or_default(),
            error: workload.error.unwrap_or_default(),
            exit_code: workload.exit_code,
            allowed_actions: allowed
                .iter()
                .map(|allowed| action(*allowed).into())
                .collect(),
            created_at: Some(timestamp(workload.created_at)),
            updated_at: Some(timestamp(workload.updated_at)),
            started_at: workload.started_at.map(timestamp),
            stopped_at: workload.stopped_at.map(timestamp),
            failed_stage: workload
                .failed_stage
                .map_or(proto::Stage::Unspecified, stage)
                .into(),
            revision: workload.revision,
            restart_count: workload.restart_count,
            next_restart_at: workload.next_restart_at.map(timestamp),
            warnings: workload.warnings,
            node_id: workload
                .node_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            owner_epoch: workload.owner_epoch,
            pending_reason: workload.pending_reason.unwrap_or_default(),
            spec_revision: workload.spec_revision.unwrap_or(0),
        }
    }
}

impl From<domain::LogLine> for proto::LogEntry {
    fn from(line: domain::LogLine) -> Self {
        let stream = match line.stream {
            LogStream::Stdout => proto::Stream::Stdout,
            LogStream::Stderr => proto::Stream::Stderr,
            LogStream::System => proto::Stream::System,
        };
        let level = match line.level {
            LogLevel::Debug => proto::Level::Debug,
            LogLevel::Info => proto::Level::Info,
            LogLevel::Warn => proto::Level::Warn,
            LogLevel::Error => proto::Level::Error,
        };
        proto::LogEntry {
            seq: line.seq,
            generation: line.generation,
            timestamp: Some(timestamp(line.timestamp)),
            stage: stage(line.stage).into(),
            level: level.into(),
            stream: stream.into(),
            message: line.message,
            workload_id: line.workload_id.to_string(),
            dropped: 0,
        }
    }
}

/// A log stream item on the wire: a line, or a truncation marker.
pub fn log_item(workload_id: &WorkloadId, item: LogItem) -> proto::LogEntry {
    match item {
        LogItem::Line(line) => line.into(),
        LogItem::Dropped { through, count } => marker(
            workload_id,
            through,
            count,
            format!("[slipway: {count} earlier lines were dropped by log retention]"),
        ),
    }
}

/// The marker for lines an operation's progress stream did not send (its caller
/// was slow); they are in the log.
pub fn skipped_lines(workload_id: &WorkloadId, through: u64, count: u64) -> proto::LogEntry {
    marker(
        workload_id,
        through,
        count,
        format!(
            "[slipway: {count} lines of the operation not sent here; read them with GetLogs or StreamLogs]"
        ),
    )
}

/// A system entry standing for `count` lines not sent, the last with seq `through`.
fn marker(workload_id: &WorkloadId, through: u64, count: u64, message: String) -> proto::LogEntry {
    proto::LogEntry {
        seq: through,
        generation: 0,
        timestamp: Some(timestamp(crate::domain::now())),
        stage: proto::Stage::Unspecified.into(),
        level: proto::Level::Warn.into(),
        stream: proto::Stream::System.into(),
        message,
        workload_id: workload_id.to_string(),
        dropped: count,
    }
}

/// A log filter from the wire; unknown enum values are field violations.
pub fn log_filter(request: &proto::StreamLogsRequest) -> Result<LogFilter, Violations> {
    let mut violations = Vec::new();
    let mut filter = LogFilter {
        generation: request.generation,
        ..LogFilter::default()
    };
    for (index, value) in request.streams.iter().enumerate() {
        match proto::Stream::try_from(*value) {
            Ok(proto::Stream::Stdout) => filter.streams.push(LogStream::Stdout),
            Ok(proto::Stream::Stderr) => filter.streams.push(LogStream::Stderr),
            Ok(proto::Stream::System) => filter.streams.push(LogStream::System),
            _ => violations.push(FieldViolation::new(
                format!("streams[{index}]"),
                "unknown stream",
            )),
        }
    }
    filter.min_level = match proto::Level::try_from(request.min_level) {
        Ok(proto::Level::Unspecified) => None,
        Ok(proto::Level::Debug) => Some(LogLevel::Debug),
        Ok(proto::Level::Info) => Some(LogLevel::Info),
        Ok(proto::Level::Warn) => Some(LogLevel::Warn),
        Ok(proto::Level::Error) => Some(LogLevel::Error),
        Err(_) => {
            violations.push(FieldViolation::new("min_level", "unknown level"));
            None
        }
    };
    for (index, value) in request.stages.iter().enumerate() {
        match stage_from_wire(*value) {
            Some(stage) => filter.stages.push(stage),
            None => violations.push(FieldViolation::new(
                format!("stages[{index}]"),
                "unknown stage",
            )),
        }
    }
    if let Some(since) = &request.since {
        match since
            .seconds
            .checked_mul(1_000_000)
            .and_then(|micros| micros.checked_add(i64::from(since.nanos / 1_000)))
        {
            Some(micros) => filter.since = Some(Timestamp(micros)),
            None => violations.push(FieldViolation::new("since", "out of range")),
        }
    }
    if violations.is_empty() {
        Ok(filter)
    } else {
        Err(violations)
    }
}

impl From<domain::Event> for proto::Event {
    fn from(event: domain::Event) -> Self {
        let kind = match event.kind {
            EventKind::DeploymentCreated => proto::EventType::DeploymentCreated,
            EventKind::DeploymentDeleted => proto::EventType::DeploymentDeleted,
            EventKind::DeploymentUpdated => proto::EventType::DeploymentUpdated,
            EventKind::WorkloadCreated => proto::EventType::WorkloadCreated,
            EventKind::WorkloadUpdated => proto::EventType::WorkloadUpdated,
            EventKind::WorkloadDeleted => proto::EventType::WorkloadDeleted,
        };
        proto::Event {
            revision: event.revision,
            timestamp: Some(timestamp(event.timestamp)),
            r#type: kind.into(),
            deployment_id: event.deployment_id.to_string(),
            workload_id: event
                .workload_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            workload: event.workload.map(Into::into),
            message: event.message,
            actor: event.actor.unwrap_or_default(),
        }
    }
}
