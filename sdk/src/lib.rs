//! A typed async client for Slipway.
//!
//! ```no_run
//! # async fn example() -> Result<(), slipway_sdk::Error> {
//! use slipway_sdk::{Client, DeploymentBuilder, proto::Stage};
//!
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let deployment = client
//!     .create_deployment(
//!         DeploymentBuilder::new("web")
//!             .service_path("web")
//!             .command(["sh", "-c", "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1"])
//!             .listen()
//!             .build(),
//!     )
//!     .await?;
//! let workload = client.create_workload(&deployment.id).await?;
//! let running = client.start_workload(&workload.id).await?.finish().await?;
//! assert_eq!(running.stage(), Stage::Running);
//! client.stop_workload(&workload.id, None).await?.finish().await?;
//! # Ok(())
//! # }
//! ```
//!
//! An agent does the same in fewer calls, addressing things by name:
//!
//! ```no_run
//! # async fn example() -> Result<(), slipway_sdk::Error> {
//! use std::time::Duration;
//! use slipway_sdk::{Client, Condition, DeploymentBuilder, Error};
//!
//! let client = Client::builder("http://127.0.0.1:50051").token("slw_...").connect().await?;
//! let spec = DeploymentBuilder::new("worker").command(["sh", "-c", "exec ./worker"]);
//! let workload = match client.run(spec).await {
//!     Ok(workload) => workload,
//!     Err(Error::OperationFailed(failure)) => {
//!         // Why: the service's own last lines.
//!         for line in client.logs_tail(&failure.workload_id, 20).await? {
//!             eprintln!("{}", line.message);
//!         }
//!         return Err(Error::OperationFailed(failure));
//!     }
//!     Err(other) => return Err(other),
//! };
//! let same = client.ensure_running("worker").await?;
//! assert_eq!(same.id, workload.id);
//! client.stop_workload(&workload.id, None).await?;
//! client.wait_for(&workload.id, Condition::Terminal, Duration::from_secs(30)).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod access;
mod agent;
mod changes;
mod connect;
mod error;
mod fleet;
mod health;
mod liveness;
mod progress;
mod spec;
mod wait;

use futures::{Stream, StreamExt};
use slipway::v1::{
    CreateDeploymentRequest, CreateWorkloadRequest, DeleteDeploymentRequest, DeleteWorkloadRequest,
    Deployment, Event, GetDeploymentRequest, GetLogsRequest, GetLogsResponse, GetWorkloadRequest,
    ListDeploymentsRequest, ListDeploymentsResponse, ListWorkloadsRequest, ListWorkloadsResponse,
    LogEntry, RestartWorkloadRequest, StartWorkloadRequest, StopWorkloadRequest, StreamLogsRequest,
    WatchEventsRequest, Workload, deployment_service_client::DeploymentServiceClient,
    node_service_client::NodeServiceClient, workload_service_client::WorkloadServiceClient,
};
use tonic::transport::Channel;

pub use access::NewToken;
pub use agent::LogSource;
pub use changes::{ChangeOutcome, DeploymentChange, DeploymentUpdate, RolloutStrategy};
pub use connect::ClientBuilder;
use connect::{AuthedChannel, Credentials};

pub use error::{Error, FieldViolation, OperationFailure};
pub use liveness::Liveness;
pub use progress::{Progress, ProgressStream};
/// Well-known protobuf types (timestamps) used by the wire types.
pub use slipway::prost_types;
/// The wire types of `slipway.v1`.
pub use slipway::v1 as proto;
pub use spec::DeploymentBuilder;
pub use wait::Condition;

/// The SDK's result: an [`Error`] says what went wrong.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection to a Slipway server. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    deployments: DeploymentServiceClient<AuthedChannel>,
    workloads: WorkloadServiceClient<AuthedChannel>,
    nodes: NodeServiceClient<AuthedChannel>,
    tokens: slipway::v1::token_service_client::TokenServiceClient<AuthedChannel>,
    audit: slipway::v1::audit_service_client::AuditServiceClient<AuthedChannel>,
    fleet: slipway::v1::fleet_service_client::FleetServiceClient<AuthedChannel>,
}

impl Client {
    /// Connects to `url`, like `http://127.0.0.1:50051` or
    /// `unix:///path/to/slipway.sock`, without credentials.
    pub async fn connect(url: impl Into<String>) -> Result<Client> {
        Client::builder(url).connect().await
    }

    /// Connects with options: `Client::builder(url).token(token).connect()`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// A client on an existing channel, without credentials.
    pub fn from_channel(channel: Channel) -> Client {
        Client::with_credentials(channel, Credentials::default())
    }

    pub(crate) fn with_credentials(channel: Channel, credentials: Credentials) -> Client {
        Client {
            deployments: DeploymentServiceClient::with_interceptor(
                channel.clone(),
                credentials.clone(),
            ),
            workloads: WorkloadServiceClient::with_interceptor(
                channel.clone(),
                credentials.clone(),
            ),
            nodes: NodeServiceClient::with_interceptor(channel.clone(), credentials.clone()),
            tokens: slipway::v1::token_service_client::TokenServiceClient::with_interceptor(
                channel.clone(),
                credentials.clone(),
            ),
            audit: slipway::v1::audit_service_client::AuditServiceClient::with_interceptor(
                channel.clone(),
                credentials.clone(),
            ),
            fleet: slipway::v1::fleet_service_client::FleetServiceClient::with_interceptor(
                channel,
                credentials,
            ),
        }
    }

    // ----- nodes -------------------------------------------------------------

    /// The nodes sharing this server's database (one on SQLite), newest
    /// heartbeat first; nodes that left cleanly only with `include_left`.
    pub async fn list_nodes(&self, include_left: bool) -> Result<Vec<proto::Node>> {
        Ok(self
            .nodes
            .clone()
            .list_nodes(proto::ListNodesRequest { include_left })
            .await?
            .into_inner()
            .nodes)
    }

    /// One node, by id or name.
    pub async fn get_node(&self, node: &str) -> Result<proto::Node> {
        Ok(self
            .nodes
            .clone()
            .get_node(proto::GetNodeRequest {
                node: node.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Pauses a node (by id or name): it takes no new workloads, what runs
    /// there keeps running. Pausing the last node that takes work fails with
    /// `FAILED_PRECONDITION` unless `force` is set and `confirm` is the node's name.
    pub async fn pause_node(&self, node: &str, force: bool, confirm: &str) -> Result<proto::Node> {
        Ok(self
            .fleet
            .clone()
            .pause_node(proto::PauseNodeRequest {
                node: node.to_owned(),
                force,
                confirm: confirm.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Resumes a paused node: it takes new workloads again.
    pub async fn resume_node(&self, node: &str) -> Result<proto::Node> {
        Ok(self
            .fleet
            .clone()
            .resume_node(proto::ResumeNodeRequest {
                node: node.to_owned(),
            })
            .await?
            .into_inner())
    }

    // ----- deployments -------------------------------------------------------

    /// Creates a deployment (see [`DeploymentBuilder`]).
    pub async fn create_deployment(&self, request: CreateDeploymentRequest) -> Result<Deployment> {
        Ok(self
            .deployments
            .clone()
            .create_deployment(request)
            .await?
            .into_inner())
    }

    /// The deployment with this id (32 hex digits, or a hyphenated UUID);
    /// [`Client::get_deployment_by_name`] finds one by name.
    pub async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let request = GetDeploymentRequest {
            id: id.to_owned(),
            ..GetDeploymentRequest::default()
        };
        Ok(self
            .deployments
            .clone()
            .get_deployment(request)
            .await?
            .into_inner())
    }

    /// A page of deployments (of `request.project` when set), oldest first.
    pub async fn list_deployments(
        &self,
        request: ListDeploymentsRequest,
    ) -> Result<ListDeploymentsResponse> {
        Ok(self
            .deployments
            .clone()
            .list_deployments(request)
            .await?
            .into_inner())
    }

    /// Every deployment, all pages.
    pub async fn all_deployments(&self) -> Result<Vec<Deployment>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list_deployments(ListDeploymentsRequest {
                    page_token: page_token.clone(),
                    ..ListDeploymentsRequest::default()
                })
                .await?;
            all.extend(page.deployments);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    /// Stops and removes the deployment's workloads, then the deployment; returns
    /// the removed workloads' ids.
    pub async fn delete_deployment(&self, id: &str) -> Result<Vec<String>> {
        let request = DeleteDeploymentRequest { id: id.to_owned() };
        let response = self.deployments.clone().delete_deployment(request).await?;
        Ok(response.into_inner().deleted_workload_ids)
    }

    // ----- workloads ---------------------------------------------------------

    /// A new pending workload of a deployment.
    pub async fn create_workload(&self, deployment_id: &str) -> Result<Workload> {
        let request = CreateWorkloadRequest {
            deployment_id: deployment_id.to_owned(),
        };
        Ok(self
            .workloads
            .clone()
            .create_workload(request)
            .await?
            .into_inner())
    }

    /// Starts a pending workload; the stream shows its progress up to `RUNNING`
    /// (or `FAILED`). Dropping the stream does not cancel the start.
    pub async fn start_workload(&self, workload_id: &str) -> Result<ProgressStream> {
        let request = StartWorkloadRequest {
            workload_id: workload_id.to_owned(),
            ..StartWorkloadRequest::default()
        };
        let stream = self
            .workloads
            .clone()
            .start_workload(request)
            .await?
            .into_inner();
        Ok(ProgressStream::new(stream))
    }

    /// Stops a workload, with the deployment's grace period unless `grace_seconds`.
    pub async fn stop_workload(
        &self,
        workload_id: &str,
        grace_seconds: Option<u32>,
    ) -> Result<ProgressStream> {
        let request = StopWorkloadRequest {
            workload_id: workload_id.to_owned(),
            grace_period_seconds: grace_seconds,
            ..StopWorkloadRequest::default()
        };
        let stream = self
            .workloads
            .clone()
            .stop_workload(request)
            .await?
            .into_inner();
        Ok(ProgressStream::new(stream))
    }

    /// Stops the workload if it runs, then runs it again as the next generation.
    pub async fn restart_workload(&self, workload_id: &str) -> Result<ProgressStream> {
        let request = RestartWorkloadRequest {
            workload_id: workload_id.to_owned(),
            ..RestartWorkloadRequest::default()
        };
        let stream = self
            .workloads
            .clone()
            .restart_workload(request)
            .await?
            .into_inner();
        Ok(ProgressStream::new(stream))
    }

    /// The workload with this id, as it is now.
    pub async fn get_workload(&self, workload_id: &str) -> Result<Workload> {
        let request = GetWorkloadRequest {
            workload_id: workload_id.to_owned(),
        };
        Ok(self
            .workloads
            .clone()
            .get_workload(request)
            .await?
            .into_inner())
    }

    /// A page of workloads (of a deployment, by id or by name, and in some
    /// stages when the request says so), oldest first, with the event revision
    /// it is consistent with.
    pub async fn list_workloads(
        &self,
        request: ListWorkloadsRequest,
    ) -> Result<ListWorkloadsResponse> {
        Ok(self
            .workloads
            .clone()
            .list_workloads(request)
            .await?
            .into_inner())
    }

    /// Stops the workload if needed, then removes it with its logs.
    pub async fn delete_workload(&self, workload_id: &str) -> Result<()> {
        let request = DeleteWorkloadRequest {
            workload_id: workload_id.to_owned(),
        };
        self.workloads.clone().delete_workload(request).await?;
        Ok(())
    }

    /// Up to `limit` stored lines with a seq above `after_seq` (0 for the default page size).
    pub async fn get_logs(
        &self,
        workload_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<GetLogsResponse> {
        let request = GetLogsRequest {
            workload_id: workload_id.to_owned(),
            after_seq,
            limit,
        };
        Ok(self.workloads.clone().get_logs(request).await?.into_inner())
    }

    /// Every stored line of a workload, all pages.
    pub async fn all_logs(&self, workload_id: &str) -> Result<Vec<LogEntry>> {
        let mut all = Vec::new();
        let mut after_seq = 0;
        loop {
            let page = self.get_logs(workload_id, after_seq, 0).await?;
            if page.entries.is_empty() {
                return Ok(all);
            }
            after_seq = page.next_after_seq;
            all.extend(page.entries);
        }
    }

    /// The log as a stream: stored lines, then live ones with `follow`.
    pub async fn stream_logs(
        &self,
        request: StreamLogsRequest,
    ) -> Result<impl Stream<Item = Result<LogEntry>> + Send + 'static> {
        let stream = self
            .workloads
            .clone()
            .stream_logs(request)
            .await?
            .into_inner();
        Ok(stream.map(|item| item.map_err(Error::from)))
    }

    /// Events after `request.since_revision`, then live ones.
    pub async fn watch_events(
        &self,
        request: WatchEventsRequest,
    ) -> Result<impl Stream<Item = Result<Event>> + Send + 'static> {
        let stream = self
            .workloads
            .clone()
            .watch_events(request)
            .await?
            .into_inner();
        Ok(stream.map(|item| item.map_err(Error::from)))
    }
}
