//! `slipway.v1.FleetService`: drains and rolling restarts (see `crate::fleet`).

use std::{pin::Pin, time::Duration};

use futures::Stream;
use slipway::v1::{
    DrainNodeRequest, FailurePolicy as WireFailurePolicy, FleetOperation as WireOperation,
    GetOperationRequest, ItemState as WireItemState, ListOperationsRequest, ListOperationsResponse,
    Node as WireNode, OperationItem, OperationKind, OperationState, PauseNodeRequest,
    ResumeNodeRequest, RollingRestartRequest, fleet_service_server::FleetService,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{NodeApi, convert::timestamp, status::invalid_argument};
use crate::{
    access,
    domain::{FailurePolicy, FleetKind, FleetOperation, FleetState, ItemState},
    fleet::{DrainRequest, Fleet, FleetError, RestartSet, RollingRequest},
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How often a watch looks at the operation's row.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

pub struct FleetApi {
    fleet: Fleet,
    /// Pause and resume, answered with the node as `NodeService` shows it.
    nodes: NodeApi,
    closing: CancellationToken,
}

impl FleetApi {
    pub fn new(fleet: Fleet, nodes: NodeApi, closing: CancellationToken) -> Self {
        Self {
            fleet,
            nodes,
            closing,
        }
    }
}

pub fn wire_state(state: FleetState) -> OperationState {
    match state {
        FleetState::Running => OperationState::Running,
        FleetState::Paused => OperationState::Paused,
        FleetState::Succeeded => OperationState::Succeeded,
        FleetState::Failed => OperationState::Failed,
        FleetState::Cancelled => OperationState::Cancelled,
    }
}

pub fn wire(operation: FleetOperation) -> WireOperation {
    let eta = operation.eta();
    let finished_items = operation.finished_items();
    let parameters = serde_json::to_string(&operation.params).unwrap_or_default();
    WireOperation {
        id: operation.id,
        kind: match operation.params.kind() {
            FleetKind::Drain => OperationKind::Drain,
            FleetKind::RollingRestart => OperationKind::RollingRestart,
            FleetKind::Rollout => OperationKind::Rollout,
        } as i32,
        target: operation.target,
        state: wire_state(operation.state) as i32,
        message: operation.message,
        total_items: u32::try_from(operation.items.len()).unwrap_or(u32::MAX),
        finished_items: u32::try_from(finished_items).unwrap_or(u32::MAX),
        items: operation
            .items
            .into_iter()
            .map(|item| OperationItem {
                workload_id: item.workload_id.to_string(),
                deployment_id: item.deployment_id.to_string(),
                deployment_name: item.deployment_name,
                state: match item.state {
                    ItemState::Waiting => WireItemState::Waiting,
                    ItemState::Active => WireItemState::Active,
                    ItemState::Done => WireItemState::Done,
                    ItemState::Failed => WireItemState::Failed,
                    ItemState::Skipped => WireItemState::Skipped,
                } as i32,
                replacement_id: item
                    .replacement_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                message: item.message,
                started_at: item.started_at.map(timestamp),
                finished_at: item.finished_at.map(timestamp),
            })
            .collect(),
        parallel: operation.parallel,
        node_id: operation
            .node_id
            .map(|node| node.to_string())
            .unwrap_or_default(),
        actor: operation.actor,
        created_at: Some(timestamp(operation.created_at)),
        updated_at: Some(timestamp(operation.updated_at)),
        finished_at: operation.finished_at.map(timestamp),
        deadline: Some(timestamp(operation.deadline)),
        eta_ms: u64::try_from(eta.as_millis()).unwrap_or(u64::MAX),
        parameters,
    }
}

pub(super) fn to_status(error: FleetError) -> Status {
    match error {
        FleetError::NotFound(message) => Status::not_found(message),
        FleetError::Invalid(violations) => invalid_argument(&violations),
        FleetError::Conflict(message) => Status::failed_precondition(message),
        FleetError::Refused(message) => super::nodes::unsafe_refusal(message),
        FleetError::Store(error) => {
            tracing::error!(%error, "fleet operation");
            Status::internal("internal error in a fleet operation")
        }
    }
}

fn seconds(value: u32) -> Option<Duration> {
    (value > 0).then(|| Duration::from_secs(u64::from(value)))
}

fn operation_id(id: &str) -> Result<&str, Status> {
    if id.trim().is_empty() {
        return Err(invalid_argument(&[crate::domain::FieldViolation::new(
            "id",
            "is required: an operation id (op-…)",
        )]));
    }
    Ok(id)
}

#[tonic::async_trait]
impl FleetService for FleetApi {
    type WatchOperationStream = BoxStream<WireOperation>;

    async fn pause_node(
        &self,
        request: Request<PauseNodeRequest>,
    ) -> Result<Response<WireNode>, Status> {
        self.nodes.pause_node(request).await
    }

    async fn resume_node(
        &self,
        request: Request<ResumeNodeRequest>,
    ) -> Result<Response<WireNode>, Status> {
        self.nodes.resume_node(request).await
    }

    async fn drain_node(
        &self,
        request: Request<DrainNodeRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        let caller = access::caller(&request)?;
        let wire_request = request.get_ref();
        access::note(
            &request,
            &wire_request.node,
            serde_json::json!({
                "node": wire_request.node,
                "deadline_seconds": wire_request.deadline_seconds,
                "parallel": wire_request.parallel,
                "min_healthy_seconds": wire_request.min_healthy_seconds,
                "healthy_deadline_seconds": wire_request.healthy_deadline_seconds,
                "force": wire_request.force,
            }),
        );
        let message = request.into_inner();
        let operation = self
            .fleet
            .drain(
                &caller.name,
                DrainRequest {
                    node: message.node,
                    deadline: seconds(message.deadline_seconds),
                    parallel: message.parallel,
                    min_healthy: message
                        .min_healthy_seconds
                        .map(|value| Duration::from_secs(u64::from(value))),
                    healthy_deadline: seconds(message.healthy_deadline_seconds),
                    force: message.force,
                    confirm: message.confirm,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire(operation)))
    }

    async fn rolling_restart(
        &self,
        request: Request<RollingRestartRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        let caller = access::caller(&request)?;
        let message = request.get_ref().clone();
        let given = [
            !message.deployment.is_empty(),
            !message.selector.is_empty(),
            !message.nodes.is_empty(),
        ];
        let target = if !message.deployment.is_empty() {
            message.deployment.clone()
        } else if !message.selector.is_empty() {
            let mut pairs: Vec<String> = message
                .selector
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            pairs.sort();
            pairs.join(",")
        } else {
            message.nodes.join(",")
        };
        access::note(
            &request,
            &target,
            serde_json::json!({
                "deployment": message.deployment,
                "selector": message.selector,
                "nodes": message.nodes,
                "max_unavailable": message.max_unavailable,
                "min_healthy_seconds": message.min_healthy_seconds,
                "healthy_deadline_seconds": message.healthy_deadline_seconds,
                "deadline_seconds": message.deadline_seconds,
                "on_failure": message.on_failure,
                "min_available": message.min_available,
                "force": message.force,
            }),
        );
        if given.iter().filter(|given| **given).count() != 1 {
            return Err(invalid_argument(&[crate::domain::FieldViolation::new(
                "deployment",
                "give exactly one of deployment, selector and nodes",
            )]));
        }
        let set = if !message.deployment.is_empty() {
            RestartSet::Deployment(message.deployment)
        } else if !message.selector.is_empty() {
            RestartSet::Selector(message.selector.into_iter().collect())
        } else {
            RestartSet::Nodes(message.nodes)
        };
        let on_failure = match WireFailurePolicy::try_from(message.on_failure) {
            Ok(WireFailurePolicy::Abort) => FailurePolicy::Abort,
            Ok(_) => FailurePolicy::Pause,
            Err(_) => {
                return Err(invalid_argument(&[crate::domain::FieldViolation::new(
                    "on_failure",
                    format!("{} is not a failure policy", message.on_failure),
                )]));
            }
        };
        let operation = self
            .fleet
            .rolling_restart(
                &caller.name,
                RollingRequest {
                    set,
                    max_unavailable: message.max_unavailable,
                    min_healthy: message
                        .min_healthy_seconds
                        .map(|value| Duration::from_secs(u64::from(value))),
                    healthy_deadline: seconds(message.healthy_deadline_seconds),
                    deadline: seconds(message.deadline_seconds),
                    on_failure,
                    min_available: message.min_available,
                    force: message.force,
                    confirm: message.confirm,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire(operation)))
    }

    async fn get_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        let id = operation_id(&request.get_ref().id)?;
        let operation = self.fleet.get(id).await.map_err(to_status)?;
        Ok(Response::new(wire(operation)))
    }

    async fn list_operations(
        &self,
        request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, Status> {
        let message = request.into_inner();
        let mut states = Vec::new();
        for state in message.states {
            states.push(match OperationState::try_from(state) {
                Ok(OperationState::Running) => FleetState::Running,
                Ok(OperationState::Paused) => FleetState::Paused,
                Ok(OperationState::Succeeded) => FleetState::Succeeded,
                Ok(OperationState::Failed) => FleetState::Failed,
                Ok(OperationState::Cancelled) => FleetState::Cancelled,
                _ => {
                    return Err(invalid_argument(&[crate::domain::FieldViolation::new(
                        "states",
                        format!("{state} is not an operation state"),
                    )]));
                }
            });
        }
        let limit = match message.limit {
            0 => 100,
            limit => u64::from(limit).min(1000),
        };
        let operations = self.fleet.list(&states, limit).await.map_err(to_status)?;
        Ok(Response::new(ListOperationsResponse {
            operations: operations.into_iter().map(wire).collect(),
        }))
    }

    async fn watch_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<Self::WatchOperationStream>, Status> {
        let id = operation_id(&request.get_ref().id)?.to_owned();
        let first = self.fleet.get(&id).await.map_err(to_status)?;
        let fleet = self.fleet.clone();
        let closing = self.closing.clone();
        // The first item is the operation as it is; then each change, until
        // it ends (or the server shuts down).
        let state = (Some(first), None::<FleetOperation>);
        let stream = futures::stream::unfold(state, move |(pending, last)| {
            let fleet = fleet.clone();
            let id = id.clone();
            let closing = closing.clone();
            async move {
                if let Some(first) = pending {
                    return Some((Ok(wire(first.clone())), (None, Some(first))));
                }
                let mut last = last?;
                loop {
                    if last.state.is_over() {
                        return None;
                    }
                    tokio::select! {
                        _ = closing.cancelled() => return None,
                        _ = tokio::time::sleep(WATCH_INTERVAL) => {}
                    }
                    match fleet.get(&id).await {
                        Ok(now) if now != last => {
                            last = now.clone();
                            return Some((Ok(wire(now)), (None, Some(last))));
                        }
                        Ok(_) => {}
                        Err(error) => return Some((Err(to_status(error)), (None, None))),
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn pause_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        self.set_state(request, FleetState::Paused).await
    }

    async fn resume_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        self.set_state(request, FleetState::Running).await
    }

    async fn cancel_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<WireOperation>, Status> {
        self.set_state(request, FleetState::Cancelled).await
    }
}

impl FleetApi {
    async fn set_state(
        &self,
        request: Request<GetOperationRequest>,
        to: FleetState,
    ) -> Result<Response<WireOperation>, Status> {
        let id = request.get_ref().id.clone();
        access::note(&request, &id, serde_json::json!({ "id": id }));
        let id = operation_id(&id)?;
        let operation = self.fleet.set_state(id, to).await.map_err(to_status)?;
        Ok(Response::new(wire(operation)))
    }
}
