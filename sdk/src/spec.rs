//! A builder for deployment requests, so a caller writes what runs rather than
//! the wire format.

use slipway::v1::{
    BuildStep, CreateDeploymentRequest, DeploymentSpec, HealthCheck, HttpProbe, Listen, NoProbe,
    Readiness, Resources, RestartPolicy, Runtime, TcpProbe, readiness::Probe,
};

/// Builds a [`CreateDeploymentRequest`].
///
/// ```
/// let request = slipway_sdk::DeploymentBuilder::new("web")
///     .service_path("services/web")
///     .command(["sh", "-c", "exec python3 -m http.server \"$PORT\""])
///     .listen()
///     .http_readiness("/")
///     .build();
/// assert_eq!(request.name, "web");
/// ```
#[derive(Debug, Clone)]
pub struct DeploymentBuilder {
    request: CreateDeploymentRequest,
}

impl DeploymentBuilder {
    /// A process deployment named `name` (empty: the server picks a name).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            request: CreateDeploymentRequest {
                name: name.into(),
                spec: Some(DeploymentSpec {
                    runtime: Runtime::Process.into(),
                    ..DeploymentSpec::default()
                }),
                ..CreateDeploymentRequest::default()
            },
        }
    }

    fn spec(&mut self) -> &mut DeploymentSpec {
        self.request
            .spec
            .get_or_insert_with(DeploymentSpec::default)
    }

    /// The project the deployment belongs to (empty: none).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.request.project = project.into();
        self
    }

    /// The service directory, relative to the server's root.
    pub fn service_path(mut self, path: impl Into<String>) -> Self {
        self.request.service_path = path.into();
        self
    }

    /// Where it runs: a process (the default) or a Docker container.
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.spec().runtime = runtime.into();
        self
    }

    /// The argv to run (no shell).
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec().command = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a build step (an argv run in the service directory).
    pub fn build_step<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let command = argv.into_iter().map(Into::into).collect();
        self.spec().build.push(BuildStep { command });
        self
    }

    /// An environment variable for the build steps and the workload.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec().env.insert(name.into(), value.into());
        self
    }

    /// The workload serves on a port from the pool, given to it in `$PORT`.
    pub fn listen(mut self) -> Self {
        self.spec().listen = Some(Listen::default());
        self
    }

    /// Ready once `GET path` answers 2xx or 3xx.
    pub fn http_readiness(mut self, path: impl Into<String>) -> Self {
        let probe = Probe::Http(HttpProbe { path: path.into() });
        self.spec().readiness = Some(Readiness { probe: Some(probe) });
        self
    }

    /// Ready once the port accepts a TCP connection (the default when listening).
    pub fn tcp_readiness(mut self) -> Self {
        self.spec().readiness = Some(Readiness {
            probe: Some(Probe::Tcp(TcpProbe {})),
        });
        self
    }

    /// Ready as soon as started.
    pub fn no_readiness(mut self) -> Self {
        self.spec().readiness = Some(Readiness {
            probe: Some(Probe::None(NoProbe {})),
        });
        self
    }

    /// Time between the stop signal and the kill (default 30).
    pub fn stop_grace_period_seconds(mut self, seconds: u32) -> Self {
        self.spec().stop_grace_period_seconds = Some(seconds);
        self
    }

    /// How long the deploy stage may wait for readiness (default 60).
    pub fn startup_timeout_seconds(mut self, seconds: u32) -> Self {
        self.spec().startup_timeout_seconds = Some(seconds);
        self
    }

    /// How long the instance must stay up, once ready (or once started, without
    /// a readiness check), to count as running; an instance that exits sooner
    /// fails its start. Default: 250 ms without a readiness check, else 0.
    pub fn min_ready_ms(mut self, millis: u32) -> Self {
        self.spec().min_ready_ms = Some(millis);
        self
    }

    /// A Docker deployment of an image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        let spec = self.spec();
        spec.runtime = Runtime::Docker.into();
        spec.image = image.into();
        self
    }

    /// A Docker deployment built from a Dockerfile in the service directory.
    pub fn dockerfile(mut self, dockerfile: impl Into<String>) -> Self {
        let spec = self.spec();
        spec.runtime = Runtime::Docker.into();
        spec.dockerfile = dockerfile.into();
        self
    }

    /// Listens on `container_port` inside the container, published on a port
    /// from the pool (Docker).
    pub fn container_port(mut self, container_port: u16) -> Self {
        self.spec().listen = Some(Listen {
            container_port: container_port.into(),
        });
        self
    }

    /// Resource limits: memory in bytes, CPU in thousandths (0: none). A
    /// container's limits; a process workload's cgroup limits where the server
    /// can apply them (else `Workload::warnings` says so).
    pub fn resources(mut self, memory_bytes: u64, millicpus: u32) -> Self {
        self.spec().resources = Some(Resources {
            memory_bytes,
            millicpus,
        });
        self
    }

    /// Restarts the workload when a run ends by itself (see `RestartPolicy`).
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.spec().restart_policy = Some(policy);
        self
    }

    /// A liveness check that runs while the workload runs: a [`Liveness`](crate::Liveness)
    /// (or the wire type).
    pub fn liveness(mut self, check: impl Into<HealthCheck>) -> Self {
        self.spec().liveness = Some(check.into());
        self
    }

    /// An environment variable whose value is never shown (masked in the API
    /// and in logs).
    pub fn secret_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec().secret_env.insert(name.into(), value.into());
        self
    }

    /// The user the workload runs as, in Docker's syntax: `name`, `uid`,
    /// `name:group` or `uid:gid`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.spec().user = user.into();
        self
    }

    /// The most files a process of the workload may have open (RLIMIT_NOFILE).
    pub fn max_open_files(mut self, files: u64) -> Self {
        self.spec().max_open_files = Some(files);
        self
    }

    /// The first signal of a stop (`SIGTERM` by default).
    pub fn stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.spec().stop_signal = signal.into();
        self
    }

    /// A label on the deployment.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.labels.insert(key.into(), value.into());
        self
    }

    /// Runs the workloads only on nodes started with `--node-label KEY=VALUE`
    /// (each call adds one label a node must carry).
    pub fn node_selector(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec().node_selector.insert(key.into(), value.into());
        self
    }

    /// How changes of the deployment reach its running workloads (default:
    /// rolling, one at a time).
    pub fn update_strategy(mut self, strategy: crate::RolloutStrategy) -> Self {
        self.spec().update_strategy = Some(strategy.into());
        self
    }

    /// The request, for [`Client::create_deployment`](crate::Client::create_deployment).
    pub fn build(self) -> CreateDeploymentRequest {
        self.request
    }
}

impl From<DeploymentBuilder> for CreateDeploymentRequest {
    /// The request the builder built, so a builder can be passed where a
    /// request is taken (`client.run(builder)`).
    fn from(builder: DeploymentBuilder) -> CreateDeploymentRequest {
        builder.build()
    }
}
