//! CPU and memory of a running workload: for a process, its cgroup's
//! `cpu.stat` and `memory.current` when it has a cgroup of its own, else its
//! `/proc` entries (the leader process alone); for a container, the engine's
//! one-shot stats.

use std::path::{Path, PathBuf};

use bollard::Docker;
use futures::StreamExt;
use tokio::sync::OnceCell;

/// What [`UsageReader::read`] found.
pub struct Usage {
    pub runtime: &'static str,
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
}

/// Reads usage; holds the engine's client once made.
#[derive(Default)]
pub struct UsageReader {
    docker: OnceCell<Option<Docker>>,
}

/// The unit of the times in `/proc/<pid>/stat` (the kernel's USER_HZ, 100 on
/// Linux whatever the kernel's internal tick).
const USER_HZ: f64 = 100.0;

impl UsageReader {
    /// The usage of the workload whose runtime handle is `handle` (a pid or a
    /// container id), or `None` when it cannot be read (gone, no engine).
    pub async fn read(&self, handle: &str) -> Option<Usage> {
        if let Ok(pid) = handle.parse::<u32>() {
            return tokio::task::spawn_blocking(move || process_usage(pid))
                .await
                .ok()
                .flatten();
        }
        let docker = self
            .docker
            .get_or_init(|| async { Docker::connect_with_defaults().ok() })
            .await
            .as_ref()?;
        container_usage(docker, handle).await
    }
}

fn process_usage(pid: u32) -> Option<Usage> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if let Some(mut usage) = cgroup_usage(&proc_dir) {
        if usage.memory_bytes == 0 {
            // No memory controller in the workload's cgroup: the leader's.
            usage.memory_bytes = resident_bytes(&proc_dir).unwrap_or(0);
        }
        return Some(usage);
    }
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Usage {
        runtime: "process",
        cpu_seconds: ticks as f64 / USER_HZ,
        memory_bytes: resident_bytes(&proc_dir).unwrap_or(0),
    })
}

/// The resident set of a process (`VmRSS` of its `status`).
fn resident_bytes(proc_dir: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

/// The usage of the process's cgroup v2, when it is not the server's own
/// (a workload started without cgroups shares the server's).
fn cgroup_usage(proc_dir: &Path) -> Option<Usage> {
    let own = cgroup_path(Path::new("/proc/self"))?;
    let path = cgroup_path(proc_dir)?;
    if path == own || path == "/" {
        return None;
    }
    let relative = path.trim_start_matches('/');
    let directory = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(|mount| Path::new(mount).join(relative))
        .find(|directory| directory.join("cpu.stat").exists())?;
    let cpu_stat = std::fs::read_to_string(directory.join("cpu.stat")).ok()?;
    let usage_usec = cpu_stat
        .lines()
        .find_map(|line| line.strip_prefix("usage_usec "))
        .and_then(|value| value.trim().parse::<u64>().ok())?;
    let memory_bytes = std::fs::read_to_string(directory.join("memory.current"))
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Some(Usage {
        runtime: "process",
        cpu_seconds: usage_usec as f64 / 1e6,
        memory_bytes,
    })
}

/// The cgroup v2 path of a process (the `0::` line of its `cgroup` file).
fn cgroup_path(proc_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_dir.join("cgroup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim().to_owned())
}

async fn container_usage(docker: &Docker, id: &str) -> Option<Usage> {
    let options = bollard::query_parameters::StatsOptions {
        stream: false,
        one_shot: true,
    };
    let stats = docker.stats(id, Some(options)).next().await?.ok()?;
    let cpu_nanos = stats
        .cpu_stats
        .as_ref()
        .and_then(|cpu| cpu.cpu_usage.as_ref())
        .and_then(|usage| usage.total_usage)
        .unwrap_or(0);
    let memory_bytes = stats
        .memory_stats
        .as_ref()
        .and_then(|memory| memory.usage)
        .unwrap_or(0);
    Some(Usage {
        runtime: "docker",
        cpu_seconds: cpu_nanos as f64 / 1e9,
        memory_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_process_has_a_usage() {
        let usage = process_usage(std::process::id()).expect("usage of this process");
        assert_eq!(usage.runtime, "process");
        assert!(
            usage.memory_bytes > 0,
            "a running process has resident memory"
        );
    }
}
