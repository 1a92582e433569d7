//! `slipway.v1.NodeService`, and the node controls of `FleetService`
//! (pause, resume) that `FleetApi` hands here.

use slipway::v1::{
    GetNodeRequest, ListNodesRequest, ListNodesResponse, Node as WireNode,
    NodeScheduling as WireScheduling, NodeState as WireState, PauseNodeRequest, ResumeNodeRequest,
    node_service_server::NodeService,
};
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use crate::{
    access,
    domain::{FleetState, Node, NodeId, NodeState, Scheduling},
    node::controls::{self, ControlError, Safety},
    store::Store,
};

pub struct NodeApi {
    store: Store,
    this_node: NodeId,
    safety: Safety,
}

impl NodeApi {
    pub fn new(store: Store, this_node: NodeId, safety: Safety) -> Self {
        Self {
            store,
            this_node,
            safety,
        }
    }

    /// The nodes with the drain acting on each, for the wire.
    async fn wire_all(&self, nodes: Vec<Node>) -> Result<Vec<WireNode>, Status> {
        let drains = self.store.drains_under_way().await.map_err(store_error)?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let operation = drains.get(&node.registration.id).cloned();
                self.wire(node, operation)
            })
            .collect())
    }

    fn wire(&self, node: Node, operation: Option<String>) -> WireNode {
        let answering = node.registration.id == self.this_node;
        let registration = node.registration;
        WireNode {
            id: registration.id.to_string(),
            name: registration.name,
            address: registration.address,
            labels: registration.labels.into_iter().collect(),
            runtimes: registration.runtimes,
            capacity: registration.capacity,
            version: registration.version,
            state: match node.state {
                NodeState::Active => WireState::Active,
                NodeState::Down => WireState::Down,
                NodeState::Left => WireState::Left,
            } as i32,
            registered_at: Some(timestamp(node.registered_at)),
            last_heartbeat: Some(timestamp(node.heartbeat_at)),
            heartbeat_interval_ms: millis(registration.heartbeat_interval),
            heartbeat_ttl_ms: millis(registration.heartbeat_ttl),
            active_workloads: node.active_workloads,
            incarnation: node.incarnation,
            answering,
            reason: node.reason,
            scheduling: match node.scheduling {
                Scheduling::Eligible => WireScheduling::Eligible,
                Scheduling::Paused => WireScheduling::Paused,
                Scheduling::Draining => WireScheduling::Draining,
                Scheduling::Drained => WireScheduling::Drained,
            } as i32,
            operation_id: operation.unwrap_or_default(),
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn store_error(error: crate::store::StoreError) -> Status {
    tracing::error!(%error, "reading nodes");
    Status::internal("internal error while reading nodes")
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let nodes = self
            .store
            .nodes(request.into_inner().include_left)
            .await
            .map_err(store_error)?;
        Ok(Response::new(ListNodesResponse {
            nodes: self.wire_all(nodes).await?,
        }))
    }

    async fn get_node(
        &self,
        request: Request<GetNodeRequest>,
    ) -> Result<Response<WireNode>, Status> {
        let wanted = request.into_inner().node;
        if wanted.trim().is_empty() {
            return Err(super::status::invalid_argument(&[
                crate::domain::FieldViolation::new("node", "is required: a node id or name"),
            ]));
        }
        match self.store.node(&wanted).await.map_err(store_error)? {
            Some(node) => Ok(Response::new(self.wire_one(node).await?)),
            None => Err(Status::not_found(format!("node {wanted} not found"))),
        }
    }
}

impl NodeApi {
    /// `FleetService.PauseNode`.
    pub(super) async fn pause_node(
        &self,
        request: Request<PauseNodeRequest>,
    ) -> Result<Response<WireNode>, Status> {
        let wire = request.get_ref();
        access::note(
            &request,
            &wire.node,
            serde_json::json!({ "node": wire.node, "force": wire.force }),
        );
        let PauseNodeRequest {
            node,
            force,
            confirm,
        } = request.into_inner();
        required(&node)?;
        let paused = controls::pause(&self.store, &node, self.safety, force, &confirm)
            .await
            .map_err(control_status)?;
        Ok(Response::new(self.wire_one(paused).await?))
    }

    /// `FleetService.ResumeNode`.
    pub(super) async fn resume_node(
        &self,
        request: Request<ResumeNodeRequest>,
    ) -> Result<Response<WireNode>, Status> {
        let wire = request.get_ref();
        access::note(
            &request,
            &wire.node,
            serde_json::json!({ "node": wire.node }),
        );
        let node = request.into_inner().node;
        required(&node)?;
        let resumed = controls::resume(&self.store, &node)
            .await
            .map_err(control_status)?;
        // Resuming a node cancels the drain under way on it.
        let drains = self.store.drains_under_way().await.map_err(store_error)?;
        if let Some(operation) = drains.get(&resumed.registration.id) {
            self.store
                .set_operation_state(
                    operation,
                    &[FleetState::Running, FleetState::Paused],
                    FleetState::Cancelled,
                )
                .await
                .map_err(store_error)?;
            tracing::info!(%operation, "resuming the node cancelled its drain");
        }
        Ok(Response::new(self.wire_one(resumed).await?))
    }

    async fn wire_one(&self, node: Node) -> Result<WireNode, Status> {
        let mut wired = self.wire_all(vec![node]).await?;
        wired
            .pop()
            .ok_or_else(|| Status::internal("internal error while reading nodes"))
    }
}

fn required(node: &str) -> Result<(), Status> {
    if node.trim().is_empty() {
        return Err(super::status::invalid_argument(&[
            crate::domain::FieldViolation::new("node", "is required: a node id or name"),
        ]));
    }
    Ok(())
}

fn control_status(error: ControlError) -> Status {
    match error {
        ControlError::NotFound(_) => Status::not_found(error.to_string()),
        ControlError::Refused(message) => unsafe_refusal(message),
        ControlError::Store(error) => store_error(error),
    }
}

/// FAILED_PRECONDITION with ErrorInfo reason UNSAFE: refused without force
/// and a typed confirmation; the message says why and how to override.
pub(super) fn unsafe_refusal(message: String) -> Status {
    let mut details = tonic_types::ErrorDetails::new();
    details.set_error_info(
        "UNSAFE",
        super::ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    <Status as tonic_types::StatusExt>::with_error_details(
        tonic::Code::FailedPrecondition,
        message,
        details,
    )
}
