//! The Docker runtime: a deployment's Dockerfile is built (or its image pulled),
//! and each generation of a workload is a labelled container with an init process,
//! its port published from the pool. Talks to the engine through bollard, with
//! the API version negotiated, at `DOCKER_HOST` or the default socket.

mod context;
mod labels;
mod logs;
mod timestamps;

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use bollard::{
    Docker,
    errors::Error as DockerError,
    models::{ContainerCreateBody, HostConfig, PortBinding},
    query_parameters::{
        BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
        KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    },
};
use futures::StreamExt;
use tokio::sync::OnceCell;

pub use labels::ContainerLabels;

use super::{
    ExitStatus, Instance, LogResume, Reclaimed, RunContext, Runtime, RuntimeError, RuntimeHandle,
};
use crate::{
    domain::{LogLevel, LogStream, RuntimeKind, WorkloadId},
    logs::LogSink,
};

/// Where the engine is looked for when `DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Runs workloads as Docker containers.
pub struct DockerRuntime {
    client: OnceCell<Docker>,
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

/// The tag of the image built for a deployment: `slipway/<name>:<id prefix>`.
pub fn image_tag(context: &RunContext) -> String {
    let mut name: String = context
        .deployment_name
        .to_ascii_lowercase()
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "._-".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_start_matches(|character: char| !character.is_ascii_alphanumeric())
        .to_owned();
    if name.is_empty() {
        name = "deployment".to_owned();
    }
    format!("slipway/{name}:{}", context.deployment_id.short())
}

/// `name[:tag]` → (name, tag), `latest` when no tag is given.
fn split_reference(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

fn container_name(context: &RunContext) -> String {
    format!(
        "slipway-{}-{}",
        context.workload_id.short(),
        context.generation
    )
}

impl DockerRuntime {
    /// A runtime that connects to the engine on first use.
    pub fn new() -> Self {
        Self {
            client: OnceCell::new(),
        }
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

    async fn pull(&self, image: &str, logs: &LogSink) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        if docker.inspect_image(image).await.is_ok() {
            logs.system(LogLevel::Info, format!("image {image} is present"))
                .await;
            return Ok(());
        }
        logs.system(
            LogLevel::Info,
            format!("image {image} is not present, pulling it"),
        )
        .await;
        let (name, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(name)
            .tag(tag)
            .build();
        let mut progress = docker.create_image(Some(options), None, None);
        let mut last_status = String::new();
        while let Some(item) = progress.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status {
                        // Layer progress repeats the same status many times; keep one line each.
                        let line = match info.id {
                            Some(id) => format!("{id}: {status}"),
                            None => status,
                        };
                        if line != last_status {
                            logs.output(LogStream::Stdout, line.clone()).await;
                            last_status = line;
                        }
                    }
                }
                Err(error) => {
                    let reason = match error {
                        DockerError::DockerStreamError { error } => error,
                        DockerError::DockerResponseServerError { message, .. } => message,
                        other => other.to_string(),
                    };
                    return Err(RuntimeError::Build(format!(
                        "image {image} is not present locally and could not be pulled: {reason}"
                    )));
                }
            }
        }
        Ok(())
    }

    async fn build_image(
        &self,
        context: &RunContext,
        dockerfile: &str,
        logs: &LogSink,
    ) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        let directory = context.service_dir.clone();
        let dockerfile_name = dockerfile.to_owned();
        let tar = tokio::task::spawn_blocking(move || {
            context::build_context(&directory, &dockerfile_name)
        })
        .await
        .map_err(|error| RuntimeError::Build(format!("making the build context failed: {error}")))?
        .map_err(|source| RuntimeError::Io {
            context: "making the build context".to_owned(),
            source,
        })?;
        let tag = image_tag(context);
        logs.system(
            LogLevel::Info,
            format!(
                "building {tag} from {dockerfile} ({} bytes of context)",
                tar.len()
            ),
        )
        .await;
        let image_labels = HashMap::from([(labels::DEPLOYMENT, context.deployment_id.to_string())]);
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(dockerfile)
            .t(&tag)
            .labels(&image_labels)
            .rm(true)
            .forcerm(true)
            .build();
        let mut output = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        while let Some(item) = output.next().await {
            let info = match item {
                Ok(info) => info,
                Err(DockerError::DockerStreamError { error }) => {
                    return Err(RuntimeError::Build(format!("docker build failed: {error}")));
                }
                Err(error) => return Err(engine_error("building the image", error)),
            };
            if let Some(text) = info.stream {
                for line in text.lines().filter(|line| !line.trim().is_empty()) {
                    logs.output(LogStream::Stdout, line.to_owned()).await;
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "unknown error".to_owned());
                logs.output(LogStream::Stderr, message.clone()).await;
                return Err(RuntimeError::Build(format!(
                    "docker build failed: {message}"
                )));
            }
        }
        Ok(())
    }

    fn create_body(&self, context: &RunContext, image: String) -> ContainerCreateBody {
        let spec = &context.spec;
        let labels = ContainerLabels {
            workload_id: context.workload_id.clone(),
            deployment_id: context.deployment_id.clone(),
            generation: context.generation,
        };
        let mut env: Vec<String> = spec
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut host_config = HostConfig {
            init: Some(true),
            memory: spec
                .resources
                .memory_bytes
                .and_then(|bytes| i64::try_from(bytes).ok()),
            nano_cpus: spec
                .resources
                .millicpus
                .map(|millicpus| i64::from(millicpus) * 1_000_000),
            ..HostConfig::default()
        };
        let mut exposed_ports = None;
        if let (Some(listen), Some(port)) = (spec.listen, context.port) {
            let key = format!("{}/tcp", listen.container_port);
            env.push(format!("PORT={}", listen.container_port));
            exposed_ports = Some(vec![key.clone()]);
            let binding = PortBinding {
                host_ip: Some("0.0.0.0".to_owned()),
                host_port: Some(port.to_string()),
            };
            host_config.port_bindings = Some(HashMap::from([(key, Some(vec![binding]))]));
        }
        ContainerCreateBody {
            image: Some(image),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            env: Some(env),
            labels: Some(labels.to_map()),
            exposed_ports,
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        }
    }

    /// The workload's container for this generation: the one made before (a
    /// retry) or a new one.
    async fn create_container(&self, context: &RunContext) -> Result<String, RuntimeError> {
        let docker = self.docker().await?;
        for (id, labels) in self.containers_of(&context.workload_id).await? {
            if labels.generation != context.generation {
                self.remove_container(&id).await?;
            }
        }
        let name = container_name(context);
        if let Ok(existing) = docker.inspect_container(&name, None).await {
            let ours = existing
                .config
                .as_ref()
                .and_then(|config| config.labels.as_ref())
                .and_then(ContainerLabels::parse)
                .is_some_and(|labels| labels.workload_id == context.workload_id);
            let running = existing
                .state
                .as_ref()
                .and_then(|state| state.running)
                .unwrap_or(false);
            if ours && !running {
                // Made by an earlier attempt that failed before or at start: make it anew,
                // so it gets this attempt's port.
                self.remove_container(&name).await?;
            } else if let (true, Some(id)) = (ours, existing.id) {
                return Ok(id);
            }
        }
        let image = match &context.spec.image {
            Some(image) => image.clone(),
            None => image_tag(context),
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = docker
            .create_container(Some(options), self.create_body(context, image))
            .await
            .map_err(|error| engine_error("creating the container", error))?;
        Ok(created.id)
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
        let handle = RuntimeHandle {
            runtime_id: id,
            process_start_time: None,
        };
        Ok(logs::follow(
            docker.clone(),
            handle,
            logs.clone(),
            LogResume::default(),
        ))
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
        Ok(Reclaimed::Adopted(logs::follow(
            docker.clone(),
            handle.clone(),
            logs.clone(),
            resume,
        )))
    }

    async fn remove(&self, workload_id: &WorkloadId) -> Result<(), RuntimeError> {
        for (id, _) in self.containers_of(workload_id).await? {
            self.remove_container(&id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(
            split_reference("local/busybox:1.36"),
            ("local/busybox", "1.36")
        );
        assert_eq!(
            split_reference("registry:5000/app"),
            ("registry:5000/app", "latest")
        );
    }
}
