//! What a deployment runs, and the validation of it that needs no I/O.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{DeploymentId, HealthCheck, RestartPolicy, Secret, Timestamp};

/// Where a deployment's workloads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A local process group (the default).
    #[default]
    Process,
    /// A Docker container.
    Docker,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Process => "process",
            RuntimeKind::Docker => "docker",
        }
    }
}

/// One build step: an argv run in the service directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStep {
    pub command: Vec<String>,
}

/// Present when the workload serves on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Listen {
    /// The port inside the container (Docker); processes listen on `$PORT`.
    pub container_port: u16,
}

/// How Slipway decides that a started workload is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// Ready when a TCP connection to the service succeeds (127.0.0.1 and the
    /// port for a process; the container's address and port for a container).
    Tcp,
    /// Ready when `GET <path>` on the service (as for `Tcp`) answers 2xx or 3xx.
    Http { path: String },
    /// Ready as soon as started; a container whose image has a `HEALTHCHECK`,
    /// once the engine says it is healthy.
    None,
}

/// Limits on what a workload may use: a container's, or a process workload's
/// cgroup limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Thousandths of a CPU.
    pub millicpus: Option<u32>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory_bytes.is_none() && self.millicpus.is_none()
    }
}

/// What a deployment runs and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    pub runtime: RuntimeKind,
    pub command: Vec<String>,
    pub build: Vec<BuildStep>,
    pub env: BTreeMap<String, String>,
    pub listen: Option<Listen>,
    pub readiness: Readiness,
    #[serde(with = "seconds")]
    pub stop_grace_period: Duration,
    #[serde(with = "seconds")]
    pub startup_timeout: Duration,
    /// Docker: the image to run.
    #[serde(default)]
    pub image: Option<String>,
    /// Docker: the Dockerfile to build, relative to the service directory.
    #[serde(default)]
    pub dockerfile: Option<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub liveness: Option<HealthCheck>,
    /// Environment that is passed on but never shown. Not part of the spec's
    /// serialised form: the store keeps secrets apart from the spec.
    #[serde(skip)]
    pub secret_env: BTreeMap<String, Secret>,
    /// The first signal of a stop; SIGTERM when `None`.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// How long the instance must stay up once ready (or, without a readiness
    /// check, once started) to count as running; see [`DeploymentSpec::min_ready`].
    #[serde(default)]
    pub min_ready: Option<Duration>,
    /// Who the workload runs as, in Docker's syntax (see [`super::UserSpec`]);
    /// `None`: the server's default for process workloads, the image's for
    /// containers.
    #[serde(default)]
    pub user: Option<String>,
    /// RLIMIT_NOFILE (soft and hard) of the workload's processes; `None`: inherited.
    #[serde(default)]
    pub max_open_files: Option<u64>,
    /// Labels a node must carry (`--node-label`) to run the workload; on a
    /// shared database, placement picks only among the nodes that do.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// How a change of the spec reaches the live workloads.
    #[serde(default)]
    pub update_strategy: super::UpdateStrategy,
}

impl DeploymentSpec {
    /// A process deployment running `command`, every other field at its default.
    pub fn process(command: Vec<String>) -> Self {
        Self {
            runtime: RuntimeKind::Process,
            command,
            build: Vec::new(),
            env: BTreeMap::new(),
            listen: None,
            readiness: Readiness::None,
            stop_grace_period: Self::DEFAULT_STOP_GRACE_PERIOD,
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            image: None,
            dockerfile: None,
            resources: Resources::default(),
            restart_policy: RestartPolicy::default(),
            liveness: None,
            secret_env: BTreeMap::new(),
            stop_signal: None,
            min_ready: None,
            user: None,
            max_open_files: None,
            node_selector: BTreeMap::new(),
            update_strategy: super::UpdateStrategy::default(),
        }
    }

    /// The first signal of a stop.
    pub fn stop_signal(&self) -> &str {
        self.stop_signal.as_deref().unwrap_or("SIGTERM")
    }

    /// How long a started instance must stay up to count as running: the spec's
    /// value, else [`DeploymentSpec::DEFAULT_MIN_READY`] without a readiness
    /// check (so a process that exits at once fails its start), else zero.
    pub fn min_ready(&self) -> Duration {
        match (self.min_ready, &self.readiness) {
            (Some(min_ready), _) => min_ready,
            (None, Readiness::None) => Self::DEFAULT_MIN_READY,
            (None, _) => Duration::ZERO,
        }
    }

    /// The workload's environment: `env` and the secrets.
    pub fn full_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.extend(
            self.secret_env
                .iter()
                .map(|(name, secret)| (name.clone(), secret.expose().to_owned())),
        );
        env
    }

    /// The secret values, to be masked wherever text leaves Slipway.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_env
            .values()
            .filter(|secret| !secret.is_empty())
            .map(|secret| secret.expose().to_owned())
            .collect()
    }
}

impl DeploymentSpec {
    pub const DEFAULT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(30);
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_SECONDS: u64 = 3600;
    pub const DEFAULT_MIN_READY: Duration = Duration::from_millis(250);
}

/// A stored deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub name: String,
    pub project: String,
    pub service_path: String,
    pub spec: DeploymentSpec,
    pub labels: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The revision of the spec and labels: 1 at create, + 1 per change.
    pub revision: u64,
}

/// One thing wrong with a request, named by its field path (`spec.env[1NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Checks a deployment name: 1–128 characters, letters, digits, `_`, `.`, `-`,
/// starting with a letter or digit (Docker's rule for container names).
pub fn validate_deployment_name(name: &str) -> Option<FieldViolation> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|byte| byte.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
    if first_ok && rest_ok && name.len() <= 128 {
        None
    } else {
        Some(FieldViolation::new(
            "name",
            "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
        ))
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|byte| byte.is_ascii_alphabetic() || byte == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn check_argv(field: &str, argv: &[String], violations: &mut Vec<FieldViolation>) {
    match argv.first() {
        None => violations.push(FieldViolation::new(field, "must not be empty")),
        Some(program) if program.trim().is_empty() => violations.push(FieldViolation::new(
            format!("{field}[0]"),
            "the program must not be empty",
        )),
        Some(_) => {}
    }
    for (index, argument) in argv.iter().enumerate() {
        if argument.contains('\0') {
            violations.push(FieldViolation::new(
                format!("{field}[{index}]"),
                "must not contain a NUL byte",
            ));
        }
    }
}

/// The most workloads a rolling update takes down (or adds) at once.
const MAX_ROLLING_STEP: u32 = 1000;

/// Everything wrong with a spec that can be told without I/O; empty when valid.
pub fn validate_spec(spec: &DeploymentSpec) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let super::UpdateStrategy::Rolling {
        max_unavailable,
        max_surge,
    } = spec.update_strategy
    {
        for (field, value) in [
            (
                "spec.update_strategy.rolling.max_unavailable",
                max_unavailable,
            ),
            ("spec.update_strategy.rolling.max_surge", max_surge),
        ] {
            if value > MAX_ROLLING_STEP {
                violations.push(FieldViolation::new(
                    field,
                    format!("must be at most {MAX_ROLLING_STEP}"),
                ));
            }
        }
    }
    match spec.runtime {
        RuntimeKind::Process => {
            check_argv("spec.command", &spec.command, &mut violations);
            for (field, set) in [
                ("spec.image", spec.image.is_some()),
                ("spec.dockerfile", spec.dockerfile.is_some()),
            ] {
                if set {
                    violations.push(FieldViolation::new(
                        field,
                        "applies to the docker runtime only",
                    ));
                }
            }
        }
        RuntimeKind::Docker => validate_docker(spec, &mut violations),
    }
    for (index, step) in spec.build.iter().enumerate() {
        check_argv(
            &format!("spec.build[{index}].command"),
            &step.command,
            &mut violations,
        );
    }
    for (name, value) in &spec.env {
        if !is_env_name(name) {
            violations.push(FieldViolation::new(
                format!("spec.env[{name}]"),
                "an environment variable name is letters, digits and '_', not starting with a digit",
            ));
        } else if name == "PORT" && spec.listen.is_some() {
            violations.push(FieldViolation::new(
                "spec.env[PORT]",
                "PORT is set by slipway to the port the workload gets from the pool",
            ));
        }
        if value.contains('\0') {
            violations.push(FieldViolation::new(
                format!("spec.env[{name}]"),
                "the value must not contain a NUL byte",
            ));
        }
    }
    for (name, secret) in &spec.secret_env {
        if !is_env_name(name) {
            violations.push(FieldViolation::new(
                format!("spec.secret_env[{name}]"),
                "an environment variable name is letters, digits and '_', not starting with a digit",
            ));
        } else if spec.env.contains_key(name) || (name == "PORT" && spec.listen.is_some()) {
            violations.push(FieldViolation::new(
                format!("spec.secret_env[{name}]"),
                "is also set in spec.env (or is PORT)",
            ));
        }
        if secret.expose().contains('\0') {
            violations.push(FieldViolation::new(
                format!("spec.secret_env[{name}]"),
                "the value must not contain a NUL byte",
            ));
        }
    }
    if let Some(signal) = &spec.stop_signal {
        if !super::STOP_SIGNALS.contains(&signal.as_str()) {
            violations.push(FieldViolation::new(
                "spec.stop_signal",
                format!("must be one of {}", super::STOP_SIGNALS.join(", ")),
            ));
        }
    }
    super::limits::check_exec_sizes(spec, &mut violations);
    super::user::check_process_limits(spec, &mut violations);
    validate_policy(&spec.restart_policy, &mut violations);
    if let Some(check) = &spec.liveness {
        validate_check(check, spec.listen.is_some(), &mut violations);
    }
    match &spec.readiness {
        Readiness::Tcp | Readiness::Http { .. } if spec.listen.is_none() => {
            violations.push(FieldViolation::new(
                "spec.readiness",
                "a tcp or http readiness probe needs spec.listen",
            ));
        }
        Readiness::Http { path }
            if !path.starts_with('/') || path.chars().any(char::is_whitespace) =>
        {
            violations.push(FieldViolation::new(
                "spec.readiness.http.path",
                "must start with '/' and contain no white space",
            ));
        }
        _ => {}
    }
    if spec.runtime == RuntimeKind::Docker
        && spec.listen.is_some_and(|listen| listen.container_port == 0)
    {
        violations.push(FieldViolation::new(
            "spec.listen.container_port",
            "a docker workload that listens must name its container port",
        ));
    }
    if spec.stop_grace_period.as_secs() > DeploymentSpec::MAX_SECONDS {
        violations.push(FieldViolation::new(
            "spec.stop_grace_period_seconds",
            format!("must be at most {}", DeploymentSpec::MAX_SECONDS),
        ));
    }
    if spec
        .min_ready
        .is_some_and(|min_ready| min_ready.as_secs() > DeploymentSpec::MAX_SECONDS)
    {
        violations.push(FieldViolation::new(
            "spec.min_ready_ms",
            format!("must be at most {} ms", DeploymentSpec::MAX_SECONDS * 1000),
        ));
    }
    let startup = spec.startup_timeout.as_secs();
    if startup == 0 || startup > DeploymentSpec::MAX_SECONDS {
        violations.push(FieldViolation::new(
            "spec.startup_timeout_seconds",
            format!("must be between 1 and {}", DeploymentSpec::MAX_SECONDS),
        ));
    }
    violations
}

fn validate_policy(policy: &super::RestartPolicy, violations: &mut Vec<FieldViolation>) {
    let field = |name: &str| format!("spec.restart_policy.{name}");
    if policy.window.is_zero() {
        violations.push(FieldViolation::new(
            field("window_seconds"),
            "must be at least 1",
        ));
    }
    if policy.initial_backoff < Duration::from_millis(10) {
        violations.push(FieldViolation::new(
            field("initial_backoff_ms"),
            "must be at least 10",
        ));
    }
    if policy.max_backoff < policy.initial_backoff {
        violations.push(FieldViolation::new(
            field("max_backoff_ms"),
            "must be at least initial_backoff_ms",
        ));
    }
    if !(100..=1000).contains(&policy.backoff_factor_percent) {
        violations.push(FieldViolation::new(
            field("backoff_factor"),
            "must be between 1 and 10",
        ));
    }
    if policy.jitter_percent > 100 {
        violations.push(FieldViolation::new(
            field("jitter_percent"),
            "must be at most 100",
        ));
    }
}

fn validate_check(check: &super::HealthCheck, listens: bool, violations: &mut Vec<FieldViolation>) {
    match &check.probe {
        super::Probe::Tcp | super::Probe::Http { .. } if !listens => {
            violations.push(FieldViolation::new(
                "spec.liveness",
                "a tcp or http check needs spec.listen",
            ));
        }
        super::Probe::Http { path } if !path.starts_with('/') => {
            violations.push(FieldViolation::new(
                "spec.liveness.http.path",
                "must start with '/'",
            ));
        }
        super::Probe::Exec { command } => {
            check_argv("spec.liveness.exec.command", command, violations)
        }
        _ => {}
    }
    if check.interval < Duration::from_millis(100) {
        violations.push(FieldViolation::new(
            "spec.liveness.interval_ms",
            "must be at least 100",
        ));
    }
    if check.timeout < Duration::from_millis(10) {
        violations.push(FieldViolation::new(
            "spec.liveness.timeout_ms",
            "must be at least 10",
        ));
    }
    if check.failure_threshold == 0 {
        violations.push(FieldViolation::new(
            "spec.liveness.failure_threshold",
            "must be at least 1",
        ));
    }
}

fn validate_docker(spec: &DeploymentSpec, violations: &mut Vec<FieldViolation>) {
    // An empty command runs the image's own.
    if !spec.command.is_empty() {
        check_argv("spec.command", &spec.command, violations);
    }
    if !spec.build.is_empty() {
        violations.push(FieldViolation::new(
            "spec.build",
            "build steps are for the process runtime; a docker deployment builds its Dockerfile",
        ));
    }
    if spec.image.is_some() && spec.dockerfile.is_some() {
        violations.push(FieldViolation::new(
            "spec.image",
            "give an image or a dockerfile, not both",
        ));
    }
    if let Some(image) = &spec.image {
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            violations.push(FieldViolation::new(
                "spec.image",
                "must be an image reference",
            ));
        }
    }
    if let Some(dockerfile) = &spec.dockerfile {
        let path = std::path::Path::new(dockerfile);
        let inside = !dockerfile.is_empty()
            && path.is_relative()
            && path.components().all(|component| {
                matches!(
                    component,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
        if !inside {
            violations.push(FieldViolation::new(
                "spec.dockerfile",
                "must be a relative path inside the service directory",
            ));
        }
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploymentSpec {
        DeploymentSpec {
            runtime: RuntimeKind::Process,
            command: vec!["sh".into(), "-c".into(), "true".into()],
            build: vec![],
            env: BTreeMap::new(),
            listen: None,
            readiness: Readiness::None,
            stop_grace_period: DeploymentSpec::DEFAULT_STOP_GRACE_PERIOD,
            startup_timeout: DeploymentSpec::DEFAULT_STARTUP_TIMEOUT,
            image: None,
            dockerfile: None,
            resources: Resources::default(),
            restart_policy: RestartPolicy::default(),
            liveness: None,
            secret_env: BTreeMap::new(),
            stop_signal: None,
            min_ready: None,
            user: None,
            max_open_files: None,
            node_selector: BTreeMap::new(),
            update_strategy: Default::default(),
        }
    }

    fn fields(spec: &DeploymentSpec) -> Vec<String> {
        validate_spec(spec)
            .into_iter()
            .map(|violation| violation.field)
            .collect()
    }

    #[test]
    fn a_plain_spec_is_valid() {
        assert!(validate_spec(&spec()).is_empty());
    }

    #[test]
    fn violations_name_their_field() {
        let mut bad = spec();
        bad.command.clear();
        bad.build.push(BuildStep {
            command: vec![String::new()],
        });
        bad.env.insert("1BAD".into(), "x".into());
        bad.env.insert("GOOD".into(), "x".into());
        bad.readiness = Readiness::Tcp;
        bad.startup_timeout = Duration::ZERO;
        assert_eq!(
            fields(&bad),
            [
                "spec.command",
                "spec.build[0].command[0]",
                "spec.env[1BAD]",
                "spec.readiness",
                "spec.startup_timeout_seconds"
            ]
        );
    }

    #[test]
    fn port_is_reserved_when_listening() {
        let mut listening = spec();
        listening.listen = Some(Listen::default());
        listening.env.insert("PORT".into(), "80".into());
        assert_eq!(fields(&listening), ["spec.env[PORT]"]);
    }

    #[test]
    fn docker_fields_belong_to_the_docker_runtime() {
        let mut process = spec();
        process.image = Some("busybox".into());
        assert_eq!(fields(&process), ["spec.image"]);

        let mut docker = spec();
        docker.runtime = RuntimeKind::Docker;
        docker.command.clear();
        docker.image = Some("local/busybox:test".into());
        assert!(validate_spec(&docker).is_empty());
        docker.dockerfile = Some("../Dockerfile".into());
        docker.build.push(BuildStep {
            command: vec!["make".into()],
        });
        assert_eq!(
            fields(&docker),
            ["spec.build", "spec.image", "spec.dockerfile"]
        );
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate_deployment_name("web-1.v2_a").is_none());
        for bad in ["", "-web", "we b", "web/1", &"a".repeat(129)] {
            assert!(validate_deployment_name(bad).is_some(), "{bad}");
        }
    }
}
