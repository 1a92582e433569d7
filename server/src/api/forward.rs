//! Calls for a workload another node owns, sent on to that node. The caller's
//! own credentials go with the call, so the owner checks and audits it as it
//! would a call made to it directly; the caller sees the owner's progress
//! stream and errors unchanged.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use slipway::v1::workload_service_client::WorkloadServiceClient;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::{Channel, ClientTlsConfig, Endpoint},
};

use crate::domain::Node;

/// Set on a forwarded call: the node it reaches never forwards it again.
const FORWARDED: &str = "x-slipway-forwarded";
/// Set on a forwarded call that starts a run: why placement chose that node.
const PLACEMENT: &str = "x-slipway-placement";

/// What a call brings that a forwarded copy of it needs.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    authorization: Option<AsciiMetadataValue>,
    /// The call was forwarded here by another node.
    pub forwarded: bool,
    /// Why placement chose this node, when another node placed the run here.
    pub placement: Option<String>,
}

impl Forwarding {
    pub fn of(metadata: &MetadataMap) -> Forwarding {
        let forwarded = metadata.contains_key(FORWARDED);
        Forwarding {
            authorization: metadata.get("authorization").cloned(),
            forwarded,
            placement: metadata
                .get(PLACEMENT)
                .filter(|_| forwarded)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// `message` as a call to another node, with the caller's credentials.
    pub fn request<T>(&self, message: T, placement: Option<&str>) -> Request<T> {
        let mut request = Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(authorization) = &self.authorization {
            metadata.insert("authorization", authorization.clone());
        }
        metadata.insert(FORWARDED, AsciiMetadataValue::from_static("1"));
        if let Some(value) = placement
            .map(|why| why.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), "?"))
            .and_then(|why| AsciiMetadataValue::try_from(why).ok())
        {
            metadata.insert(PLACEMENT, value);
        }
        request
    }
}

/// Connections to the other nodes, one per address, made when first needed:
/// over TLS (`--peer-tls-ca`) or plaintext.
#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    tls: Option<ClientTlsConfig>,
    /// `Bearer <this node's token>`: the credentials of a forwarded call whose
    /// caller brought none (a local administrator on the Unix socket).
    node_authorization: Option<AsciiMetadataValue>,
}

impl Peers {
    pub fn new(tls: Option<ClientTlsConfig>, node_token: Option<&str>) -> Peers {
        Peers {
            channels: Arc::default(),
            tls,
            node_authorization: node_token
                .and_then(|token| AsciiMetadataValue::try_from(format!("Bearer {token}")).ok()),
        }
    }

    /// `message` as a call to another node: with the caller's credentials, or
    /// this node's own when the caller (on the local socket) brought none.
    pub fn request<T>(
        &self,
        forwarding: &Forwarding,
        message: T,
        placement: Option<&str>,
    ) -> Request<T> {
        let mut request = forwarding.request(message, placement);
        if forwarding.authorization.is_none()
            && let Some(authorization) = &self.node_authorization
        {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        request
    }

    /// A client of `node`'s workload service.
    pub fn workloads(&self, node: &Node) -> Result<WorkloadServiceClient<Channel>, Status> {
        let address = &node.registration.address;
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(WorkloadServiceClient::new(channel.clone()));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let not_an_address = |error: tonic::transport::Error| {
            Status::unavailable(format!(
                "node {} advertises an address that is not one ({address}): {error}",
                node.registration.name
            ))
        };
        let mut endpoint =
            Endpoint::from_shared(format!("{scheme}://{address}")).map_err(not_an_address)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(not_an_address)?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(address.clone(), channel.clone());
        Ok(WorkloadServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// The status a caller gets when a forwarded call could not reach the owner.
pub fn unreachable(node: &Node, status: Status) -> Status {
    if status.code() == tonic::Code::Unavailable && status.message().contains("transport") {
        return Status::unavailable(format!(
            "the workload is run by node {} at {}, which cannot be reached: {}",
            node.registration.name,
            node.registration.address,
            status.message()
        ));
    }
    status
}
