//! The MCP tools: each a few SDK calls, answering JSON that names the tools
//! that apply next, or a tool error carrying the SDK's typed error.

use rmcp::{
    ErrorData as McpError, handler::server::wrapper::Parameters, model::CallToolResult, tool,
    tool_router,
};
use serde_json::{Value, json};
use slipway_sdk::{
    Error, LogSource,
    proto::{
        GetHealthHistoryRequest, ListDeploymentsRequest, ListWorkloadsRequest, Stage,
        Stream as LogStream,
    },
};

use super::{
    SlipwayMcp,
    follow::follow,
    inputs::{looks_like_id, parse_condition, run_request},
    params::{
        DeploymentParams, ListDeploymentsParams, ListWorkloadsParams, ReadLogsParams, RunParams,
        StartParams, StopParams, WaitParams, WorkloadParams,
    },
    view::{DeploymentView, LogLineView, WorkloadView, allowed_actions},
};

/// The most lines one `read_logs` answer holds.
const MAX_LOG_LINES: u32 = 1000;
/// The longest `wait_for_stage` waits before answering.
const MAX_WAIT_SECONDS: u32 = 20;

type ToolResult = Result<CallToolResult, McpError>;

#[tool_router(vis = "pub(super)")]
impl SlipwayMcp {
    /// List deployments (what can run): name, id, command or image, and the
    /// tools that apply.
    #[tool(annotations(
        title = "List deployments",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn list_deployments(
        &self,
        Parameters(params): Parameters<ListDeploymentsParams>,
    ) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let mut deployments = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_deployments(ListDeploymentsRequest {
                        project: params.project.clone().unwrap_or_default(),
                        page_token: page_token.clone(),
                        ..ListDeploymentsRequest::default()
                    })
                    .await?;
                deployments.extend(page.deployments.iter().map(DeploymentView::new));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(json!({
                "deployments": deployments,
                "allowed_actions": ["run", "start", "list_workloads", "delete_deployment"],
            }))
        })
        .await
    }

    /// List workloads (runs of deployments) with their stage, port and the
    /// tools that apply to each: by default those pending, on their way or
    /// running; `all` for every one.
    #[tool(annotations(
        title = "List workloads",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn list_workloads(
        &self,
        Parameters(params): Parameters<ListWorkloadsParams>,
    ) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let names = self.deployment_names().await?;
            let mut stages: Vec<i32> = Vec::new();
            if !params.all {
                stages = [
                    Stage::Pending,
                    Stage::Validate,
                    Stage::Build,
                    Stage::Deploy,
                    Stage::Running,
                    Stage::Stopping,
                ]
                .into_iter()
                .map(Into::into)
                .collect();
            }
            let mut workloads = Vec::new();
            let mut page_token = String::new();
            loop {
                let deployment = params.deployment.clone().unwrap_or_default();
                let (deployment_id, deployment_name) = if looks_like_id(&deployment) {
                    (deployment, String::new())
                } else {
                    (String::new(), deployment)
                };
                let page = client
                    .list_workloads(ListWorkloadsRequest {
                        deployment_id,
                        deployment_name,
                        stages: stages.clone(),
                        page_token: page_token.clone(),
                        ..ListWorkloadsRequest::default()
                    })
                    .await?;
                for workload in &page.workloads {
                    let name = names.get(&workload.deployment_id).map(String::as_str);
                    workloads.push(WorkloadView::new(workload, name));
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(json!({ "workloads": workloads }))
        })
        .await
    }

    /// Everything about one workload: stage, health, port, why it failed,
    /// its deployment and that deployment's health (healthy, degraded or
    /// unavailable), its liveness checks of the last hour (uptime, recent
    /// failures), and the tools that apply.
    #[tool(annotations(
        title = "Inspect a workload",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn get_workload(&self, Parameters(params): Parameters<WorkloadParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let workload = self.resolve_workload(&params.workload).await?;
            let deployment = client.get_deployment(&workload.deployment_id).await?;
            let checks = client
                .health_history_with(GetHealthHistoryRequest {
                    workload_id: workload.id.clone(),
                    window_seconds: 3600,
                    limit: 5,
                })
                .await?;
            let deployment_health = deployment.health.clone().unwrap_or_default();
            Ok(json!({
                "workload": WorkloadView::new(&workload, Some(&deployment.name)),
                "deployment": DeploymentView::new(&deployment),
                "deployment_health": {
                    "state": deployment_health.state().as_str_name()
                        .trim_start_matches("DEPLOYMENT_HEALTH_STATE_")
                        .to_ascii_lowercase(),
                    "reason": deployment_health.reason,
                },
                "liveness_last_hour": {
                    "checks": checks.total_checks,
                    "passed": checks.passed_checks,
                    "uptime": checks.uptime,
                    "recent_failures": checks.checks.iter()
                        .filter(|check| !check.passed)
                        .map(|check| check.reason.as_str())
                        .collect::<Vec<_>>(),
                },
                "allowed_actions": allowed_actions(&workload),
            }))
        })
        .await
    }

    /// Run a service: create a deployment from a command (or shell line, or
    /// Docker image), a workload of it, and start it. Answers once it is
    /// running and ready, or after about 20 s with `outcome: in_progress`
    /// (follow with wait_for_stage). A failed start is an error with the
    /// stage, reason, exit code and the service's last lines.
    #[tool(annotations(
        title = "Run a service",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn run(&self, Parameters(params): Parameters<RunParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let request = run_request(params)?;
            let deployment = client.create_deployment(request).await?;
            let workload = client.create_workload(&deployment.id).await?;
            let progress = client.start_workload(&workload.id).await?;
            let mut answer = follow(
                "start",
                "running",
                progress,
                self.follow_limit,
                Some(&deployment.name),
            )
            .await?;
            answer["deployment"] = json!(DeploymentView::new(&deployment));
            Ok(answer)
        })
        .await
    }

    /// Start: a pending workload by id, or a deployment by name (a new
    /// workload of it unless one already runs or is on its way). Answers once
    /// running, or after about 20 s with `outcome: in_progress`.
    #[tool(annotations(
        title = "Start a workload",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn start(&self, Parameters(params): Parameters<StartParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let (workload, name) = if looks_like_id(&params.target) {
                let workload = client.get_workload(&params.target).await?;
                (workload, None)
            } else {
                let name = params.target.clone();
                let workloads = client.workloads_of(&name).await?;
                let live = workloads.iter().rev().find(|workload| {
                    matches!(
                        workload.stage(),
                        Stage::Validate | Stage::Build | Stage::Deploy | Stage::Running
                    ) || workload.next_restart_at.is_some()
                });
                if let Some(live) = live {
                    let outcome = if live.stage() == Stage::Running {
                        "already_running"
                    } else {
                        "in_progress"
                    };
                    return Ok(json!({
                        "operation": "start",
                        "outcome": outcome,
                        "workload": WorkloadView::new(live, Some(&name)),
                        "allowed_actions": allowed_actions(live),
                    }));
                }
                let pending = workloads
                    .iter()
                    .rev()
                    .find(|workload| workload.stage() == Stage::Pending);
                let workload = match pending {
                    Some(pending) => pending.clone(),
                    None => {
                        let deployment = client.get_deployment_by_name(&name, None).await?;
                        client.create_workload(&deployment.id).await?
                    }
                };
                (workload, Some(name))
            };
            let progress = client.start_workload(&workload.id).await?;
            follow(
                "start",
                "running",
                progress,
                self.follow_limit,
                name.as_deref(),
            )
            .await
        })
        .await
    }

    /// Stop a workload: the stop signal, the grace period, then a kill.
    /// Answers once stopped, or after about 20 s with `outcome: in_progress`.
    #[tool(annotations(
        title = "Stop a workload",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn stop(&self, Parameters(params): Parameters<StopParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let workload = self.resolve_workload(&params.workload).await?;
            let progress = client
                .stop_workload(&workload.id, params.grace_seconds)
                .await?;
            follow("stop", "terminal", progress, self.follow_limit, None).await
        })
        .await
    }

    /// Restart a workload: stop it if it runs, then run it again as the next
    /// generation. Answers once running, or after about 20 s with
    /// `outcome: in_progress`.
    #[tool(annotations(
        title = "Restart a workload",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn restart(&self, Parameters(params): Parameters<WorkloadParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let workload = self.resolve_workload(&params.workload).await?;
            let progress = client.restart_workload(&workload.id).await?;
            follow("restart", "running", progress, self.follow_limit, None).await
        })
        .await
    }

    /// Delete a workload with its logs (stopped first if it runs).
    #[tool(annotations(
        title = "Delete a workload",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn delete_workload(&self, Parameters(params): Parameters<WorkloadParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let workload = self.resolve_workload(&params.workload).await?;
            client.delete_workload(&workload.id).await?;
            Ok(json!({
                "deleted_workload": workload.id,
                "allowed_actions": ["start", "list_workloads"],
            }))
        })
        .await
    }

    /// Delete a deployment with all its workloads (stopped first).
    #[tool(annotations(
        title = "Delete a deployment",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn delete_deployment(
        &self,
        Parameters(params): Parameters<DeploymentParams>,
    ) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let deployment = if looks_like_id(&params.deployment) {
                client.get_deployment(&params.deployment).await?
            } else {
                client
                    .get_deployment_by_name(&params.deployment, None)
                    .await?
            };
            let deleted = client.delete_deployment(&deployment.id).await?;
            Ok(json!({
                "deleted_deployment": deployment.id,
                "name": deployment.name,
                "deleted_workloads": deleted,
                "allowed_actions": ["run", "list_deployments"],
            }))
        })
        .await
    }

    /// Read a workload's log: the last `tail` lines (default 50), or the lines
    /// after `after_seq` to page on. By default only the service's own output
    /// (stdout, stderr); `include_system` adds Slipway's lines about it.
    #[tool(annotations(title = "Read logs", read_only_hint = true, open_world_hint = false))]
    async fn read_logs(&self, Parameters(params): Parameters<ReadLogsParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let workload = self.resolve_workload(&params.workload).await?;
            let count = params.tail.unwrap_or(50).clamp(1, MAX_LOG_LINES);
            let source = if params.include_system {
                LogSource::All
            } else {
                LogSource::Service
            };
            let (entries, next_after_seq) = match params.after_seq {
                None => {
                    let entries = client.logs_tail_from(&workload.id, count, source).await?;
                    let next = entries.last().map(|entry| entry.seq);
                    (entries, next)
                }
                Some(after_seq) => {
                    let page = client.get_logs(&workload.id, after_seq, count).await?;
                    let next = (page.next_after_seq > after_seq).then_some(page.next_after_seq);
                    let entries = page
                        .entries
                        .into_iter()
                        .filter(|entry| entry.dropped == 0)
                        .filter(|entry| {
                            params.include_system || entry.stream() != LogStream::System
                        })
                        .collect();
                    (entries, next)
                }
            };
            let lines: Vec<LogLineView> = entries.iter().map(LogLineView::new).collect();
            Ok(json!({
                "workload_id": workload.id,
                "stage": workload.stage().label(),
                "lines": lines,
                "next_after_seq": next_after_seq.unwrap_or(params.after_seq.unwrap_or(0)),
                "allowed_actions": allowed_actions(&workload),
            }))
        })
        .await
    }

    /// Wait (at most 20 s a call) until a workload reaches a stage
    /// (`running`, `stopped`, `failed`, ...), `healthy`, `terminal` or
    /// `settled`. Answers `reached: true` with the workload, or
    /// `reached: false` with the workload as it is (call again), or
    /// `reached: false, final: true` when it can no longer get there.
    #[tool(annotations(
        title = "Wait for a stage",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn wait_for_stage(&self, Parameters(params): Parameters<WaitParams>) -> ToolResult {
        self.answer(async {
            let client = self.client().await?;
            let condition = parse_condition(&params.stage)?;
            let workload = self.resolve_workload(&params.workload).await?;
            let seconds = params
                .timeout_seconds
                .unwrap_or(15)
                .clamp(1, MAX_WAIT_SECONDS);
            let timeout = std::time::Duration::from_secs(seconds.into());
            let waited = client.wait_for(&workload.id, condition, timeout).await;
            let (reached, last, note) = match waited {
                Ok(reached) => (true, reached, None),
                Err(Error::TimedOut { .. }) => {
                    let now = client.get_workload(&workload.id).await?;
                    (
                        false,
                        now,
                        Some(json!({"final": false, "note": "not yet: call again"})),
                    )
                }
                Err(Error::UnexpectedStage { workload, .. }) => {
                    let message = format!(
                        "the workload is {} and will not get there without another operation",
                        workload.stage().label()
                    );
                    (
                        false,
                        *workload,
                        Some(json!({"final": true, "note": message})),
                    )
                }
                Err(other) => return Err(other),
            };
            let mut answer = json!({
                "reached": reached,
                "waited_for": params.stage,
                "workload": WorkloadView::new(&last, None),
                "allowed_actions": allowed_actions(&last),
            });
            if let Some(Value::Object(note)) = note {
                for (key, value) in note {
                    answer[key] = value;
                }
            }
            Ok(answer)
        })
        .await
    }
}
