//! Limits on every RPC, as tower layers in front of the services: a global
//! cap on calls in flight (shedding the excess), a request rate per client, a
//! cap on open streams per client, and a deadline on unary calls. (The largest
//! message a service decodes is a codec setting, applied where the services
//! are built.)
//!
//! A *client* is the token the caller authenticated with; without one, the
//! peer's IP address, or the Unix socket. Refusals are `RESOURCE_EXHAUSTED`
//! (a deadline: `DEADLINE_EXCEEDED`) with a message naming the flag.

mod bucket;
mod layer;

pub use bucket::RateLimiter;
pub use layer::{ClientLimitsLayer, ConcurrencyLayer};

use std::{collections::HashSet, net::IpAddr, sync::Arc, time::Duration};

use http::Request;
use prost::Message;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};

use crate::access::Caller;

/// Limit settings of `slipway serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitsConfig {
    /// A unary call taking longer than this is ended with DEADLINE_EXCEEDED
    /// (streams are not limited by it).
    #[arg(long, env = "SLIPWAY_REQUEST_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Calls handled at once, over all clients; more are refused at once with
    /// RESOURCE_EXHAUSTED (load shedding) rather than queued.
    #[arg(long, env = "SLIPWAY_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// The largest request message the server decodes, in bytes.
    #[arg(long, env = "SLIPWAY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Streams (logs, events, start/stop/restart progress) one client may have
    /// open at once.
    #[arg(long, env = "SLIPWAY_MAX_STREAMS_PER_CLIENT", default_value_t = 64)]
    pub max_streams_per_client: usize,

    /// Calls per second one client may make on average (a token bucket).
    #[arg(long, env = "SLIPWAY_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,

    /// Calls one client may make in a burst above --rate-limit (the bucket's size).
    #[arg(long, env = "SLIPWAY_RATE_BURST", default_value_t = 2000)]
    pub rate_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: 512,
            max_message_bytes: 4 * 1024 * 1024,
            max_streams_per_client: 64,
            rate_limit: 1000,
            rate_burst: 2000,
        }
    }
}

/// Who a call counts against: see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An authenticated token, by id.
    Token(String),
    /// An unauthenticated caller (or one with authentication off), by address.
    Address(IpAddr),
    /// The Unix socket.
    Socket,
    /// A connection of a kind without a peer address.
    Unknown,
}

impl ClientKey {
    /// The client of `request`, after the access layer has named its caller.
    pub fn of<B>(request: &Request<B>) -> ClientKey {
        let extensions = request.extensions();
        if let Some(caller) = extensions.get::<Caller>()
            && caller.id != Caller::local().id
        {
            return ClientKey::Token(caller.id.clone());
        }
        if extensions.get::<UdsConnectInfo>().is_some() {
            return ClientKey::Socket;
        }
        match peer_address(request) {
            Some(address) => ClientKey::Address(address.ip()),
            None => ClientKey::Unknown,
        }
    }
}

/// The TCP peer of a request, with or without TLS.
pub fn peer_address<B>(request: &Request<B>) -> Option<std::net::SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

/// The methods that stream (in either direction), by gRPC path, read from
/// the services' descriptor sets: streams are not given the unary deadline,
/// and count against the per-client stream cap.
#[derive(Debug, Clone, Default)]
pub struct StreamingMethods(Arc<HashSet<String>>);

impl StreamingMethods {
    /// The streaming methods of every service in `descriptor_sets` (encoded
    /// `FileDescriptorSet`s); a set that does not decode is skipped, logged.
    pub fn from_descriptor_sets(descriptor_sets: &[&[u8]]) -> StreamingMethods {
        let mut paths = HashSet::new();
        for encoded in descriptor_sets {
            let set = match prost_types::FileDescriptorSet::decode(*encoded) {
                Ok(set) => set,
                Err(error) => {
                    tracing::error!(%error, "a descriptor set does not decode");
                    continue;
                }
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        if method.client_streaming() || method.server_streaming() {
                            let full = if package.is_empty() {
                                service_name.clone()
                            } else {
                                format!("{package}.{service_name}")
                            };
                            paths.insert(format!("/{full}/{}", method.name.unwrap_or_default()));
                        }
                    }
                }
            }
        }
        StreamingMethods(Arc::new(paths))
    }

    /// Whether the method at `path` streams.
    pub fn contains(&self, path: &str) -> bool {
        self.0.contains(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_methods_come_from_the_descriptors() {
        let streaming = StreamingMethods::from_descriptor_sets(&[
            slipway::v1::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]);
        for path in [
            "/slipway.v1.WorkloadService/StreamLogs",
            "/slipway.v1.WorkloadService/WatchEvents",
            "/slipway.v1.WorkloadService/StartWorkload",
            "/slipway.v1.WorkloadService/StopWorkload",
            "/slipway.v1.WorkloadService/RestartWorkload",
            "/grpc.health.v1.Health/Watch",
        ] {
            assert!(streaming.contains(path), "{path}");
        }
        for path in [
            "/slipway.v1.WorkloadService/GetWorkload",
            "/slipway.v1.DeploymentService/ListDeployments",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(!streaming.contains(path), "{path}");
        }
    }
}
