//! Putting the server together: store, runtimes, orchestrator, and the gRPC
//! services with health and reflection.

use std::{future::Future, sync::Arc, time::Duration};

use slipway::v1::{
    FILE_DESCRIPTOR_SET, deployment_service_server::DeploymentServiceServer,
    workload_service_server::WorkloadServiceServer,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{DeploymentApi, WorkloadApi},
    config::ServeConfig,
    logs::LogRetention,
    orchestrator::{Orchestrator, OrchestratorError, PortPool, Settings},
    runtime::{Runtime, docker::DockerRuntime, process::ProcessRuntime},
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
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
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

/// Serves on `listener` until `shutdown` resolves, then stops the running
/// workloads and stores every accepted log line before returning.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let io = |context: String| move |source| ServerError::Io { context, source };
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(io(format!(
            "creating the data directory {}",
            config.data_dir.display()
        )))?;
    }
    let root = config.root.canonicalize().map_err(io(format!(
        "opening the root directory {}",
        config.root.display()
    )))?;
    let store = Store::connect(&config.database_url()).await?;
    let runtimes: Vec<Arc<dyn Runtime>> = vec![
        Arc::new(ProcessRuntime::new()),
        Arc::new(DockerRuntime::with_publish_address(config.publish_address)),
    ];
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
    };
    let orchestrator = Orchestrator::start(
        store.clone(),
        runtimes,
        PortPool::new(config.port_range.clone()),
        settings,
    )
    .await?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DeploymentServiceServer<DeploymentApi>>()
        .await;
    health_reporter
        .set_serving::<WorkloadServiceServer<WorkloadApi>>()
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
    let streams_closing = closing.clone();
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, root = %root.display(), database = ?crate::config::redact_password(&config.database_url()), "slipway is serving");
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down");
        streams_closing.cancel();
    };
    let served = tonic::transport::Server::builder()
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .initial_stream_window_size(Some(2 * 1024 * 1024))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(DeploymentServiceServer::new(DeploymentApi::new(
            orchestrator.clone(),
        )))
        .add_service(WorkloadServiceServer::new(WorkloadApi::new(
            orchestrator.clone(),
            closing.clone(),
        )))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
        .await;
    orchestrator.shutdown().await;
    store.close().await?;
    tracing::info!("stopped");
    Ok(served?)
}
