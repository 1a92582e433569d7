//! The process runtime: each workload is a local process in its own process group,
//! so that a stop reaches its children too. Needs nothing installed.
//!
//! What a stop reaches beyond the group depends on the host, decided once at
//! start-up ([`Containment`]): on Linux with a usable cgroup v2 hierarchy each
//! workload runs in its own cgroup, killed as a whole; elsewhere the processes
//! carrying the workload's tag ([`WORKLOAD_ENV`]) are swept after the group kill.

mod cgroup;
mod containment;
mod identity;
mod launch;
mod pipes;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use async_trait::async_trait;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{process::Command, sync::watch, time::Instant};

pub use self::cgroup::Cgroups;
pub use self::containment::{Containment, processes_of_node, tagged_processes};
use self::containment::{kill_leftovers, stop_tagged};
pub use self::identity::{DEFAULT_ENV_ALLOW, DEFAULT_PATH, Identity};
pub use self::launch::ProcessSettings;
use self::pipes::{IDLE_PIPE_LIMIT, PipeReader, drain, spawn_reader};
use super::{
    ExitStatus, Instance, LogResume, Reclaimed, RunContext, Runtime, RuntimeError, RuntimeHandle,
    output::forward_lines,
};
use crate::{
    domain::{
        DeploymentSpec, FieldViolation, LogLevel, LogStream, NodeId, RuntimeKind, UserSpec,
        WorkloadId,
    },
    logs::LogSink,
};

/// The environment variable that carries the workload id into its processes.
pub const WORKLOAD_ENV: &str = "SLIPWAY_WORKLOAD_ID";
/// The tag of the node that started a workload's processes (when it knows
/// its id): a stop on one node never touches another node's processes.
pub const NODE_ENV: &str = "SLIPWAY_NODE_ID";

/// How long to wait for a killed process group to be gone.
pub(super) const KILL_WAIT: Duration = Duration::from_secs(5);

/// Runs workloads as local process groups.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    containment: Containment,
    /// What workloads inherit from the server's environment (taken once).
    inherited_env: BTreeMap<String, String>,
    /// Who a workload whose spec names no user runs as; `None`: the server's user.
    default_user: Option<UserSpec>,
    setpriv: Option<PathBuf>,
    /// This node's id, tagged on every process (see [`NODE_ENV`]).
    node_tag: Option<String>,
}

impl Default for ProcessRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessRuntime {
    /// A runtime that uses cgroups where it can (decided now, and logged).
    pub fn new() -> Self {
        let containment = Containment::detect();
        containment.log();
        Self::with_containment(containment)
    }

    /// A runtime that contains workloads as `containment` says, with the
    /// default settings.
    pub fn with_containment(containment: Containment) -> Self {
        let settings = ProcessSettings::default();
        Self {
            containment,
            inherited_env: identity::inherited_env(&settings.env_allow, std::env::vars()),
            default_user: None,
            node_tag: None,
            setpriv: identity::find_setpriv(),
        }
    }

    /// The same runtime with `settings`; the server's environment is read now.
    /// Fails when the default user cannot be used (unknown, or this server
    /// may not become it).
    pub fn with_settings(mut self, settings: ProcessSettings) -> Result<Self, String> {
        self.inherited_env = identity::inherited_env(&settings.env_allow, std::env::vars());
        if let Some(user) = &settings.default_user {
            let identity = identity::resolve(user)?;
            if identity.is_other_than_server() && self.setpriv.is_none() {
                return Err(format!(
                    "running workloads as {user} needs setpriv (util-linux), which is not installed"
                ));
            }
        }
        self.default_user = settings.default_user;
        if let Containment::Cgroup(cgroups) = &mut self.containment {
            *cgroups = cgroups.clone().for_node(settings.node_tag.clone());
        }
        self.node_tag = settings.node_tag;
        Ok(self)
    }

    fn cgroups(&self) -> Option<&Cgroups> {
        match &self.containment {
            Containment::Cgroup(cgroups) => Some(cgroups),
            Containment::TagSweep { .. } => None,
        }
    }
}

/// Finds `program` as `execve` would after a `PATH` search, from `directory` for
/// a relative path with a slash.
fn resolve_program(program: &str, directory: &Path, path_var: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = directory.join(program);
        return is_executable(&candidate).then_some(candidate);
    }
    let search = path_var
        .map(str::to_owned)
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    search
        .split(':')
        .filter(|entry| !entry.is_empty())
        .map(|entry| directory.join(entry).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether any process of the group is still there (zombies count until reaped).
fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}

fn signal_group(pgid: Pid, signal: Signal) {
    if let Err(error) = killpg(pgid, signal) {
        if error != nix::errno::Errno::ESRCH {
            tracing::warn!(%error, pgid = pgid.as_raw(), ?signal, "signalling a process group failed");
        }
    }
}

/// Waits, up to `limit`, for the group to be gone.
async fn wait_group_gone(pgid: Pid, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_millis(5);
    while group_alive(pgid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
    true
}

/// Kills a process group when dropped, unless disarmed: a build step whose future
/// is dropped (the workload was stopped) leaves nothing behind.
struct KillOnDrop {
    pgid: Option<Pid>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Spawns `command`, forwarding its output to `logs`; returns the child's pid and
/// the tasks reading its output.
fn spawn_logged(
    mut command: Command,
    logs: &LogSink,
    what: &str,
) -> Result<(tokio::process::Child, u32, Vec<PipeReader>), RuntimeError> {
    let mut child = command.spawn().map_err(|source| RuntimeError::Io {
        context: format!("starting {what}"),
        source,
    })?;
    let pid = child
        .id()
        .ok_or_else(|| RuntimeError::Start(format!("{what} exited before it could be watched")))?;
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let logs = logs.clone();
        readers.push(spawn_reader(stdout, LogStream::Stdout, |pipe| {
            forward_lines(pipe, LogStream::Stdout, logs)
        }));
    }
    if let Some(stderr) = child.stderr.take() {
        let logs = logs.clone();
        readers.push(spawn_reader(stderr, LogStream::Stderr, |pipe| {
            forward_lines(pipe, LogStream::Stderr, logs)
        }));
    }
    Ok((child, pid, readers))
}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus {
        code: status.code(),
        signal: status.signal(),
        oom_killed: false,
    }
}

fn pid_of(handle: &RuntimeHandle) -> Option<Pid> {
    handle
        .runtime_id
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 1)
        .map(Pid::from_raw)
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    fn check_spec(&self, spec: &DeploymentSpec) -> Vec<FieldViolation> {
        self.spec_user_violations(spec)
    }

    async fn validate(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError> {
        if !context.service_dir.is_dir() {
            return Err(RuntimeError::Invalid(format!(
                "service directory {} does not exist",
                context.service_dir.display()
            )));
        }
        let launch = self.launch(context)?;
        if let Some((identity, _)) = &launch.switch {
            logs.system(
                LogLevel::Info,
                format!(
                    "runs as {} (uid {}, gid {})",
                    identity.shown, identity.uid, identity.gid
                ),
            )
            .await;
        }
        let path_var = launch.env.get("PATH").map(String::as_str);
        // A program given by a path may be made by an earlier build step: it is
        // checked once that step has run. A program looked up on PATH must be there now.
        let steps = context
            .spec
            .build
            .iter()
            .map(|step| ("build step", &step.command));
        let programs = steps.chain([("command", &context.spec.command)]);
        for (index, (what, argv)) in programs.enumerate() {
            let program = argv.first().map(String::as_str).unwrap_or_default();
            if program.contains('/') && index > 0 {
                continue;
            }
            match resolve_program(program, &context.service_dir, path_var) {
                Some(path) => {
                    logs.system(
                        LogLevel::Debug,
                        format!("{what} program {program} is {}", path.display()),
                    )
                    .await;
                }
                None => {
                    return Err(RuntimeError::Invalid(format!(
                        "{what} program {program:?} not found or not executable"
                    )));
                }
            }
        }
        Ok(())
    }

    async fn build(&self, context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError> {
        let launch = self.launch(context)?;
        let total = context.spec.build.len();
        for (index, step) in context.spec.build.iter().enumerate() {
            let shown = step.command.join(" ");
            logs.system(
                LogLevel::Info,
                format!("build step {}/{total}: {shown}", index + 1),
            )
            .await;
            let command = launch.command(&step.command, context, None)?;
            let (mut child, pid, readers) = spawn_logged(command, logs, "a build step")?;
            let mut guard = KillOnDrop {
                pgid: Some(Pid::from_raw(pid as i32)),
            };
            let status = child.wait().await.map_err(|source| RuntimeError::Io {
                context: "waiting for a build step".to_owned(),
                source,
            })?;
            // The step is over: kill what it left in its group, then read the rest.
            if let Some(pgid) = guard.pgid.take() {
                signal_group(pgid, Signal::SIGKILL);
            }
            drain(readers, logs, IDLE_PIPE_LIMIT).await;
            let status = exit_status(status);
            if !status.success() {
                return Err(RuntimeError::Build(format!(
                    "build step {}/{total} ({shown}) {}",
                    index + 1,
                    status.describe()
                )));
            }
        }
        Ok(())
    }

    async fn start(&self, context: &RunContext, logs: &LogSink) -> Result<Instance, RuntimeError> {
        let launch = self.launch(context)?;
        let cgroups = self.cgroups().cloned();
        let (command, warnings) = match &cgroups {
            Some(cgroups) => {
                cgroups
                    .create(&context.workload_id)
                    .map_err(|source| RuntimeError::Io {
                        context: "creating the workload's cgroup".to_owned(),
                        source,
                    })?;
                let warnings = cgroups.apply_limits(&context.workload_id, &context.spec.resources);
                let procs = cgroups.procs(&context.workload_id);
                let command = launch.command(&context.spec.command, context, Some(&procs))?;
                (command, warnings)
            }
            None => {
                let command = launch.command(&context.spec.command, context, None)?;
                (command, self.limits_without_cgroups(&context.spec))
            }
        };
        let (mut child, pid, readers) = spawn_logged(command, logs, "the workload")?;
        let logs = logs.clone();
        let handle = RuntimeHandle {
            runtime_id: pid.to_string(),
            process_start_time: process_start_time(pid),
        };
        let (exit_sender, exit) = watch::channel(None);
        let workload_id = context.workload_id.clone();
        let node_tag = self.node_tag.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(error) => {
                    tracing::error!(%error, %workload_id, pid, "waiting for the workload failed");
                    ExitStatus::default()
                }
            };
            // Like a container whose first process exits: the rest of the group
            // goes too, and so does every process that left the group.
            let pgid = Pid::from_raw(pid as i32);
            signal_group(pgid, Signal::SIGKILL);
            wait_group_gone(pgid, KILL_WAIT).await;
            kill_leftovers(cgroups.as_ref(), &workload_id, node_tag.as_deref()).await;
            // Every line still in the pipes is read, however slow the log is.
            drain(readers, &logs, IDLE_PIPE_LIMIT).await;
            exit_sender.send_replace(Some(status));
        });
        let probe_address = context
            .port
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        Ok(Instance::new(handle, exit)
            .with_probe_address(probe_address)
            .with_warnings(warnings))
    }

    async fn stop(
        &self,
        instance: &Instance,
        signal: &str,
        grace: Duration,
    ) -> Result<ExitStatus, RuntimeError> {
        let Some(pgid) = pid_of(&instance.handle) else {
            return Ok(instance.exited().await);
        };
        if let Some(status) = instance.exit_status() {
            return Ok(status);
        }
        let first = signal.parse::<Signal>().unwrap_or(Signal::SIGTERM);
        signal_group(pgid, first);
        // Processes that left the group get the same signal and grace period.
        if let Some(cgroups) = self.cgroups() {
            cgroups.signal_cgroup_of(pgid, first);
        }
        if let Ok(status) = tokio::time::timeout(grace, instance.exited()).await {
            return Ok(status);
        }
        signal_group(pgid, Signal::SIGKILL);
        let status = instance.exited().await;
        Ok(status)
    }

    async fn exec(
        &self,
        context: &RunContext,
        _instance: &Instance,
        command: &[String],
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let mut command = self.launch(context)?.command(command, context, None)?;
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = command.spawn().map_err(|source| RuntimeError::Io {
            context: "starting a health check".to_owned(),
            source,
        })?;
        let pgid = child.id().map(|pid| Pid::from_raw(pid as i32));
        let _guard = KillOnDrop { pgid };
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => Ok(status.success()),
            Ok(Err(source)) => Err(RuntimeError::Io {
                context: "waiting for a health check".to_owned(),
                source,
            }),
            // The guard kills it.
            Err(_elapsed) => Ok(false),
        }
    }

    async fn reclaim(
        &self,
        handle: &RuntimeHandle,
        logs: &LogSink,
        _resume: LogResume,
        grace: Duration,
    ) -> Result<Reclaimed, RuntimeError> {
        let workload_id = logs.workload_id();
        if let Some(cgroups) = self.cgroups() {
            cgroups.signal(workload_id, Signal::SIGTERM);
        }
        let leftovers = stop_tagged(workload_id, self.node_tag.as_deref(), grace).await;
        if let Some(cgroups) = self.cgroups() {
            cgroups.kill_and_remove(workload_id, KILL_WAIT).await;
        }
        let Some(pgid) = pid_of(handle) else {
            return Ok(if leftovers > 0 {
                Reclaimed::Stopped
            } else {
                Reclaimed::Gone
            });
        };
        let pid = pgid.as_raw() as u32;
        let same_process = handle.process_start_time.is_some()
            && process_start_time(pid) == handle.process_start_time;
        if !same_process {
            return Ok(if leftovers > 0 {
                Reclaimed::Stopped
            } else {
                Reclaimed::Gone
            });
        }
        logs.system(
            LogLevel::Warn,
            format!("process {pid} outlived the previous slipway: its output cannot be re-attached, stopping it"),
        )
        .await;
        signal_group(pgid, Signal::SIGTERM);
        if !wait_group_gone(pgid, grace).await {
            signal_group(pgid, Signal::SIGKILL);
            wait_group_gone(pgid, KILL_WAIT).await;
        }
        Ok(Reclaimed::Stopped)
    }

    async fn workloads_started_by(&self, node: &NodeId) -> Result<Vec<WorkloadId>, RuntimeError> {
        let node = node.to_string();
        Ok(
            tokio::task::spawn_blocking(move || processes_of_node(&node))
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|(_, workload_id)| workload_id)
                .collect(),
        )
    }

    async fn remove_started_by(
        &self,
        node: &NodeId,
        workload_id: &WorkloadId,
    ) -> Result<(), RuntimeError> {
        let node = node.to_string();
        let workload_id = workload_id.clone();
        let found = tokio::task::spawn_blocking(move || processes_of_node(&node))
            .await
            .unwrap_or_default();
        for (pid, _) in found.into_iter().filter(|(_, id)| *id == workload_id) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        Ok(())
    }

    async fn remove(&self, workload_id: &WorkloadId) -> Result<(), RuntimeError> {
        // A stopped workload leaves nothing behind, unless a process escaped its
        // group (setsid) or an earlier Slipway left one: those go now.
        stop_tagged(
            workload_id,
            self.node_tag.as_deref(),
            Duration::from_secs(5),
        )
        .await;
        if let Some(cgroups) = self.cgroups() {
            cgroups.kill_and_remove(workload_id, KILL_WAIT).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_on_path_and_relative_to_the_directory() {
        let directory = std::env::temp_dir();
        assert!(resolve_program("sh", &directory, None).is_some());
        assert!(resolve_program("definitely-not-a-program-slipway", &directory, None).is_none());
        assert!(resolve_program("./definitely-not-here", &directory, None).is_none());
    }

    #[test]
    fn our_own_start_time_is_readable() {
        assert!(process_start_time(std::process::id()).is_some());
    }
}
