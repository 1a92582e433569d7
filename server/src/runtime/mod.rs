//! Runtimes: where workloads run. One trait, implemented by local processes
//! ([`process::ProcessRuntime`]) and Docker containers ([`docker::DockerRuntime`]).

pub mod docker;
#[cfg(test)]
pub mod fake;
mod output;
pub mod process;

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    domain::{DeploymentId, DeploymentSpec, FieldViolation, NodeId, RuntimeKind, WorkloadId},
    logs::LogSink,
};

/// Everything a runtime needs to run one generation of a workload.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub workload_id: WorkloadId,
    pub deployment_id: DeploymentId,
    pub deployment_name: String,
    pub generation: u64,
    /// The service directory, resolved and checked to be inside the server's root.
    pub service_dir: PathBuf,
    pub spec: DeploymentSpec,
    /// The port from the pool, when the spec listens.
    pub port: Option<u16>,
}

impl RunContext {
    /// The environment of build steps and of a process workload: see
    /// [`RunContext::env_listening_on`], with `PORT` the port from the pool.
    pub fn env(&self) -> BTreeMap<String, String> {
        self.env_listening_on(self.port)
    }

    /// The environment of the workload, for every runtime: the spec's env, its
    /// secret env, and `PORT` set to `port` (where the workload listens: the port
    /// from the pool for a process, the container port for a container).
    /// This is the one place a workload's environment is made.
    pub fn env_listening_on(&self, port: Option<u16>) -> BTreeMap<String, String> {
        let mut env = self.spec.full_env();
        if let Some(port) = port {
            env.insert("PORT".to_owned(), port.to_string());
        }
        env
    }
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Killed for running out of memory.
    pub oom_killed: bool,
}

impl ExitStatus {
    /// "exited with code 1", "killed by signal 9", …
    pub fn describe(&self) -> String {
        match (self.oom_killed, self.code, self.signal) {
            (true, _, _) => "killed: out of memory".to_owned(),
            (false, Some(code), _) => format!("exited with code {code}"),
            (false, None, Some(signal)) => format!("killed by signal {signal}"),
            (false, None, None) => "exited".to_owned(),
        }
    }

    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.oom_killed
    }
}

/// Identifies a started instance across restarts of Slipway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeHandle {
    /// A pid or a container id.
    pub runtime_id: String,
    /// For processes: the start time of the pid, so a reused pid is not mistaken
    /// for the instance.
    pub process_start_time: Option<u64>,
}

/// A started instance: its handle, where its service answers and, once it has
/// exited, how.
#[derive(Debug, Clone)]
pub struct Instance {
    pub handle: RuntimeHandle,
    exit: watch::Receiver<Option<ExitStatus>>,
    probe_address: Option<SocketAddr>,
    warnings: Vec<String>,
}

impl Instance {
    /// An instance with no address to probe; see [`Instance::with_probe_address`].
    pub fn new(handle: RuntimeHandle, exit: watch::Receiver<Option<ExitStatus>>) -> Self {
        Self {
            handle,
            exit,
            probe_address: None,
            warnings: Vec::new(),
        }
    }

    /// The same instance, with what the runtime could not apply as the spec
    /// asks (one sentence each): the workload reports them.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    /// What the runtime could not apply to this instance as the spec asks.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The same instance, probed at `address`.
    pub fn with_probe_address(mut self, address: Option<SocketAddr>) -> Self {
        self.probe_address = address;
        self
    }

    /// Where readiness and TCP/HTTP liveness checks reach the workload's service
    /// itself, not a proxy in front of it: 127.0.0.1 and the port from the pool for
    /// a process, the container's address on its network and its container port
    /// for a container. `None` when the workload does not listen.
    pub fn probe_address(&self) -> Option<SocketAddr> {
        self.probe_address
    }

    /// Waits until the instance has exited and its output has been read.
    pub async fn exited(&self) -> ExitStatus {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or_default(),
            // The watcher is gone without a status: treat as exited.
            Err(_) => ExitStatus::default(),
        }
    }

    /// How it exited, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }
}

/// Where an adopted instance's output continues: after the line at `timestamp`,
/// of which `seen` lines are stored already (lines can share a timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogResume {
    pub timestamp: Option<crate::domain::Timestamp>,
    pub seen: u64,
}

/// What became of an instance found at start-up, left by an earlier Slipway.
#[derive(Debug)]
pub enum Reclaimed {
    /// Still running and taken over: its output is followed again.
    Adopted(Instance),
    /// Still running but could not be taken over, so it was stopped.
    Stopped,
    /// Not there any more.
    Gone,
}

/// What an instance's own health check says (an image's `HEALTHCHECK`, run by
/// the engine), as opposed to the checks of the deployment's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnHealth {
    /// The instance has no health check of its own.
    NoCheck,
    /// It has one, and no verdict yet.
    Starting,
    /// Its check passes.
    Healthy,
    /// Its check failed as often as it allows; the reason is the check's last output.
    Unhealthy(String),
}

/// Why a runtime operation failed. The message is for users.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The workload cannot run as specified.
    #[error("{0}")]
    Invalid(String),
    /// A build step failed.
    #[error("{0}")]
    Build(String),
    /// The instance could not be started.
    #[error("{0}")]
    Start(String),
    /// The runtime's engine cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The host port handed to the instance turned out to be taken.
    #[error("{0}")]
    PortTaken(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A place where workloads run.
///
/// Cancelling (dropping) a future of `validate`, `build` or `start` must leave
/// nothing behind: a build step's processes are killed.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// Whether instances keep running when Slipway stops, to be adopted when it
    /// starts again (containers do; processes cannot have their pipes re-attached).
    fn instances_outlive_slipway(&self) -> bool {
        false
    }

    /// What is wrong with `spec` that this runtime can tell at once, when a
    /// deployment is created (an unknown user, …), naming the fields. May read
    /// local files (the user database). The default finds nothing.
    fn check_spec(&self, _spec: &DeploymentSpec) -> Vec<FieldViolation> {
        Vec::new()
    }

    /// Checks that the workload can run (files, programs, engine), without side effects.
    async fn validate(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError>;

    /// Runs the build; its output goes to `logs`. Fails with the reason when a step fails.
    async fn build(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError>;

    /// Starts an instance; its output goes to `logs` until it exits.
    async fn start(&self, context: &RunContext, logs: &LogSink) -> Result<Instance, RuntimeError>;

    /// Stops an instance: `signal` (a name like `SIGTERM`), up to `grace` for it
    /// to exit, then a kill. Returns once it has exited.
    async fn stop(
        &self,
        instance: &Instance,
        signal: &str,
        grace: Duration,
    ) -> Result<ExitStatus, RuntimeError>;

    /// Runs `command` for a health check, in the service directory (process) or
    /// in the container; `Ok(true)` when it exits 0 within `timeout`.
    async fn exec(
        &self,
        context: &RunContext,
        instance: &Instance,
        command: &[String],
        timeout: Duration,
    ) -> Result<bool, RuntimeError>;

    /// What the instance's own health check says (an image's `HEALTHCHECK`).
    /// Runtimes without such checks need not implement it: the default says
    /// there is none.
    async fn own_health(&self, _instance: &Instance) -> Result<OwnHealth, RuntimeError> {
        Ok(OwnHealth::NoCheck)
    }

    /// Deals with an instance an earlier Slipway left running: adopts it when the
    /// runtime can follow it again, else stops it (`grace` as for `stop`).
    /// Output of an adopted instance continues after `resume`.
    async fn reclaim(
        &self,
        handle: &RuntimeHandle,
        logs: &LogSink,
        resume: LogResume,
        grace: Duration,
    ) -> Result<Reclaimed, RuntimeError>;

    /// Removes what the runtime keeps for a workload that is deleted (its
    /// containers); its instance is already stopped.
    async fn remove(&self, workload_id: &WorkloadId) -> Result<(), RuntimeError>;

    /// The workloads with instances on this host that `node` started (an
    /// earlier run of this node, whose instances outlived it), each once or
    /// more. A runtime that tags nothing with the node finds none.
    async fn workloads_started_by(&self, _node: &NodeId) -> Result<Vec<WorkloadId>, RuntimeError> {
        Ok(Vec::new())
    }

    /// Kills and removes the instances of `workload_id` that `node` started,
    /// writing nothing about them (the workload is another node's now).
    async fn remove_started_by(
        &self,
        _node: &NodeId,
        _workload_id: &WorkloadId,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }
}
