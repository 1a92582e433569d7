//! Putting the server together: store, runtimes, orchestrator, and the gRPC
//! services with health and reflection.

use std::{future::Future, sync::Arc, time::Duration};

use slipway::v1::{
    FILE_DESCRIPTOR_SET, audit_service_server::AuditServiceServer,
    deployment_service_server::DeploymentServiceServer, fleet_service_server::FleetServiceServer,
    node_service_server::NodeServiceServer, token_service_server::TokenServiceServer,
    workload_service_server::WorkloadServiceServer,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    access::{self, TokenError},
    api::{AuditApi, DeploymentApi, FleetApi, NodeApi, Peers, TokenApi, WorkloadApi},
    config::ServeConfig,
    data_files,
    domain::{NodeId, NodeRegistration},
    fleet::{Control, Fleet, FleetSettings},
    logs::LogRetention,
    metrics::Metrics,
    node::controls::Safety,
    node::{self, NodeAgent},
    orchestrator::{Orchestrator, OrchestratorError, PortPool, Settings},
    runtime::{
        Runtime,
        docker::DockerRuntime,
        process::{Containment, ProcessRuntime, ProcessSettings},
    },
    serving::{Serving, serve_routes},
    store::{Store, StoreError},
};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
    /// A setting cannot be used on this server.
    #[error("{0}")]
    Config(String),
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("setting up access: {0}")]
    Access(#[from] TokenError),
    #[error("--auth off is only allowed on a loopback address, not {address}")]
    AuthOffNotLoopback { address: std::net::SocketAddr },
    /// The listeners or TLS could not be set up (plaintext off loopback
    /// without --insecure, a socket in use, an unreadable certificate).
    #[error(transparent)]
    Listen(#[from] crate::transport::TransportError),
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut interrupt, mut terminate) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
        _ => {
            tracing::error!("cannot listen for SIGINT/SIGTERM; stop with SIGKILL");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}

/// Serves on `listener` until `shutdown` resolves, then finishes start-up
/// reconcile, stops the running workloads and stores every accepted log line
/// before returning. Serving starts at once; start-up reconcile runs meanwhile.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let io = |context: String| move |source| ServerError::Io { context, source };
    // The data directory holds the SQLite database (when there is no
    // --database-url) and this node's id.
    data_files::prepare_data_dir(&config.data_dir).map_err(io(format!(
        "creating the data directory {}",
        config.data_dir.display()
    )))?;
    config.node.check().map_err(|message| ServerError::Io {
        context: "checking the node settings".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
    })?;
    let node_id = node::node_id(&config.data_dir).map_err(io(format!(
        "reading this node's id in {}",
        config.data_dir.display()
    )))?;
    let enforce_auth = config.auth != "off";
    if !enforce_auth
        && let Ok(address) = listener.local_addr()
        && !address.ip().is_loopback()
    {
        return Err(ServerError::AuthOffNotLoopback { address });
    }
    if let Ok(address) = listener.local_addr() {
        config.transport.check_plaintext(address)?;
    }
    // Unreadable certificates are found now, not at the first connection.
    config.transport.server_tls()?;
    config.transport.peer_tls()?;
    let socket = match config.transport.socket_path(&config.data_dir) {
        Some(path) => match config.transport.bind_socket(&path).await {
            Ok(socket_listener) => Some((path, socket_listener)),
            // The default path under a deep data directory can be longer than
            // a socket's path may be: serve on TCP alone then, and say so.
            Err(crate::transport::TransportError::Io { source, .. })
                if config.transport.socket.is_none()
                    && source.kind() == std::io::ErrorKind::InvalidInput =>
            {
                tracing::warn!(socket = %path.display(), error = %source, "not listening on the default socket; give a shorter --socket");
                None
            }
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let root = config.root.canonicalize().map_err(io(format!(
        "opening the root directory {}",
        config.root.display()
    )))?;
    let database_url = config.database_url();
    let restrict = || {
        data_files::restrict_sqlite_files(&database_url)
            .map_err(io("making the database files private".to_owned()))
    };
    restrict()?;
    let store = Store::connect(&database_url).await?;
    // SQLite adds its -wal and -shm files on connecting.
    restrict()?;
    if enforce_auth {
        let written =
            access::bootstrap(&store, &config.data_dir, config.admin_token_file.as_deref()).await?;
        if let Some(path) = written {
            tracing::info!(path = %path.display(), "no token existed: wrote a new admin token");
        }
    } else {
        tracing::warn!("authentication is off: every caller is the administrator");
    }
    let audit_trimming = spawn_audit_trimming(store.clone(), config.audit_retention_days);
    // Finding out whether cgroups can be used runs a shell once: off the runtime.
    let use_cgroups = config.process_cgroups != "off";
    let process_settings = ProcessSettings {
        env_allow: config
            .process_env_allow
            .iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect(),
        default_user: config.process_user.clone(),
        node_tag: Some(node_id.to_string()),
    };
    let process_runtime = tokio::task::spawn_blocking(move || {
        let containment = if use_cgroups {
            Containment::detect()
        } else {
            Containment::TagSweep {
                reason: "turned off (--process-cgroups off)".to_owned(),
            }
        };
        containment.log();
        ProcessRuntime::with_containment(containment).with_settings(process_settings)
    })
    .await
    .map_err(|error| ServerError::Io {
        context: "setting up the process runtime".to_owned(),
        source: std::io::Error::other(error),
    })?
    .map_err(|reason| ServerError::Config(format!("--process-user: {reason}")))?;
    let runtimes: Vec<Arc<dyn Runtime>> = vec![
        Arc::new(process_runtime),
        Arc::new(
            DockerRuntime::with_publish_address(config.publish_address)
                .with_node(Some(node_id.to_string())),
        ),
    ];
    let mut node_agent = NodeAgent::start(
        store.clone(),
        registration(&config, node_id, &listener, &runtimes),
        config.node.stop_after_disconnect,
    )
    .await?;
    let settings = Settings {
        root: root.clone(),
        shutdown_grace: Duration::from_secs(config.shutdown_grace_seconds),
        leave_on_shutdown: config.on_shutdown == "leave",
        log_retention: LogRetention {
            max_lines: config.log_retention_lines.max(1),
            max_bytes: config.log_retention_bytes.max(1),
        },
        log_max_line_bytes: config.log_max_line_bytes.max(1),
        event_retention: config.event_retention.max(1),
        health_retention: crate::orchestrator::HealthRetention {
            max_age: config.health_retention,
            per_workload: config.health_retention_checks.max(1),
        },
        node_id: node_agent.node().registration.id.clone(),
    };
    // Returns at once: what an earlier run left unfinished is reconciled in the
    // background while the server answers.
    let orchestrator = Orchestrator::start(
        store.clone(),
        runtimes,
        PortPool::new(config.port_range.clone()),
        settings,
    )
    .await?;

    let letting_go = node_agent
        .take_lost()
        .map(|lost| tokio::spawn(let_go_when_lost(orchestrator.clone(), lost)));

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DeploymentServiceServer<DeploymentApi>>()
        .await;
    health_reporter
        .set_serving::<WorkloadServiceServer<WorkloadApi>>()
        .await;
    health_reporter
        .set_serving::<NodeServiceServer<NodeApi>>()
        .await;
    health_reporter
        .set_serving::<FleetServiceServer<FleetApi>>()
        .await;
    health_reporter
        .set_serving::<TokenServiceServer<TokenApi>>()
        .await;
    health_reporter
        .set_serving::<AuditServiceServer<AuditApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let closing = CancellationToken::new();
    tracing::info!(
        address = ?listener.local_addr().ok(),
        tls = config.transport.tls_cert.is_some(),
        mutual_tls = config.transport.tls_client_ca.is_some(),
        socket = ?socket.as_ref().map(|(path, _)| path.display().to_string()),
        root = %root.display(),
        database = ?crate::config::redact_password(&config.database_url()),
        "slipway is serving"
    );
    let metrics = Metrics::new(&orchestrator.log_counters());
    let metrics_watch = tokio::spawn(crate::metrics::watch_events(
        metrics.clone(),
        orchestrator.clone(),
        node_agent.node().registration.id.clone(),
        closing.clone(),
    ));
    let max_message_bytes = config.limits.max_message_bytes;
    let this_node = node_agent.node().registration.clone();
    // Fleet operations act on workloads through the workload API, as a client
    // would; calls for another node's workloads go there with this node's
    // own token.
    let node_token = if enforce_auth && store.is_shared() {
        Some(access::node_token(&store, &config.data_dir, &this_node.id).await?)
    } else {
        None
    };
    let peers = Peers::new(config.transport.peer_tls()?, node_token.as_deref());
    let workload_api = Arc::new(
        WorkloadApi::new(orchestrator.clone(), closing.clone(), peers.clone())
            .with_metrics(metrics.clone()),
    );
    let safety = Safety {
        max_unavailable_percent: config.node.max_unavailable_nodes,
    };
    let fleet = Fleet::start(
        store.clone(),
        orchestrator.clone(),
        Control::new(workload_api.clone(), &this_node.name),
        this_node.id.clone(),
        FleetSettings {
            safety,
            min_available: config.node.min_available,
        },
    );
    let deployment_api = Arc::new(DeploymentApi::new(
        orchestrator.clone(),
        peers,
        fleet.clone(),
    ));
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            DeploymentServiceServer::from_arc(deployment_api.clone())
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            NodeServiceServer::new(NodeApi::new(store.clone(), this_node.id.clone(), safety))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            WorkloadServiceServer::from_arc(workload_api.clone())
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            FleetServiceServer::new(FleetApi::new(
                fleet,
                NodeApi::new(store.clone(), this_node.id.clone(), safety),
                closing.clone(),
            ))
            .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            TokenServiceServer::new(TokenApi::new(store.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            AuditServiceServer::new(AuditApi::new(store.clone()))
                .max_decoding_message_size(max_message_bytes),
        );
    // REST and SSE on the same port: the gRPC routes as an axum router, with
    // the REST routes added (gRPC answers every path REST does not serve).
    let rest = crate::rest::router(crate::rest::RestState {
        workloads: workload_api,
        deployments: deployment_api,
        orchestrator: orchestrator.clone(),
        metrics: metrics.clone(),
        node: node_agent.node().registration.id.clone(),
        closing: closing.clone(),
        keep_alive: Duration::from_secs(15),
    });
    let routes = tonic::service::Routes::from(routes.routes().into_axum_router().merge(rest));
    let serving = Serving {
        routes,
        store: store.clone(),
        metrics,
        enforce_auth,
        transport: &config.transport,
        limits: &config.limits,
        socket,
    };
    let served = serve_routes(serving, listener, closing, shutdown).await;
    metrics_watch.abort();
    audit_trimming.abort();
    if let Some(letting_go) = letting_go {
        letting_go.abort();
    }
    orchestrator.shutdown().await;
    node_agent.leave().await;
    store.close().await?;
    tracing::info!("stopped");
    served
}

/// When this node learns it was declared lost: it kills every workload it ran
/// (other nodes own them now, or will), writing nothing about them, and fails
/// them over itself, before it registers again and may be given work.
async fn let_go_when_lost(
    orchestrator: Orchestrator,
    mut lost: tokio::sync::mpsc::Receiver<node::Lost>,
) {
    while let Some(node::Lost { done }) = lost.recv().await {
        orchestrator.abandon_all().await;
        if let Err(error) = orchestrator.fail_over().await {
            tracing::warn!(%error, "failing over this node's workloads failed");
        }
        let _ = done.send(());
    }
}

/// What this node says about itself when it registers.
fn registration(
    config: &ServeConfig,
    id: NodeId,
    listener: &TcpListener,
    runtimes: &[Arc<dyn Runtime>],
) -> NodeRegistration {
    let listening = listener.local_addr().unwrap_or(config.listen);
    let address = config.node.advertise.clone().unwrap_or_else(|| {
        if listening.ip().is_unspecified() {
            format!("{}:{}", node::host_name(), listening.port())
        } else {
            listening.to_string()
        }
    });
    NodeRegistration {
        id,
        name: config
            .node
            .node_name
            .clone()
            .unwrap_or_else(node::host_name),
        address,
        labels: config.node.labels(),
        runtimes: runtimes
            .iter()
            .map(|runtime| runtime.kind().as_str().to_owned())
            .collect(),
        capacity: config.node.max_workloads,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        heartbeat_interval: config.node.heartbeat_interval,
        heartbeat_ttl: config.node.heartbeat_ttl,
    }
}

/// Deletes audit records older than `retention_days`, at start and hourly.
fn spawn_audit_trimming(store: Store, retention_days: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let retention =
            i64::try_from(retention_days.saturating_mul(86_400_000_000)).unwrap_or(i64::MAX);
        let mut ticks = tokio::time::interval(Duration::from_secs(3600));
        loop {
            ticks.tick().await;
            let before = crate::domain::now().0.saturating_sub(retention);
            match store.trim_audit(before).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "trimmed the audit trail"),
                Err(error) => tracing::warn!(%error, "could not trim the audit trail"),
            }
        }
    })
}
