//! Deployment spec files for `slipway deploy -f`: TOML or YAML, the same fields
//! (see `examples/deployment.toml`). Unknown fields are refused, so a typo does
//! not pass silently.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;
use slipway_sdk::{DeploymentBuilder, Liveness, RolloutStrategy, proto::CreateDeploymentRequest};

use super::error::CliError;
use slipway_server::domain::Secret;

/// A deployment as written in a spec file.
#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    /// The deployment's name (generated when absent).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project: String,
    /// The service directory, relative to the server's root.
    #[serde(default)]
    pub path: String,
    /// The argv to run (no shell).
    #[serde(default)]
    pub command: Vec<String>,
    /// Build steps, each an argv, run in order.
    #[serde(default)]
    pub build: Vec<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `true` to listen on a port from the pool ($PORT), or a table with
    /// `container_port` for Docker.
    pub listen: Option<ListenSpec>,
    /// `"tcp"`, `"none"`, or `{ http = "/path" }`.
    pub readiness: Option<ReadinessSpec>,
    pub stop_grace_period_seconds: Option<u32>,
    pub startup_timeout_seconds: Option<u32>,
    /// Docker: the image to run.
    pub image: Option<String>,
    /// Docker: the Dockerfile to build, relative to `path`.
    pub dockerfile: Option<String>,
    /// Resource limits (a container's, or a process workload's cgroup limits).
    pub resources: Option<ResourcesSpec>,
    /// Who the workload runs as: "name", "uid", "name:group" or "uid:gid".
    pub user: Option<String>,
    /// The most files a process may have open (RLIMIT_NOFILE).
    pub max_open_files: Option<u64>,
    /// Labels a node must carry to run the workloads (`slipway serve --node-label`).
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Restart policy, as `slipway run --restart`: "no", "on-failure[:MAX]", "always".
    pub restart: Option<String>,
    /// Environment passed on but never shown (masked by the server).
    #[serde(default)]
    pub secret_env: BTreeMap<String, Secret>,
    /// The first signal of a stop ("SIGTERM" by default).
    pub stop_signal: Option<String>,
    /// A check while it runs: `[liveness]` with one of `exec`, `http`, `tcp`.
    pub liveness: Option<LivenessSpec>,
    /// How a change reaches the running workloads: "rolling" (the default),
    /// "recreate", "on-restart", or `{ rolling = { max_unavailable = 2, max_surge = 1 } }`.
    pub update_strategy: Option<StrategySpec>,
}

/// `update_strategy = "recreate"`, or `{ rolling = { max_unavailable = 2 } }`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StrategySpec {
    Named(String),
    Rolling { rolling: RollingSpec },
}

/// A rolling update's counts.
#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RollingSpec {
    /// Restarted at once (default 1).
    pub max_unavailable: Option<u32>,
    /// New workloads started first (default 0).
    pub max_surge: Option<u32>,
}

/// `[liveness]`: one of `exec = ["argv", …]`, `http = "/path"` or
/// `tcp = true`, with `interval_ms`, `timeout_ms` and `failure_threshold`.
#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    pub exec: Option<Vec<String>>,
    pub http: Option<String>,
    pub tcp: Option<bool>,
    pub interval_ms: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub failure_threshold: Option<u32>,
}

impl LivenessSpec {
    fn into_check(self) -> Result<Liveness, String> {
        let mut check = match (self.exec, self.http, self.tcp) {
            (Some(argv), None, None | Some(false)) => Liveness::exec(argv),
            (None, Some(path), None | Some(false)) => Liveness::http(path),
            (None, None, Some(true)) => Liveness::tcp(),
            _ => {
                return Err(
                    "liveness: give exactly one of exec = [\"argv\"], http = \"/path\" or tcp = true"
                        .to_owned(),
                );
            }
        };
        if let Some(millis) = self.interval_ms {
            check = check.interval(Duration::from_millis(millis.into()));
        }
        if let Some(millis) = self.timeout_ms {
            check = check.timeout(Duration::from_millis(millis.into()));
        }
        if let Some(failures) = self.failure_threshold {
            check = check.failure_threshold(failures);
        }
        Ok(check)
    }
}

/// `listen = true` or `[listen] container_port = 80`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ListenSpec {
    Enabled(bool),
    Container { container_port: u16 },
}

/// `readiness = "tcp"`, `"none"`, or `{ http = "/health" }`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ReadinessSpec {
    Named(String),
    Http { http: String },
}

/// Resource limits.
#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    #[serde(default)]
    pub memory_bytes: u64,
    #[serde(default)]
    pub millicpus: u32,
}

impl SpecFile {
    /// Reads and parses a spec file; the format follows the extension (`.toml`,
    /// `.yaml`, `.yml`), else TOML is tried, then YAML.
    pub fn read(path: &Path) -> Result<SpecFile, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            context: "cannot read",
            path: path.to_owned(),
            source,
        })?;
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let spec_error = |message: String| CliError::SpecFile {
            path: path.to_owned(),
            message,
        };
        match extension.as_str() {
            "toml" => SpecFile::from_toml(&text).map_err(spec_error),
            "yaml" | "yml" => SpecFile::from_yaml(&text).map_err(spec_error),
            _ => SpecFile::from_toml(&text)
                .or_else(|_| SpecFile::from_yaml(&text))
                .map_err(spec_error),
        }
    }

    pub fn from_toml(text: &str) -> Result<SpecFile, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    pub fn from_yaml(text: &str) -> Result<SpecFile, String> {
        serde_yaml::from_str(text).map_err(|error| error.to_string())
    }

    /// The create request; the server validates the rest.
    pub fn into_request(self) -> Result<CreateDeploymentRequest, String> {
        let mut builder = DeploymentBuilder::new(self.name)
            .project(self.project)
            .service_path(self.path);
        if !self.command.is_empty() {
            builder = builder.command(self.command);
        }
        for step in self.build {
            builder = builder.build_step(step);
        }
        for (name, value) in self.env {
            builder = builder.env(name, value);
        }
        for (key, value) in self.labels {
            builder = builder.label(key, value);
        }
        if let Some(image) = self.image {
            builder = builder.image(image);
        }
        if let Some(dockerfile) = self.dockerfile {
            builder = builder.dockerfile(dockerfile);
        }
        builder = match self.listen {
            None | Some(ListenSpec::Enabled(false)) => builder,
            Some(ListenSpec::Enabled(true)) => builder.listen(),
            Some(ListenSpec::Container { container_port }) => {
                builder.container_port(container_port)
            }
        };
        builder = match self.readiness {
            None => builder,
            Some(ReadinessSpec::Http { http }) => builder.http_readiness(http),
            Some(ReadinessSpec::Named(name)) => match name.as_str() {
                "tcp" => builder.tcp_readiness(),
                "none" => builder.no_readiness(),
                other => {
                    return Err(format!(
                        "readiness {other:?}: expected \"tcp\", \"none\" or {{ http = \"/path\" }}"
                    ));
                }
            },
        };
        if let Some(seconds) = self.stop_grace_period_seconds {
            builder = builder.stop_grace_period_seconds(seconds);
        }
        if let Some(seconds) = self.startup_timeout_seconds {
            builder = builder.startup_timeout_seconds(seconds);
        }
        if let Some(resources) = self.resources {
            builder = builder.resources(resources.memory_bytes, resources.millicpus);
        }
        if let Some(restart) = &self.restart {
            if let Some(policy) = super::run::restart_policy(restart)? {
                builder = builder.restart_policy(policy);
            }
        }
        for (name, value) in self.secret_env {
            builder = builder.secret_env(name, value.expose());
        }
        if let Some(signal) = self.stop_signal {
            builder = builder.stop_signal(signal);
        }
        if let Some(user) = self.user {
            builder = builder.user(user);
        }
        if let Some(files) = self.max_open_files {
            builder = builder.max_open_files(files);
        }
        for (key, value) in self.node_selector {
            builder = builder.node_selector(key, value);
        }
        if let Some(liveness) = self.liveness {
            builder = builder.liveness(liveness.into_check()?);
        }
        if let Some(strategy) = self.update_strategy {
            builder = builder.update_strategy(match strategy {
                StrategySpec::Rolling { rolling } => RolloutStrategy::Rolling {
                    max_unavailable: rolling.max_unavailable.unwrap_or(1),
                    max_surge: rolling.max_surge.unwrap_or(0),
                },
                StrategySpec::Named(name) => match name.as_str() {
                    "rolling" => RolloutStrategy::Rolling {
                        max_unavailable: 1,
                        max_surge: 0,
                    },
                    "recreate" => RolloutStrategy::Recreate,
                    "on-restart" | "on_restart" => RolloutStrategy::OnRestart,
                    other => {
                        return Err(format!(
                            "update_strategy {other:?}: expected \"rolling\", \"recreate\", \"on-restart\" or {{ rolling = {{ max_unavailable = N, max_surge = N }} }}"
                        ));
                    }
                },
            });
        }
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../../examples/deployment.toml");
        let spec = SpecFile::from_toml(text).unwrap_or_default();
        assert!(!spec.name.is_empty());
        assert!(!spec.command.is_empty());
        assert!(spec.into_request().is_ok());
    }

    #[test]
    fn toml_and_yaml_say_the_same() {
        let toml_spec = SpecFile::from_toml(
            "name = \"web\"\ncommand = [\"sh\", \"-c\", \"echo hi\"]\nlisten = true\nreadiness = { http = \"/\" }\n[env]\nA = \"1\"\n",
        );
        let yaml_spec = SpecFile::from_yaml(
            "name: web\ncommand: [sh, -c, echo hi]\nlisten: true\nreadiness: {http: /}\nenv: {A: \"1\"}\n",
        );
        assert_eq!(toml_spec, yaml_spec);
        assert!(toml_spec.is_ok());
    }

    #[test]
    fn an_update_strategy_is_a_name_or_rolling_counts() {
        let strategy = |text: &str| {
            SpecFile::from_toml(&format!("command = [\"id\"]\n{text}"))
                .and_then(SpecFile::into_request)
                .map(|request| request.spec.and_then(|spec| spec.update_strategy))
        };
        let rolling = strategy("update_strategy = { rolling = { max_surge = 2 } }");
        assert_eq!(
            rolling,
            Ok(Some(
                RolloutStrategy::Rolling {
                    max_unavailable: 1,
                    max_surge: 2
                }
                .into()
            ))
        );
        assert_eq!(
            strategy("update_strategy = \"recreate\""),
            Ok(Some(RolloutStrategy::Recreate.into()))
        );
        assert!(strategy("update_strategy = \"sideways\"").is_err());
    }

    #[test]
    fn user_and_limits_reach_the_request() {
        let spec = SpecFile::from_toml(
            "command = [\"id\"]\nuser = \"nobody:nogroup\"\nmax_open_files = 256\nresources = { memory_bytes = 67108864 }\n",
        )
        .and_then(SpecFile::into_request)
        .ok()
        .and_then(|request| request.spec)
        .unwrap_or_default();
        assert_eq!(spec.user, "nobody:nogroup");
        assert_eq!(spec.max_open_files, Some(256));
        assert_eq!(
            spec.resources.map(|resources| resources.memory_bytes),
            Some(67108864)
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(SpecFile::from_toml("name = \"web\"\ncomand = [\"x\"]\n").is_err());
    }

    #[test]
    fn a_container_port_makes_listen_carry_it() {
        let request = SpecFile::from_toml("image = \"nginx\"\nlisten = { container_port = 80 }\n")
            .map_err(|error| error.to_string())
            .and_then(SpecFile::into_request);
        let spec = request
            .ok()
            .and_then(|request| request.spec)
            .unwrap_or_default();
        assert_eq!(spec.listen.map(|listen| listen.container_port), Some(80));
        assert_eq!(spec.image, "nginx");
    }

    #[test]
    fn liveness_reaches_the_request_and_needs_one_probe() {
        let spec = SpecFile::from_toml(
            "command = [\"sleep\", \"60\"]\n[liveness]\nexec = [\"test\", \"-e\", \"/tmp/ok\"]\ninterval_ms = 500\nfailure_threshold = 2\n",
        )
        .and_then(SpecFile::into_request)
        .ok()
        .and_then(|request| request.spec)
        .unwrap_or_default();
        let check = spec.liveness.unwrap_or_default();
        assert_eq!(check.interval_ms, Some(500));
        assert_eq!(check.failure_threshold, Some(2));
        assert!(matches!(
            check.probe,
            Some(slipway_sdk::proto::health_check::Probe::Exec(_))
        ));
        let both = SpecFile::from_toml("[liveness]\nhttp = \"/\"\ntcp = true\n")
            .and_then(SpecFile::into_request);
        assert!(both.is_err_and(|error| error.contains("exactly one")));
    }
}
