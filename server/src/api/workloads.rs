//! `slipway.v1.WorkloadService`.

use std::{pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use slipway::v1::{
    CreateWorkloadRequest, DeleteWorkloadRequest, DeleteWorkloadResponse, Event, GetLogsRequest,
    GetLogsResponse, GetWorkloadRequest, ListWorkloadsRequest, ListWorkloadsResponse, LogEntry,
    RestartWorkloadRequest, StartWorkloadRequest, StopWorkloadRequest, StreamLogsRequest,
    WatchEventsRequest, Workload, WorkloadProgress, workload_progress::Update,
    workload_service_server::WorkloadService,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{
    convert,
    forward::{self, Forwarding, Peers},
    scope::{self, ProjectFilter},
    status::{invalid_argument, operation_failed, to_status},
};
use crate::{
    access::{self, Caller},
    domain::{FieldViolation, Node, Operation},
    orchestrator::{LogQuery, Orchestrator, OrchestratorError, Progress, WatchItem},
    store::{EventFilter, WorkloadFilter},
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Lines per GetLogs page: the default and the most.
const DEFAULT_LOG_PAGE: u64 = 1000;
const MAX_LOG_PAGE: u64 = 10_000;

pub struct WorkloadApi {
    orchestrator: Orchestrator,
    /// The other nodes, for calls on the workloads they own.
    peers: Peers,
    /// Cancelled when the server shuts down: long streams end then.
    closing: CancellationToken,
    /// Where the outcomes of operations are counted.
    metrics: Option<crate::metrics::Metrics>,
}

/// Ends `stream` when `closing` is cancelled, so a shutdown is not held up by
/// followers and watchers.
fn until_closing<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    closing: &CancellationToken,
) -> BoxStream<T> {
    Box::pin(stream.take_until(closing.clone().cancelled_owned()))
}

impl WorkloadApi {
    pub fn new(orchestrator: Orchestrator, closing: CancellationToken, peers: Peers) -> Self {
        Self {
            orchestrator,
            peers,
            closing,
            metrics: None,
        }
    }

    /// Counts the outcomes of start, stop and restart into `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs an operation; its refusal is counted.
    #[allow(clippy::too_many_arguments)]
    async fn operation(
        &self,
        caller: &Caller,
        forwarding: &Forwarding,
        workload_id: &str,
        deployment_id: &str,
        operation: Operation,
        grace: Option<Duration>,
    ) -> Result<Response<BoxStream<WorkloadProgress>>, Status> {
        let result = self
            .operation_counted(
                caller,
                forwarding,
                workload_id,
                deployment_id,
                operation,
                grace,
            )
            .await;
        if let (Err(status), Some(metrics)) = (&result, &self.metrics) {
            metrics.operation_refused(operation, access::code_name(status.code()));
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn operation_counted(
        &self,
        caller: &Caller,
        forwarding: &Forwarding,
        workload_id: &str,
        deployment_id: &str,
        operation: Operation,
        grace: Option<Duration>,
    ) -> Result<Response<BoxStream<WorkloadProgress>>, Status> {
        let bad = |violations: Vec<FieldViolation>| invalid_argument(&violations);
        let id = convert::workload_id("workload_id", workload_id).map_err(bad)?;
        let deployment =
            convert::optional_deployment_id("deployment_id", deployment_id).map_err(bad)?;
        scope::check_workload(caller, &self.orchestrator, &id).await?;
        let operated = self
            .orchestrator
            .operate_placed(
                &id,
                deployment.as_ref(),
                operation,
                grace,
                forwarding.placement.clone(),
            )
            .await;
        let progress = match operated {
            Err(OrchestratorError::Elsewhere {
                node, placement, ..
            }) if !forwarding.forwarded => {
                return self
                    .forward_operation(
                        forwarding,
                        &node,
                        placement.as_deref(),
                        workload_id,
                        deployment_id,
                        operation,
                        grace,
                    )
                    .await;
            }
            other => other.map_err(to_status)?,
        };
        let metrics = self.metrics.clone();
        let messages = progress.into_stream().filter_map(move |item| {
            if let (Some(metrics), Progress::Done(done)) = (&metrics, &item) {
                match done {
                    Ok(_) => metrics.operation_succeeded(operation),
                    Err(failure) => metrics.operation_failed(operation, failure.stage),
                }
            }
            let message = match item {
                Progress::Workload(workload) => Some(Ok(Update::Workload((*workload).into()))),
                Progress::Log(line) => Some(Ok(Update::Log(line.into()))),
                Progress::Skipped { through, count } => {
                    Some(Ok(Update::Log(convert::skipped_lines(&id, through, count))))
                }
                // The final snapshot was the message before.
                Progress::Done(Ok(_)) => None,
                Progress::Done(Err(failure)) => Some(Err(operation_failed(operation, &failure))),
            };
            futures::future::ready(message.map(|update| {
                update.map(|update| WorkloadProgress {
                    update: Some(update),
                })
            }))
        });
        Ok(Response::new(until_closing(messages, &self.closing)))
    }
}

impl WorkloadApi {
    /// Sends a start, stop or restart on to `node`, and hands its progress
    /// stream back unchanged.
    #[allow(clippy::too_many_arguments)]
    async fn forward_operation(
        &self,
        forwarding: &Forwarding,
        node: &Node,
        placement: Option<&str>,
        workload_id: &str,
        deployment_id: &str,
        operation: Operation,
        grace: Option<Duration>,
    ) -> Result<Response<BoxStream<WorkloadProgress>>, Status> {
        let mut client = self.peers.workloads(node)?;
        let workload_id = workload_id.to_owned();
        let deployment_id = deployment_id.to_owned();
        let answer = match operation {
            Operation::Start => {
                let message = StartWorkloadRequest {
                    workload_id,
                    deployment_id,
                };
                client
                    .start_workload(self.peers.request(forwarding, message, placement))
                    .await
            }
            Operation::Stop => {
                let message = StopWorkloadRequest {
                    workload_id,
                    deployment_id,
                    grace_period_seconds: grace
                        .map(|grace| u32::try_from(grace.as_secs()).unwrap_or(u32::MAX)),
                };
                client
                    .stop_workload(self.peers.request(forwarding, message, placement))
                    .await
            }
            Operation::Restart => {
                let message = RestartWorkloadRequest {
                    workload_id,
                    deployment_id,
                };
                client
                    .restart_workload(self.peers.request(forwarding, message, placement))
                    .await
            }
        };
        let stream = answer.map_err(|status| forward::unreachable(node, status))?;
        Ok(Response::new(until_closing(
            stream.into_inner(),
            &self.closing,
        )))
    }
}

#[tonic::async_trait]
impl WorkloadService for WorkloadApi {
    type StartWorkloadStream = BoxStream<WorkloadProgress>;
    type StopWorkloadStream = BoxStream<WorkloadProgress>;
    type RestartWorkloadStream = BoxStream<WorkloadProgress>;
    type StreamLogsStream = BoxStream<LogEntry>;
    type WatchEventsStream = BoxStream<Event>;

    async fn create_workload(
        &self,
        request: Request<CreateWorkloadRequest>,
    ) -> Result<Response<Workload>, Status> {
        let caller = access::caller(&request)?;
        let deployment_id = request.get_ref().deployment_id.clone();
        let parameters = serde_json::json!({ "deployment_id": deployment_id });
        access::note(&request, &deployment_id, parameters.clone());
        let id = convert::deployment_id("deployment_id", &deployment_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_deployment(&caller, &self.orchestrator, &id).await?;
        let workload = self
            .orchestrator
            .create_workload(&id)
            .await
            .map_err(to_status)?;
        access::note(&request, &workload.id.to_string(), parameters);
        Ok(Response::new(workload.into()))
    }

    async fn start_workload(
        &self,
        request: Request<StartWorkloadRequest>,
    ) -> Result<Response<Self::StartWorkloadStream>, Status> {
        let caller = access::caller(&request)?;
        let wire = request.get_ref();
        access::note(
            &request,
            &wire.workload_id,
            serde_json::json!({"workload_id": wire.workload_id, "deployment_id": wire.deployment_id}),
        );
        let forwarding = Forwarding::of(request.metadata());
        let request = request.into_inner();
        self.operation(
            &caller,
            &forwarding,
            &request.workload_id,
            &request.deployment_id,
            Operation::Start,
            None,
        )
        .await
    }

    async fn stop_workload(
        &self,
        request: Request<StopWorkloadRequest>,
    ) -> Result<Response<Self::StopWorkloadStream>, Status> {
        let caller = access::caller(&request)?;
        let wire = request.get_ref();
        access::note(
            &request,
            &wire.workload_id,
            serde_json::json!({"workload_id": wire.workload_id, "deployment_id": wire.deployment_id}),
        );
        let forwarding = Forwarding::of(request.metadata());
        let request = request.into_inner();
        let grace = request
            .grace_period_seconds
            .map(|seconds| Duration::from_secs(seconds.into()));
        self.operation(
            &caller,
            &forwarding,
            &request.workload_id,
            &request.deployment_id,
            Operation::Stop,
            grace,
        )
        .await
    }

    async fn restart_workload(
        &self,
        request: Request<RestartWorkloadRequest>,
    ) -> Result<Response<Self::RestartWorkloadStream>, Status> {
        let caller = access::caller(&request)?;
        let wire = request.get_ref();
        access::note(
            &request,
            &wire.workload_id,
            serde_json::json!({"workload_id": wire.workload_id, "deployment_id": wire.deployment_id}),
        );
        let forwarding = Forwarding::of(request.metadata());
        let request = request.into_inner();
        self.operation(
            &caller,
            &forwarding,
            &request.workload_id,
            &request.deployment_id,
            Operation::Restart,
            None,
        )
        .await
    }

    async fn get_workload(
        &self,
        request: Request<GetWorkloadRequest>,
    ) -> Result<Response<Workload>, Status> {
        let caller = access::caller(&request)?;
        let id = convert::workload_id("workload_id", &request.into_inner().workload_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_workload(&caller, &self.orchestrator, &id).await?;
        let workload = self
            .orchestrator
            .get_workload(&id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(workload.into()))
    }

    async fn get_health_history(
        &self,
        request: Request<slipway::v1::GetHealthHistoryRequest>,
    ) -> Result<Response<slipway::v1::HealthHistory>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let id = convert::workload_id("workload_id", &request.workload_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_workload(&caller, &self.orchestrator, &id).await?;
        let history = super::health::history(&self.orchestrator, &id, &request).await?;
        Ok(Response::new(history))
    }

    async fn list_workloads(
        &self,
        request: Request<ListWorkloadsRequest>,
    ) -> Result<Response<ListWorkloadsResponse>, Status> {
        let projects = ProjectFilter::new(access::caller(&request)?, self.orchestrator.clone());
        let request = request.into_inner();
        let mut violations = Vec::new();
        let deployment_id =
            convert::optional_deployment_id("deployment_id", &request.deployment_id)
                .unwrap_or_else(|mut bad| {
                    violations.append(&mut bad);
                    None
                });
        let mut stages = Vec::new();
        for (index, value) in request.stages.iter().enumerate() {
            match convert::stage_from_wire(*value) {
                Some(stage) => stages.push(stage),
                None => violations.push(FieldViolation::new(
                    format!("stages[{index}]"),
                    "unknown stage",
                )),
            }
        }
        if !request.deployment_name.is_empty() && !request.deployment_id.is_empty() {
            violations.push(FieldViolation::new(
                "deployment_name",
                "give deployment_id or deployment_name, not both",
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let deployment_id = match deployment_id {
            None if !request.deployment_name.is_empty() => Some(
                self.orchestrator
                    .deployment_by_name("deployment_name", &request.deployment_name, None)
                    .await
                    .map_err(to_status)?
                    .id,
            ),
            deployment_id => deployment_id,
        };
        let cursor = super::decode_page_token(&request.page_token)?;
        let filter = WorkloadFilter {
            deployment_id,
            stages,
        };
        let page = self
            .orchestrator
            .list_workloads(
                &filter,
                cursor.as_ref(),
                super::page_size(request.page_size),
            )
            .await
            .map_err(to_status)?;
        let mut workloads = Vec::with_capacity(page.workloads.len());
        for workload in page.workloads {
            if projects.allows(&workload.deployment_id).await {
                workloads.push(workload.into());
            }
        }
        Ok(Response::new(ListWorkloadsResponse {
            workloads,
            next_page_token: page
                .next
                .as_ref()
                .map(super::encode_page_token)
                .unwrap_or_default(),
            revision: page.revision,
        }))
    }

    async fn delete_workload(
        &self,
        request: Request<DeleteWorkloadRequest>,
    ) -> Result<Response<DeleteWorkloadResponse>, Status> {
        let caller = access::caller(&request)?;
        let wire_id = request.get_ref().workload_id.clone();
        access::note(
            &request,
            &wire_id,
            serde_json::json!({ "workload_id": wire_id }),
        );
        let id = convert::workload_id("workload_id", &wire_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_workload(&caller, &self.orchestrator, &id).await?;
        let forwarding = Forwarding::of(request.metadata());
        match self.orchestrator.delete_workload(&id).await {
            Err(OrchestratorError::Elsewhere { node, .. }) if !forwarding.forwarded => {
                let message = DeleteWorkloadRequest {
                    workload_id: wire_id,
                };
                self.peers
                    .workloads(&node)?
                    .delete_workload(self.peers.request(&forwarding, message, None))
                    .await
                    .map_err(|status| forward::unreachable(&node, status))?;
            }
            other => other.map_err(to_status)?,
        }
        Ok(Response::new(DeleteWorkloadResponse {}))
    }

    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<GetLogsResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let id = convert::workload_id("workload_id", &request.workload_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_workload(&caller, &self.orchestrator, &id).await?;
        let limit = match u64::from(request.limit) {
            0 => DEFAULT_LOG_PAGE,
            limit => limit.min(MAX_LOG_PAGE),
        };
        let (lines, last_seq, dropped) = self
            .orchestrator
            .get_logs(&id, request.after_seq, limit)
            .await
            .map_err(to_status)?;
        let next_after_seq = lines.last().map_or(request.after_seq, |line| line.seq);
        Ok(Response::new(GetLogsResponse {
            entries: lines.into_iter().map(Into::into).collect(),
            next_after_seq,
            last_seq,
            dropped,
        }))
    }

    async fn stream_logs(
        &self,
        request: Request<StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let caller = access::caller(&request)?;
        let forwarding = Forwarding::of(request.metadata());
        let request = request.into_inner();
        let id = convert::workload_id("workload_id", &request.workload_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_workload(&caller, &self.orchestrator, &id).await?;
        let filter =
            convert::log_filter(&request).map_err(|violations| invalid_argument(&violations))?;
        // Only the owner knows when its next line is stored: a follower reads there.
        if request.follow && !forwarding.forwarded {
            if let Err(OrchestratorError::Elsewhere { node, .. }) =
                self.orchestrator.route_to_owner(&id).await
            {
                let stream = self
                    .peers
                    .workloads(&node)?
                    .stream_logs(self.peers.request(&forwarding, request, None))
                    .await
                    .map_err(|status| forward::unreachable(&node, status))?;
                return Ok(Response::new(until_closing(
                    stream.into_inner(),
                    &self.closing,
                )));
            }
        }
        let query = LogQuery {
            from_seq: request.from_seq,
            tail: request.tail.map(u64::from),
            filter,
            follow: request.follow,
        };
        let reader = self
            .orchestrator
            .read_logs(&id, query)
            .await
            .map_err(to_status)?;
        let lines = reader.into_stream().map(move |item| {
            item.map(|item| convert::log_item(&id, item))
                .map_err(|error| to_status(error.into()))
        });
        Ok(Response::new(until_closing(lines, &self.closing)))
    }

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let projects = ProjectFilter::new(access::caller(&request)?, self.orchestrator.clone());
        let request = request.into_inner();
        let mut violations = Vec::new();
        let deployment_id =
            convert::optional_deployment_id("deployment_id", &request.deployment_id)
                .unwrap_or_else(|mut bad| {
                    violations.append(&mut bad);
                    None
                });
        let workload_id = if request.workload_id.is_empty() {
            None
        } else {
            convert::workload_id("workload_id", &request.workload_id)
                .map(Some)
                .unwrap_or_else(|mut bad| {
                    violations.append(&mut bad);
                    None
                })
        };
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let filter = EventFilter {
            deployment_id,
            workload_id,
        };
        let interval = Duration::from_secs(
            request
                .bookmark_interval_seconds
                .unwrap_or(10)
                .max(1)
                .into(),
        );
        let events = self
            .orchestrator
            .watch_events(request.since_revision, filter, interval)
            .await
            .map_err(to_status)?;
        // A project-limited watcher sees its projects' events only (bookmarks
        // and errors pass).
        let events = events.filter(move |item| {
            let projects = projects.clone();
            let deployment_id = match item {
                Ok(WatchItem::Event(event)) => Some(event.deployment_id.clone()),
                _ => None,
            };
            async move {
                match deployment_id {
                    Some(deployment_id) => projects.allows(&deployment_id).await,
                    None => true,
                }
            }
        });
        let events = events.map(|item| {
            item.map(|item| match item {
                WatchItem::Event(event) => (*event).into(),
                WatchItem::Bookmark(revision) => Event {
                    revision,
                    r#type: slipway::v1::EventType::Bookmark.into(),
                    timestamp: Some(convert::timestamp(crate::domain::now())),
                    ..Event::default()
                },
            })
            .map_err(to_status)
        });
        Ok(Response::new(until_closing(events, &self.closing)))
    }
}
