//! `slipway mcp`: the Model Context Protocol over stdio, so an agent client
//! (an IDE, a desktop assistant) drives Slipway without code. Each tool is a
//! few SDK calls; answers are JSON naming the tools that apply next; errors
//! are tool errors carrying the SDK's typed error (code, message, whether to
//! retry, the failure's stage, reason and last lines).

mod follow;
mod inputs;
mod params;
mod tools;
mod view;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use rmcp::{
    ErrorData as McpError, ServerHandler, ServiceExt,
    handler::server::router::tool::ToolRouter,
    model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig},
    tool_handler,
};
use serde_json::{Value, json};
use slipway_sdk::{Client, ClientBuilder, Error, proto::Workload};
use tokio::sync::OnceCell;

/// What the server tells the client about using it.
const INSTRUCTIONS: &str = "Slipway runs services (deployments) as workloads and \
keeps their logs. Start with list_deployments / list_workloads, or `run` a new \
service from a command. Every answer has `allowed_actions`: the tools that apply \
next. start, stop, restart and run answer within about 20 s; when the answer says \
`outcome: in_progress`, follow it with wait_for_stage. When a start fails, the \
error carries the stage, reason, exit code and the service's last lines; \
read_logs shows more. A workload is named by its id or by its deployment's name \
(its newest workload).";

/// The MCP server: the tools on a lazily made connection to Slipway (an agent
/// client may start it before the Slipway server is up; a call made before
/// then is a retryable `UNAVAILABLE` tool error).
#[derive(Clone)]
pub struct SlipwayMcp {
    connection: Arc<Connection>,
    /// How long start, stop, restart and run follow their operation.
    follow_limit: Duration,
    tool_router: ToolRouter<SlipwayMcp>,
}

struct Connection {
    builder: ClientBuilder,
    client: OnceCell<Client>,
}

impl SlipwayMcp {
    /// A server connecting with `builder`, following operations for at most
    /// `follow_limit` per call.
    pub fn new(builder: ClientBuilder, follow_limit: Duration) -> SlipwayMcp {
        SlipwayMcp {
            connection: Arc::new(Connection {
                builder,
                client: OnceCell::new(),
            }),
            follow_limit,
            tool_router: SlipwayMcp::tool_router(),
        }
    }

    /// The connection, made on first use (and tried again on the next call
    /// when it could not be made).
    async fn client(&self) -> Result<Client, Error> {
        let connection = &self.connection;
        connection
            .client
            .get_or_try_init(|| connection.builder.clone().connect())
            .await
            .cloned()
    }

    /// A tool's answer: the JSON `work` returns, or its error as a tool error
    /// (with the workload's `allowed_actions` when the error is about one).
    async fn answer(
        &self,
        work: impl Future<Output = Result<Value, Error>>,
    ) -> Result<CallToolResult, McpError> {
        match work.await {
            Ok(value) => Ok(CallToolResult::structured(value)),
            Err(error) => {
                let mut body = view::error_json(&error);
                let workload_id = match &error {
                    Error::InvalidState { workload_id, .. } => Some(workload_id.clone()),
                    Error::OperationFailed(failure) => Some(failure.workload_id.clone()),
                    _ => None,
                };
                if let Some(workload_id) = workload_id.filter(|id| !id.is_empty()) {
                    if let Ok(workload) = self.resolve_workload(&workload_id).await {
                        body["allowed_actions"] = json!(view::allowed_actions(&workload));
                    }
                }
                Ok(CallToolResult::structured_error(body))
            }
        }
    }

    /// The workload `target` names: an id, or a deployment name standing for
    /// its newest workload.
    async fn resolve_workload(&self, target: &str) -> Result<Workload, Error> {
        let client = self.client().await?;
        if inputs::looks_like_id(target) {
            return client.get_workload(target).await;
        }
        client
            .workloads_of(target)
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound {
                message: format!("deployment {target:?} has no workload: start it"),
            })
    }

    /// Every deployment's name, by id.
    async fn deployment_names(&self) -> Result<HashMap<String, String>, Error> {
        let deployments = self.client().await?.all_deployments().await?;
        Ok(deployments
            .into_iter()
            .map(|deployment| (deployment.id, deployment.name))
            .collect())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SlipwayMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("slipway", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve(builder: ClientBuilder, follow_limit: Duration) -> Result<(), String> {
    let service = SlipwayMcp::new(builder, follow_limit)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|error| format!("cannot start the MCP session: {error}"))?;
    service
        .waiting()
        .await
        .map_err(|error| format!("the MCP session ended with an error: {error}"))?;
    Ok(())
}
