//! One-call helpers for what an agent does: run a service and get it back
//! running (or a typed failure saying why not), find things by name, keep a
//! service running, read the service's last lines.

use futures::StreamExt;
use slipway::v1::{
    CreateDeploymentRequest, Deployment, GetDeploymentRequest, ListWorkloadsRequest, LogEntry,
    Stage, StreamLogsRequest, Workload,
};

use crate::{Client, Error, Result};

/// Which lines of a workload's log a tail holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogSource {
    /// The service's own output: its stdout and stderr.
    #[default]
    Service,
    /// Everything, Slipway's system lines about the workload included.
    All,
}

impl Client {
    /// The deployment named `name`, looked up by the server. With `project`,
    /// it must be in that project (a deployment of another project is
    /// [`Error::NotFound`], as if absent).
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> slipway_sdk::Result<()> {
    /// let web = client.get_deployment_by_name("web", None).await?;
    /// let in_shop = client.get_deployment_by_name("api", Some("shop")).await?;
    /// println!("{} {}", web.id, in_shop.id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_deployment_by_name(
        &self,
        name: &str,
        project: Option<&str>,
    ) -> Result<Deployment> {
        let request = GetDeploymentRequest {
            name: name.to_owned(),
            project: project.unwrap_or_default().to_owned(),
            ..GetDeploymentRequest::default()
        };
        Ok(self
            .deployments
            .clone()
            .get_deployment(request)
            .await?
            .into_inner())
    }

    /// Every workload of the deployment named `deployment_name` (all pages),
    /// oldest first; [`Error::NotFound`] when there is no such deployment.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> slipway_sdk::Result<()> {
    /// for workload in client.workloads_of("web").await? {
    ///     println!("{} {:?}", workload.id, workload.stage());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn workloads_of(&self, deployment_name: &str) -> Result<Vec<Workload>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list_workloads(ListWorkloadsRequest {
                    deployment_name: deployment_name.to_owned(),
                    page_token: page_token.clone(),
                    ..ListWorkloadsRequest::default()
                })
                .await?;
            all.extend(page.workloads);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    /// Creates the deployment, a workload of it, starts it and returns the
    /// workload once it is `RUNNING` and ready (its readiness check passed).
    ///
    /// A start that fails is [`Error::OperationFailed`]: the stage it failed
    /// in, the reason, the exit code and the service's last lines. The
    /// deployment and the failed workload are kept so they can be looked at
    /// ([`Client::logs_tail`] with `failure.workload_id`); remove them with
    /// [`Client::delete_deployment`]. A spec the server refuses is
    /// [`Error::InvalidArgument`] naming each bad field, a name in use
    /// [`Error::AlreadyExists`]; nothing is created then.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> slipway_sdk::Result<()> {
    /// use slipway_sdk::{DeploymentBuilder, Error};
    ///
    /// let spec = DeploymentBuilder::new("web")
    ///     .command(["sh", "-c", "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1"])
    ///     .listen()
    ///     .http_readiness("/");
    /// match client.run(spec).await {
    ///     Ok(workload) => println!("serving on port {}", workload.port),
    ///     Err(Error::OperationFailed(failure)) => {
    ///         eprintln!("failed in {:?}: {}", failure.stage, failure.reason);
    ///         for line in client.logs_tail(&failure.workload_id, 20).await? {
    ///             eprintln!("  {}", line.message);
    ///         }
    ///     }
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(&self, spec: impl Into<CreateDeploymentRequest>) -> Result<Workload> {
        let deployment = self.create_deployment(spec.into()).await?;
        let workload = self.create_workload(&deployment.id).await?;
        self.start_workload(&workload.id).await?.finish().await
    }

    /// A running workload of the deployment named `name`: the newest one that
    /// runs; else one on its way (starting, or waiting for its restart
    /// policy), once it runs; else its newest pending workload, started; else
    /// a new workload, started. Fails as [`Client::run`] does when the start
    /// fails, and with [`Error::UnexpectedStage`] when the workload it waited
    /// for stopped or failed instead. Bound it with `tokio::time::timeout`
    /// when a restart policy may be backing off.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> slipway_sdk::Result<()> {
    /// let workload = client.ensure_running("web").await?;
    /// assert_eq!(workload.stage(), slipway_sdk::proto::Stage::Running);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ensure_running(&self, name: &str) -> Result<Workload> {
        let workloads = self.workloads_of(name).await?;
        let newest = |wanted: &dyn Fn(&Workload) -> bool| {
            workloads
                .iter()
                .rev()
                .find(|workload| wanted(workload))
                .cloned()
        };
        if let Some(running) = newest(&|workload| workload.stage() == Stage::Running) {
            return Ok(running);
        }
        let on_its_way = |workload: &Workload| {
            matches!(
                workload.stage(),
                Stage::Validate | Stage::Build | Stage::Deploy
            ) || workload.next_restart_at.is_some()
        };
        if let Some(starting) = newest(&on_its_way) {
            return self
                .watch_workload(&starting.id, |workload| reached(workload, Stage::Running))
                .await;
        }
        let pending = match newest(&|workload| workload.stage() == Stage::Pending) {
            Some(pending) => pending,
            None => {
                let deployment_id = match workloads.first() {
                    Some(workload) => workload.deployment_id.clone(),
                    None => self.get_deployment_by_name(name, None).await?.id,
                };
                self.create_workload(&deployment_id).await?
            }
        };
        self.start_workload(&pending.id).await?.finish().await
    }

    /// The last `lines` lines of the workload's own output (stdout and stderr,
    /// not Slipway's system lines), oldest first: what an agent reads to see
    /// why a service failed. [`Client::logs_tail_from`] chooses the lines.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
    /// for entry in client.logs_tail(id, 20).await? {
    ///     println!("{}", entry.message);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn logs_tail(&self, workload_id: &str, lines: u32) -> Result<Vec<LogEntry>> {
        self.logs_tail_from(workload_id, lines, LogSource::Service)
            .await
    }

    /// The last `lines` lines of the workload's log from `source`, oldest
    /// first. Lines retention dropped are left out (no marker entries).
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
    /// use slipway_sdk::LogSource;
    /// // Slipway's own lines too: the stages, readiness, the exit.
    /// for entry in client.logs_tail_from(id, 50, LogSource::All).await? {
    ///     println!("{:?} {}", entry.stream(), entry.message);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn logs_tail_from(
        &self,
        workload_id: &str,
        lines: u32,
        source: LogSource,
    ) -> Result<Vec<LogEntry>> {
        use slipway::v1::Stream as LogStream;
        let streams = match source {
            LogSource::Service => vec![LogStream::Stdout.into(), LogStream::Stderr.into()],
            LogSource::All => Vec::new(),
        };
        let request = StreamLogsRequest {
            workload_id: workload_id.to_owned(),
            tail: Some(lines),
            streams,
            ..StreamLogsRequest::default()
        };
        let entries = self.stream_logs(request).await?;
        let entries: Vec<Result<LogEntry>> = entries.collect().await;
        entries
            .into_iter()
            .filter(|entry| entry.as_ref().map_or(true, |entry| entry.dropped == 0))
            .collect()
    }
}

/// `Some` when `workload` is in `wanted`; an error when it rests in another
/// terminal stage (with no restart pending).
pub(crate) fn reached(workload: Workload, wanted: Stage) -> Result<Option<Workload>> {
    let stage = workload.stage();
    if stage == wanted {
        return Ok(Some(workload));
    }
    if matches!(stage, Stage::Stopped | Stage::Failed) && workload.next_restart_at.is_none() {
        return Err(Error::UnexpectedStage {
            workload: Box::new(workload),
            wanted,
        });
    }
    Ok(None)
}
