//! The Docker runtime: a deployment's Dockerfile is built (or its image pulled),
//! and each generation of a workload is a labelled container with an init process,
//! its port published from the pool on the publish address (127.0.0.1 unless
//! configured otherwise). Readiness and liveness probes reach the container on its
//! own network address, and an image's `HEALTHCHECK` is honoured. Talks to the
//! engine through bollard, with the API version negotiated, at `DOCKER_HOST` or
//! the default socket.

mod container;
mod context;
mod image;
mod labels;
mod logs;
mod timestamps;

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use async_trait::async_trait;
use bollard::{
    Docker,
    errors::Error as DockerError,
    query_parameters::{
        KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    },
};
use futures::StreamExt;
use tokio::sync::OnceCell;

pub use image::image_tag;
pub use labels::ContainerLabels;

use super::{
    ExitStatus, Instance, LogResume, OwnHealth, Reclaimed, RunContext, Runtime, RuntimeError,
    RuntimeHandle,
};
use crate::{
    domain::{LogLevel, NodeId, RuntimeKind, WorkloadId},
    logs::LogSink,
};

/// Where the engine is looked for when `DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Runs workloads as Docker containers.
pub struct DockerRuntime {
    client: OnceCell<Docker>,
    /// The host address container ports are published on.
    publish_address: IpAddr,
    /// This node's id, put on every container it creates.
    node: Option<String>,
}

impl Default for DockerRuntime {
    fn default() -> Self {
        Self::new()
    }
}

fn engine_location() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) => format!("{host} (from DOCKER_HOST)"),
        Err(_) => {
            format!("{DEFAULT_HOST} (the default socket; set DOCKER_HOST to use another engine)")
        }
    }
}

fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn engine_error(context: &str, error: DockerError) -> RuntimeError {
    match error {
        DockerError::DockerResponseServerError { message, .. } => {
            RuntimeError::Start(format!("{context}: {message}"))
        }
        DockerError::HyperResponseError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::IOError { .. } => RuntimeError::Unavailable(format!(
            "{context}: the Docker engine at {} did not answer: {error}",
            engine_location()
        )),
        other => RuntimeError::Start(format!("{context}: {other}")),
    }
}

impl DockerRuntime {
    /// A runtime that connects to the engine on first use and publishes
    /// container ports on 127.0.0.1.
    pub fn new() -> Self {
        Self::with_publish_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A runtime that publishes container ports on `publish_address`
    /// (`0.0.0.0` for every address of the host).
    pub fn with_publish_address(publish_address: IpAddr) -> Self {
        Self {
            client: OnceCell::new(),
            publish_address,
            node: None,
        }
    }

    /// The same runtime, labelling its containers with `node` (this node's id).
    pub fn with_node(mut self, node: Option<String>) -> Self {
        self.node = node;
        self
    }

    /// Slipway's containers labelled with `node`, with their labels.
    async fn containers_of_node(
        &self,
        node: &NodeId,
    ) -> Result<Vec<(String, ContainerLabels)>, RuntimeError> {
        let docker = self.docker().await?;
        let filters = HashMap::from([("label", vec![format!("{}={node}", labels::NODE)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = docker
            .list_containers(Some(options))
            .await
            .map_err(|error| engine_error("listing containers", error))?;
        Ok(containers
            .into_iter()
            .filter_map(|summary| {
                let labels = ContainerLabels::parse(summary.labels.as_ref()?)?;
                Some((summary.id?, labels))
            })
            .collect())
    }

    /// The engine, connected and with its API version negotiated.
    pub async fn docker(&self) -> Result<&Docker, RuntimeError> {
        self.client
            .get_or_try_init(|| async {
                let unreachable = |error: DockerError| {
                    RuntimeError::Unavailable(format!(
                        "cannot reach the Docker engine at {}: {error}",
                        engine_location()
                    ))
                };
                let docker = Docker::connect_with_defaults().map_err(unreachable)?;
                docker.negotiate_version().await.map_err(unreachable)
            })
            .await
    }

    /// Whether the engine answers.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        docker.ping().await.map(drop).map_err(|error| {
            RuntimeError::Unavailable(format!(
                "the Docker engine at {} does not answer: {error}",
                engine_location()
            ))
        })
    }

    /// The workload's containers (any generation, running or not).
    async fn containers_of(
        &self,
        workload_id: &WorkloadId,
    ) -> Result<Vec<(String, ContainerLabels)>, RuntimeError> {
        let docker = self.docker().await?;
        let filters =
            HashMap::from([("label", vec![format!("{}={workload_id}", labels::WORKLOAD)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = docker
            .list_containers(Some(options))
            .await
            .map_err(|error| engine_error("listing containers", error))?;
        Ok(containers
            .into_iter()
            .filter_map(|summary| {
                let labels = ContainerLabels::parse(summary.labels.as_ref()?)?;
                Some((summary.id?, labels))
            })
            .collect())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(engine_error("removing a container", error)),
        }
    }

    /// The container as the engine sees it now.
    async fn inspect(
        &self,
        id: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, RuntimeError> {
        let docker = self.docker().await?;
        docker
            .inspect_container(id, None)
            .await
            .map_err(|error| engine_error("inspecting the container", error))
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    fn instances_outlive_slipway(&self) -> bool {
        true
    }

    async fn validate(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError> {
        self.ping().await?;
        let docker = self.docker().await?;
        if let Ok(version) = docker.version().await {
            logs.system(
                LogLevel::Debug,
                format!(
                    "docker engine {} (API {})",
                    version.version.unwrap_or_default(),
                    docker.client_version()
                ),
            )
            .await;
        }
        if context.spec.image.is_none() {
            if !context.service_dir.is_dir() {
                return Err(RuntimeError::Invalid(format!(
                    "service directory {} does not exist",
                    context.service_dir.display()
                )));
            }
            let dockerfile = context.spec.dockerfile.as_deref().unwrap_or("Dockerfile");
            if !context.service_dir.join(dockerfile).is_file() {
                return Err(RuntimeError::Invalid(format!(
                    "no {dockerfile} in the service directory {}",
                    context.service_dir.display()
                )));
            }
        }
        Ok(())
    }

    async fn build(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError> {
        match &context.spec.image {
            Some(image) => self.pull(image, logs).await,
            None => {
                let dockerfile = context.spec.dockerfile.as_deref().unwrap_or("Dockerfile");
                self.build_image(context, dockerfile, logs).await
            }
        }
    }

    async fn start(&self, context: &RunContext, logs: &LogSink) -> Result<Instance, RuntimeError> {
        let docker = self.docker().await?;
        let id = self.create_container(context).await?;
        if let Err(error) = docker.start_container(&id, None).await {
            let message = error.to_string();
            if message.contains("port is already allocated")
                || message.contains("address already in use")
            {
                self.remove_container(&id).await?;
                return Err(RuntimeError::PortTaken(format!(
                    "host port {} is taken",
                    context.port.unwrap_or_default()
                )));
            }
            return Err(engine_error("starting the container", error));
        }
        logs.system(
            LogLevel::Info,
            format!("container {} started", &id[..12.min(id.len())]),
        )
        .await;
        let inspected = match self.inspect(&id).await {
            Ok(inspected) => inspected,
            Err(error) => {
                // Without knowing where it answers it cannot be probed: leave nothing behind.
                let _ = self.remove_container(&id).await;
                return Err(error);
            }
        };
        let probe_address = container::probe_address(&inspected);
        let handle = RuntimeHandle {
            runtime_id: id,
            process_start_time: None,
        };
        let instance = logs::follow(docker.clone(), handle, logs.clone(), LogResume::default());
        Ok(instance.with_probe_address(probe_address))
    }

    async fn stop(
        &self,
        instance: &Instance,
        first_signal: &str,
        grace: Duration,
    ) -> Result<ExitStatus, RuntimeError> {
        if let Some(status) = instance.exit_status() {
            return Ok(status);
        }
        let docker = self.docker().await?;
        let id = &instance.handle.runtime_id;
        let signal = |name: &str| KillContainerOptionsBuilder::new().signal(name).build();
        match docker.kill_container(id, Some(signal(first_signal))).await {
            Ok(()) => {}
            // Not running any more: it is exiting by itself.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(engine_error("signalling the container", error)),
        }
        if let Ok(status) = tokio::time::timeout(grace, instance.exited()).await {
            return Ok(status);
        }
        match docker.kill_container(id, Some(signal("SIGKILL"))).await {
            Ok(()) => {}
            Err(DockerError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => {}
            Err(error) => return Err(engine_error("killing the container", error)),
        }
        Ok(instance.exited().await)
    }

    async fn exec(
        &self,
        _context: &RunContext,
        instance: &Instance,
        command: &[String],
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let docker = self.docker().await?;
        let id = &instance.handle.runtime_id;
        let options = bollard::models::ExecConfig {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..bollard::models::ExecConfig::default()
        };
        let created = docker
            .create_exec(id, options)
            .await
            .map_err(|error| engine_error("creating a health check", error))?;
        let run = async {
            if let bollard::exec::StartExecResults::Attached { mut output, .. } = docker
                .start_exec(&created.id, None)
                .await
                .map_err(|error| engine_error("running a health check", error))?
            {
                while output.next().await.is_some() {}
            }
            let inspected = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|error| engine_error("inspecting a health check", error))?;
            Ok::<bool, RuntimeError>(inspected.exit_code == Some(0))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_elapsed) => Ok(false),
        }
    }

    async fn own_health(&self, instance: &Instance) -> Result<OwnHealth, RuntimeError> {
        let inspected = self.inspect(&instance.handle.runtime_id).await?;
        Ok(container::own_health(&inspected))
    }

    async fn reclaim(
        &self,
        handle: &RuntimeHandle,
        logs: &LogSink,
        resume: LogResume,
        _grace: Duration,
    ) -> Result<Reclaimed, RuntimeError> {
        let docker = self.docker().await?;
        let inspected = match docker.inspect_container(&handle.runtime_id, None).await {
            Ok(inspected) => inspected,
            Err(error) if is_not_found(&error) => return Ok(Reclaimed::Gone),
            Err(error) => return Err(engine_error("inspecting the container", error)),
        };
        let running = inspected
            .state
            .as_ref()
            .and_then(|state| state.running)
            .unwrap_or(false);
        if !running {
            return Ok(Reclaimed::Gone);
        }
        logs.system(
            LogLevel::Info,
            "slipway restarted: container adopted, following its output again",
        )
        .await;
        let probe_address = container::probe_address(&inspected);
        let instance = logs::follow(docker.clone(), handle.clone(), logs.clone(), resume);
        Ok(Reclaimed::Adopted(
            instance.with_probe_address(probe_address),
        ))
    }

    async fn remove(&self, workload_id: &WorkloadId) -> Result<(), RuntimeError> {
        for (id, _) in self.containers_of(workload_id).await? {
            self.remove_container(&id).await?;
        }
        Ok(())
    }

    async fn workloads_started_by(&self, node: &NodeId) -> Result<Vec<WorkloadId>, RuntimeError> {
        if self.docker().await.is_err() {
            // No engine here: no container either.
            return Ok(Vec::new());
        }
        Ok(self
            .containers_of_node(node)
            .await?
            .into_iter()
            .map(|(_, labels)| labels.workload_id)
            .collect())
    }

    async fn remove_started_by(
        &self,
        node: &NodeId,
        workload_id: &WorkloadId,
    ) -> Result<(), RuntimeError> {
        for (id, labels) in self.containers_of_node(node).await? {
            if &labels.workload_id == workload_id {
                self.remove_container(&id).await?;
            }
        }
        Ok(())
    }
}
