//! How a stop reaches the processes of a workload that left its process group:
//! its cgroup, or the processes carrying its tag.

use std::time::Duration;

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::time::Instant;

use super::{Cgroups, KILL_WAIT, NODE_ENV, WORKLOAD_ENV};
use crate::domain::WorkloadId;

/// The pids of live processes whose environment names `workload_id` (read from
/// /proc; processes of other users cannot be read and are not ours).
///
/// With `node`, a process tagged by another node ([`NODE_ENV`]) is not one:
/// several nodes on one host may each run a generation of the same workload.
pub fn tagged_processes(workload_id: &WorkloadId, node: Option<&str>) -> Vec<Pid> {
    let wanted = format!("{WORKLOAD_ENV}={workload_id}");
    let node_prefix = format!("{NODE_ENV}=");
    let own_node = node.map(|node| format!("{NODE_ENV}={node}"));
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                let mut entries = environ.split(|byte| *byte == 0);
                let tagged = entries.clone().any(|entry| entry == wanted.as_bytes());
                let other_node = own_node.as_ref().is_some_and(|own| {
                    entries.any(|entry| {
                        entry.starts_with(node_prefix.as_bytes()) && entry != own.as_bytes()
                    })
                });
                tagged && !other_node
            })
        })
        .map(Pid::from_raw)
        .collect()
}

/// Live processes that `node` started (tagged [`NODE_ENV`]`=node`), each with
/// the workload it belongs to.
pub fn processes_of_node(node: &str) -> Vec<(Pid, WorkloadId)> {
    let node_tag = format!("{NODE_ENV}={node}");
    let workload_prefix = format!("{WORKLOAD_ENV}=");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32)
        .filter_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let mut entries = environ.split(|byte| *byte == 0);
            if !entries.clone().any(|entry| entry == node_tag.as_bytes()) {
                return None;
            }
            let workload =
                entries.find_map(|entry| entry.strip_prefix(workload_prefix.as_bytes()))?;
            let workload = WorkloadId::parse(std::str::from_utf8(workload).ok()?).ok()?;
            Some((Pid::from_raw(pid), workload))
        })
        .collect()
}

/// Stops every tagged process of a workload: SIGTERM, up to `grace`, SIGKILL.
pub(super) async fn stop_tagged(
    workload_id: &WorkloadId,
    node: Option<&str>,
    grace: Duration,
) -> usize {
    let found = tagged_processes(workload_id, node);
    if found.is_empty() {
        return 0;
    }
    for pid in &found {
        let _ = nix::sys::signal::kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while !tagged_processes(workload_id, node).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in tagged_processes(workload_id, node) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + KILL_WAIT;
    while !tagged_processes(workload_id, node).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    found.len()
}

/// How a stop reaches the processes of a workload that left its process group.
#[derive(Debug, Clone)]
pub enum Containment {
    /// Each workload in its own cgroup, killed as a whole with `cgroup.kill`.
    Cgroup(Cgroups),
    /// After the group kill, the processes carrying the workload's tag are killed.
    TagSweep {
        /// Why cgroups are not used.
        reason: String,
    },
}

impl Containment {
    /// Cgroups where they can be used (see [`Cgroups::detect`]), else the sweep.
    pub fn detect() -> Containment {
        match Cgroups::detect() {
            Ok(cgroups) => Containment::Cgroup(cgroups),
            Err(reason) => Containment::TagSweep { reason },
        }
    }

    /// Logs which applies (once, at server start).
    pub fn log(&self) {
        match self {
            Containment::Cgroup(cgroups) => tracing::info!(
                cgroups = %cgroups.base().display(),
                limit_controllers = ?cgroups.limit_controllers(),
                "process workloads run each in its own cgroup (v2); a stop kills the whole cgroup"
            ),
            Containment::TagSweep { reason } => tracing::info!(
                %reason,
                "cgroups are not used; a stop kills the process group, then every process tagged {WORKLOAD_ENV}=<id>"
            ),
        }
    }
}

/// Kills what is left of a workload whose main process has exited or is being
/// killed: its cgroup as a whole, or else the processes that carry its tag.
pub(super) async fn kill_leftovers(
    cgroups: Option<&Cgroups>,
    workload_id: &WorkloadId,
    node: Option<&str>,
) {
    match cgroups {
        Some(cgroups) => cgroups.kill_and_remove(workload_id, KILL_WAIT).await,
        None => {
            stop_tagged(workload_id, node, Duration::ZERO).await;
        }
    }
}
