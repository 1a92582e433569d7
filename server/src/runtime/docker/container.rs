//! A workload's container: how it is made (image, command, environment, limits,
//! labels, the port published on the publish address), and what the engine says
//! about it once it runs (where its service answers, its own health check).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use bollard::{
    models::{
        ContainerCreateBody, ContainerInspectResponse, HealthStatusEnum, HostConfig, PortBinding,
        ResourcesUlimits,
    },
    query_parameters::CreateContainerOptionsBuilder,
};

use super::{DockerRuntime, engine_error, image::image_of, labels::ContainerLabels};
use crate::runtime::{OwnHealth, RunContext, RuntimeError};

/// The container of one generation of a workload: `slipway-<workload>-<generation>`.
fn container_name(context: &RunContext) -> String {
    format!(
        "slipway-{}-{}",
        context.workload_id.short(),
        context.generation
    )
}

/// The port the workload listens on inside its container, when it listens and
/// has a host port from the pool.
fn container_port(context: &RunContext) -> Option<u16> {
    context
        .spec
        .listen
        .filter(|_| context.port.is_some())
        .map(|listen| listen.container_port)
}

/// What the engine is asked to create: the image, the spec's command, the
/// workload's environment (see [`RunContext::env_listening_on`]; `PORT` is the
/// container port), its user, limits (memory, CPU, open files), labels, an init
/// process, and the container port published on `publish_address` at the port
/// from the pool.
pub(super) fn create_body(
    context: &RunContext,
    image: String,
    publish_address: IpAddr,
) -> ContainerCreateBody {
    let spec = &context.spec;
    let labels = ContainerLabels {
        workload_id: context.workload_id.clone(),
        deployment_id: context.deployment_id.clone(),
        generation: context.generation,
    };
    let env: Vec<String> = context
        .env_listening_on(container_port(context))
        .into_iter()
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
        ulimits: spec
            .max_open_files
            .and_then(|files| i64::try_from(files).ok())
            .map(|files| {
                vec![ResourcesUlimits {
                    name: Some("nofile".to_owned()),
                    soft: Some(files),
                    hard: Some(files),
                }]
            }),
        ..HostConfig::default()
    };
    let mut exposed_ports = None;
    if let (Some(inside), Some(port)) = (container_port(context), context.port) {
        let key = format!("{inside}/tcp");
        exposed_ports = Some(vec![key.clone()]);
        let binding = PortBinding {
            host_ip: Some(publish_address.to_string()),
            host_port: Some(port.to_string()),
        };
        host_config.port_bindings = Some(HashMap::from([(key, Some(vec![binding]))]));
    }
    ContainerCreateBody {
        image: Some(image),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: Some(env),
        // Resolved by the engine in the image's own user database.
        user: spec.user.clone(),
        labels: Some(labels.to_map()),
        exposed_ports,
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

/// Where a running container's service answers: its address on its network
/// (the first network by name that gave it one) and the container port Slipway
/// published. Without a network address (a network mode with none), the
/// published host port, on 127.0.0.1 when published on every address. `None`
/// when nothing is published.
pub(super) fn probe_address(inspected: &ContainerInspectResponse) -> Option<SocketAddr> {
    let (key, bindings) = inspected
        .host_config
        .as_ref()?
        .port_bindings
        .as_ref()?
        .iter()
        .min_by(|left, right| left.0.cmp(right.0))?;
    let inside: u16 = key.split('/').next()?.parse().ok()?;
    let networks = inspected
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref());
    let container_ip = networks.and_then(|networks| {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        names.into_iter().find_map(|name| {
            networks[name]
                .ip_address
                .as_deref()
                .and_then(|address| address.parse::<IpAddr>().ok())
        })
    });
    if let Some(ip) = container_ip {
        return Some(SocketAddr::new(ip, inside));
    }
    let binding = bindings.as_ref()?.first()?;
    let host_port: u16 = binding.host_port.as_deref()?.parse().ok()?;
    let host_ip = binding
        .host_ip
        .as_deref()
        .and_then(|address| address.parse::<IpAddr>().ok())
        .filter(|address| !address.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Some(SocketAddr::new(host_ip, host_port))
}

/// What the engine says of the container's own health check (the image's
/// `HEALTHCHECK`): no check, starting, healthy, or unhealthy with the check's
/// last output.
pub(super) fn own_health(inspected: &ContainerInspectResponse) -> OwnHealth {
    let Some(health) = inspected
        .state
        .as_ref()
        .and_then(|state| state.health.as_ref())
    else {
        return OwnHealth::NoCheck;
    };
    match health.status {
        None | Some(HealthStatusEnum::EMPTY | HealthStatusEnum::NONE) => OwnHealth::NoCheck,
        Some(HealthStatusEnum::STARTING) => OwnHealth::Starting,
        Some(HealthStatusEnum::HEALTHY) => OwnHealth::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => {
            let last_output = health
                .log
                .as_ref()
                .and_then(|log| log.last())
                .map(|result| {
                    let output = result.output.as_deref().unwrap_or_default().trim();
                    match result.exit_code {
                        Some(code) if output.is_empty() => format!("exit code {code}"),
                        Some(code) => format!("exit code {code}: {output}"),
                        None => output.to_owned(),
                    }
                });
            let streak = health.failing_streak.unwrap_or_default();
            OwnHealth::Unhealthy(match last_output {
                Some(output) => format!("{streak} failures in a row, the last: {output}"),
                None => format!("{streak} failures in a row"),
            })
        }
    }
}

impl DockerRuntime {
    /// The workload's container for this generation: the one made before (a
    /// retry) or a new one.
    pub(super) async fn create_container(
        &self,
        context: &RunContext,
    ) -> Result<String, RuntimeError> {
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
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let mut body = create_body(context, image_of(context), self.publish_address);
        if let Some(node) = &self.node {
            body.labels
                .get_or_insert_with(Default::default)
                .insert(super::labels::NODE.to_owned(), node.clone());
        }
        let created = docker
            .create_container(Some(options), body)
            .await
            .map_err(|error| engine_error("creating the container", error))?;
        Ok(created.id)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bollard::models::{ContainerState, EndpointSettings, Health, NetworkSettings};

    use super::*;
    use crate::domain::{
        DeploymentId, DeploymentSpec, Listen, Readiness, Resources, RestartPolicy, RuntimeKind,
        WorkloadId,
    };

    fn context() -> RunContext {
        let spec = DeploymentSpec {
            runtime: RuntimeKind::Docker,
            command: vec![],
            build: vec![],
            env: [("GREETING".to_owned(), "hello".to_owned())].into(),
            listen: Some(Listen {
                container_port: 8080,
            }),
            readiness: Readiness::None,
            stop_grace_period: DeploymentSpec::DEFAULT_STOP_GRACE_PERIOD,
            startup_timeout: DeploymentSpec::DEFAULT_STARTUP_TIMEOUT,
            image: Some("image".to_owned()),
            dockerfile: None,
            resources: Resources::default(),
            restart_policy: RestartPolicy::default(),
            liveness: None,
            secret_env: [("API_TOKEN".to_owned(), "s3cret".into())].into(),
            stop_signal: None,
            min_ready: None,
            user: Some("nobody".to_owned()),
            max_open_files: Some(4096),
            node_selector: Default::default(),
            update_strategy: Default::default(),
        };
        RunContext {
            workload_id: WorkloadId::generate(),
            deployment_id: DeploymentId::generate(),
            deployment_name: "web".to_owned(),
            generation: 1,
            service_dir: PathBuf::from("/nonexistent"),
            spec,
            port: Some(3101),
        }
    }

    #[test]
    fn the_container_env_holds_env_secrets_and_the_container_port() {
        let body = create_body(&context(), "image".to_owned(), Ipv4Addr::LOCALHOST.into());
        let env = body.env.expect("env");
        assert!(env.contains(&"GREETING=hello".to_owned()), "{env:?}");
        assert!(env.contains(&"API_TOKEN=s3cret".to_owned()), "{env:?}");
        assert!(env.contains(&"PORT=8080".to_owned()), "{env:?}");
    }

    #[test]
    fn the_user_and_the_open_files_limit_reach_the_container() {
        let body = create_body(&context(), "image".to_owned(), Ipv4Addr::LOCALHOST.into());
        assert_eq!(body.user.as_deref(), Some("nobody"));
        let ulimits = body
            .host_config
            .and_then(|config| config.ulimits)
            .expect("ulimits");
        assert_eq!(ulimits[0].name.as_deref(), Some("nofile"));
        assert_eq!((ulimits[0].soft, ulimits[0].hard), (Some(4096), Some(4096)));
    }

    #[test]
    fn the_port_is_published_on_the_publish_address() {
        let body = create_body(&context(), "image".to_owned(), Ipv4Addr::LOCALHOST.into());
        let bindings = body
            .host_config
            .and_then(|config| config.port_bindings)
            .expect("bindings");
        let binding = bindings["8080/tcp"].as_ref().expect("binding")[0].clone();
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("3101"));
    }

    fn inspected(ip_address: &str, health: Option<Health>) -> ContainerInspectResponse {
        let body = create_body(&context(), "image".to_owned(), Ipv4Addr::UNSPECIFIED.into());
        let network = EndpointSettings {
            ip_address: Some(ip_address.to_owned()),
            ..EndpointSettings::default()
        };
        ContainerInspectResponse {
            host_config: body.host_config,
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([("bridge".to_owned(), network)])),
                ..NetworkSettings::default()
            }),
            state: Some(ContainerState {
                health,
                ..ContainerState::default()
            }),
            ..ContainerInspectResponse::default()
        }
    }

    #[test]
    fn a_container_is_probed_at_its_own_address_and_port() {
        assert_eq!(
            probe_address(&inspected("172.17.0.5", None)),
            Some("172.17.0.5:8080".parse().expect("address"))
        );
        assert_eq!(
            probe_address(&inspected("", None)),
            Some("127.0.0.1:3101".parse().expect("address")),
            "without a network address, the published port on loopback"
        );
        assert_eq!(probe_address(&ContainerInspectResponse::default()), None);
    }

    #[test]
    fn the_engine_health_status_becomes_own_health() {
        let with_status = |status, output: &str| Health {
            status: Some(status),
            failing_streak: Some(3),
            log: Some(vec![bollard::models::HealthcheckResult {
                exit_code: Some(1),
                output: Some(output.to_owned()),
                ..Default::default()
            }]),
        };
        assert_eq!(own_health(&inspected("", None)), OwnHealth::NoCheck);
        assert_eq!(
            own_health(&inspected(
                "",
                Some(with_status(HealthStatusEnum::STARTING, ""))
            )),
            OwnHealth::Starting
        );
        assert_eq!(
            own_health(&inspected(
                "",
                Some(with_status(HealthStatusEnum::HEALTHY, ""))
            )),
            OwnHealth::Healthy
        );
        assert_eq!(
            own_health(&inspected(
                "",
                Some(with_status(HealthStatusEnum::UNHEALTHY, "refused\n"))
            )),
            OwnHealth::Unhealthy("3 failures in a row, the last: exit code 1: refused".to_owned())
        );
    }
}
