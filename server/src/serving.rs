//! Serving the gRPC routes (and the REST routes merged into them) on TCP
//! (with TLS when configured) and on the Unix socket, behind the same layers:
//! metrics, load shedding, access, per-client limits. HTTP/1.1 is accepted
//! besides HTTP/2, for REST and SSE clients.

use std::{future::Future, path::PathBuf};

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    access::AccessLayer,
    limits::{ClientLimitsLayer, ConcurrencyLayer, LimitsConfig, StreamingMethods},
    metrics::{Metrics, RpcMetricsLayer},
    server::ServerError,
    store::Store,
    transport::TransportConfig,
};

/// What [`serve_routes`] serves and how.
pub(crate) struct Serving<'a> {
    pub routes: Routes,
    pub store: Store,
    pub metrics: Metrics,
    pub enforce_auth: bool,
    pub transport: &'a TransportConfig,
    pub limits: &'a LimitsConfig,
    /// The Unix socket, bound, and its path (removed when serving ends).
    pub socket: Option<(PathBuf, UnixListener)>,
}

/// Serves `serving.routes` on `listener` and the socket until `shutdown`
/// resolves (or one of them fails); `closing` is cancelled then, which ends
/// the open streams so that the graceful shutdown can finish.
pub(crate) async fn serve_routes(
    serving: Serving<'_>,
    listener: TcpListener,
    closing: CancellationToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Serving {
        routes,
        store,
        metrics,
        enforce_auth,
        transport,
        limits,
        socket,
    } = serving;
    let streaming = StreamingMethods::from_descriptor_sets(&[
        slipway::v1::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]);
    let concurrency = ConcurrencyLayer::new(limits.max_concurrent_requests);
    let access = AccessLayer::new(store, enforce_auth);
    let client_limits = ClientLimitsLayer::new(limits, streaming);
    let rpc_metrics = RpcMetricsLayer::new(metrics);
    // The layers are shared by both listeners: one concurrency budget, one
    // bucket per client whichever way it comes in.
    let builder = || {
        tonic::transport::Server::builder()
            .initial_connection_window_size(Some(8 * 1024 * 1024))
            .initial_stream_window_size(Some(2 * 1024 * 1024))
            .accept_http1(true)
            .layer(rpc_metrics.clone())
            .layer(concurrency.clone())
            .layer(access.clone())
            .layer(client_limits.clone())
    };
    let tcp_builder = match transport.server_tls()? {
        Some(tls) => builder().tls_config(tls)?,
        None => builder(),
    };
    let signal = {
        let closing = closing.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            closing.cancel();
        })
    };
    let tcp = {
        let closing = closing.clone();
        let routes = routes.clone().prepare();
        async move {
            let served = tcp_builder
                .serve_with_incoming_shutdown(
                    routes,
                    without_delay(listener),
                    closing.clone().cancelled_owned(),
                )
                .await;
            closing.cancel();
            served
        }
    };
    let (socket_path, unix) = match socket {
        Some((path, socket_listener)) => (Some(path), Some(socket_listener)),
        None => (None, None),
    };
    let uds = {
        let closing = closing.clone();
        async move {
            let Some(socket_listener) = unix else {
                return Ok(());
            };
            let served = builder()
                .serve_with_incoming_shutdown(
                    routes.prepare(),
                    UnixListenerStream::new(socket_listener),
                    closing.clone().cancelled_owned(),
                )
                .await;
            closing.cancel();
            served
        }
    };
    let (tcp_served, uds_served) = tokio::join!(tcp, uds);
    signal.abort();
    if let Some(path) = socket_path
        && let Err(error) = std::fs::remove_file(&path)
    {
        tracing::warn!(%error, socket = %path.display(), "could not remove the socket");
    }
    tcp_served?;
    uds_served?;
    Ok(())
}

/// The accepted connections, with Nagle's algorithm off: small frames (a
/// control call's answer, a progress message) leave at once instead of waiting
/// for the client's delayed ACK, which cost about 40 ms per call.
fn without_delay(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not turn off Nagle's algorithm on a connection");
        }
        Ok(stream)
    })
}
