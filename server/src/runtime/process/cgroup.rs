//! One cgroup (v2) per process workload, so that a stop reaches every process
//! of the workload, including those that left its process group (`setsid`,
//! double forks): `cgroup.kill` kills the whole cgroup at once.
//!
//! Used when a cgroup v2 hierarchy is mounted, has `cgroup.kill` (Linux 5.14+)
//! and lets this server create a cgroup and move a process into it (root, or a
//! delegated subtree). Otherwise the process runtime falls back to sweeping the
//! processes that carry the workload's tag (see [`super::tagged_processes`]).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::time::Instant;

use crate::domain::{Resources, WorkloadId};

/// The shell that moves itself into the workload's cgroup, then becomes the
/// workload's program (`exec`, so the pid, process group and start time stay
/// the same). Moving the process before it runs anything means none of its
/// children can start outside the cgroup.
const SHELL: &str = super::launch::SHELL;
const ENTER_AND_EXEC: &str = "echo 0 > \"$0\" && exec \"$@\"";

/// The period of `cpu.max`, in microseconds (the kernel's default, and Docker's).
const CPU_PERIOD_MICROS: u64 = 100_000;

/// The controllers whose limits a spec can set (`resources`).
const LIMIT_CONTROLLERS: [&str; 2] = ["memory", "cpu"];

/// Where the workloads' cgroups are made: `<base>/workload-<id>`.
#[derive(Debug, Clone)]
pub struct Cgroups {
    /// Where the cgroup v2 hierarchy is mounted.
    mount: PathBuf,
    base: PathBuf,
    /// Added to each workload's cgroup name: this node's id, so that several
    /// nodes in one cgroup never share a workload's cgroup.
    node: Option<String>,
}

impl Cgroups {
    /// Finds a usable cgroup v2 hierarchy: under this server's own cgroup, a
    /// `slipway` cgroup holding one cgroup per workload. Tries the whole
    /// mechanism once (creates a cgroup, moves a shell into it, removes it).
    /// The error says why cgroups cannot be used here.
    pub fn detect() -> Result<Cgroups, String> {
        let mount = cgroup2_mount().ok_or("no cgroup v2 hierarchy is mounted")?;
        let own = own_cgroup().ok_or("this process is in no cgroup v2 cgroup")?;
        let base = mount.join(own.trim_start_matches('/')).join("slipway");
        std::fs::create_dir_all(&base)
            .map_err(|error| format!("cannot create {}: {error}", base.display()))?;
        let cgroups = Cgroups {
            mount,
            base,
            node: None,
        };
        cgroups.enable_limit_controllers(&own);
        let probe = WorkloadId::generate();
        let directory = cgroups.create(&probe).map_err(|error| {
            format!(
                "cannot create a cgroup under {}: {error}",
                cgroups.base.display()
            )
        })?;
        let result = cgroups.probe(&directory);
        let _ = std::fs::remove_dir(&directory);
        result.map(|()| cgroups)
    }

    /// Turns on the memory and cpu controllers for the workloads' cgroups
    /// where the parents offer them. The server's own cgroup can pass them on
    /// only when it holds no process itself (cgroup v2's rule) or is the root,
    /// so this may not succeed: a limit is then reported as not applied.
    fn enable_limit_controllers(&self, own: &str) {
        let own_directory = self.mount.join(own.trim_start_matches('/'));
        for directory in [own_directory.as_path(), self.base.as_path()] {
            let offered =
                std::fs::read_to_string(directory.join("cgroup.controllers")).unwrap_or_default();
            for controller in LIMIT_CONTROLLERS {
                if !offered.split_whitespace().any(|name| name == controller) {
                    continue;
                }
                if let Err(error) = std::fs::write(
                    directory.join("cgroup.subtree_control"),
                    format!("+{controller}"),
                ) {
                    tracing::debug!(%error, controller, cgroup = %directory.display(), "cannot enable a cgroup controller");
                }
            }
        }
    }

    /// The limit controllers enabled for the workloads' cgroups, for the log.
    pub fn limit_controllers(&self) -> Vec<String> {
        let enabled =
            std::fs::read_to_string(self.base.join("cgroup.subtree_control")).unwrap_or_default();
        enabled
            .split_whitespace()
            .filter(|name| LIMIT_CONTROLLERS.contains(name))
            .map(str::to_owned)
            .collect()
    }

    fn probe(&self, directory: &Path) -> Result<(), String> {
        if !directory.join("cgroup.kill").exists() {
            return Err("the kernel has no cgroup.kill (Linux 5.14 or later needed)".to_owned());
        }
        let status = std::process::Command::new(SHELL)
            .args(["-c", ENTER_AND_EXEC])
            .arg(directory.join("cgroup.procs"))
            .arg("true")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|error| format!("cannot run {SHELL}: {error}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot move a process into a cgroup under {} (not delegated to this user?)",
                self.base.display()
            ))
        }
    }

    /// Where the cgroups are made.
    pub fn base(&self) -> &Path {
        &self.base
    }

    fn directory(&self, workload_id: &WorkloadId) -> PathBuf {
        match &self.node {
            Some(node) => self.base.join(format!("workload-{workload_id}-{node}")),
            None => self.base.join(format!("workload-{workload_id}")),
        }
    }

    /// The same cgroups, named for `node` (see [`Cgroups::directory`]).
    pub fn for_node(mut self, node: Option<String>) -> Self {
        self.node = node;
        self
    }

    /// Creates the workload's cgroup (it may exist already) and returns its
    /// directory.
    pub fn create(&self, workload_id: &WorkloadId) -> std::io::Result<PathBuf> {
        let directory = self.directory(workload_id);
        match std::fs::create_dir(&directory) {
            Ok(()) => Ok(directory),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(directory),
            Err(error) => Err(error),
        }
    }

    /// The `cgroup.procs` of the workload's cgroup: a process that writes 0
    /// into it moves there.
    pub fn procs(&self, workload_id: &WorkloadId) -> PathBuf {
        self.directory(workload_id).join("cgroup.procs")
    }

    /// Applies `resources` to the workload's cgroup (`memory.max`, `cpu.max`);
    /// returns one sentence per limit that could not be applied, and why.
    pub fn apply_limits(&self, workload_id: &WorkloadId, resources: &Resources) -> Vec<String> {
        let directory = self.directory(workload_id);
        let enabled =
            std::fs::read_to_string(self.base.join("cgroup.subtree_control")).unwrap_or_default();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let mut limits = Vec::new();
        if let Some(bytes) = resources.memory_bytes {
            limits.push((
                "memory",
                "memory.max",
                bytes.to_string(),
                format!("memory limit ({bytes} bytes)"),
            ));
        }
        if let Some(millicpus) = resources.millicpus {
            let quota = (u64::from(millicpus) * CPU_PERIOD_MICROS / 1000).max(1000);
            limits.push((
                "cpu",
                "cpu.max",
                format!("{quota} {CPU_PERIOD_MICROS}"),
                format!("cpu limit ({millicpus} millicpus)"),
            ));
        }
        let mut warnings = Vec::new();
        for (controller, file, value, what) in limits {
            if !enabled.contains(&controller) {
                warnings.push(format!(
                    "{what} not applied: the {controller} controller is not enabled for {} (cgroup v2)",
                    self.base.display()
                ));
                continue;
            }
            if let Err(error) = std::fs::write(directory.join(file), &value) {
                warnings.push(format!(
                    "{what} not applied: writing {value:?} to {file} failed: {error}"
                ));
            }
        }
        warnings
    }
    /// The live processes in the workload's cgroup (none if it does not exist).
    pub fn processes(&self, workload_id: &WorkloadId) -> Vec<Pid> {
        std::fs::read_to_string(self.directory(workload_id).join("cgroup.procs"))
            .map(|procs| {
                procs
                    .lines()
                    .filter_map(|line| line.trim().parse::<i32>().ok())
                    .map(Pid::from_raw)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends `signal` to every process in the workload's cgroup.
    pub fn signal(&self, workload_id: &WorkloadId, signal: Signal) {
        for pid in self.processes(workload_id) {
            let _ = nix::sys::signal::kill(pid, signal);
        }
    }

    /// Sends `signal` to every process in the cgroup of `pid`, if that is one
    /// of the workloads' cgroups.
    pub fn signal_cgroup_of(&self, pid: Pid, signal: Signal) {
        let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return;
        };
        let Some(path) = cgroups.lines().find_map(|line| line.strip_prefix("0::")) else {
            return;
        };
        let directory = self.mount.join(path.trim_start_matches('/'));
        if directory.parent() != Some(self.base.as_path()) {
            return;
        }
        let procs = std::fs::read_to_string(directory.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }

    /// Waits, up to `limit`, until no process is left in the cgroup.
    pub async fn wait_empty(&self, workload_id: &WorkloadId, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut delay = Duration::from_millis(5);
        while !self.processes(workload_id).is_empty() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        true
    }

    /// Kills every process in the workload's cgroup at once (`cgroup.kill`),
    /// waits up to `limit` for them to be gone, then removes the cgroup. Does
    /// nothing when the workload has no cgroup.
    pub async fn kill_and_remove(&self, workload_id: &WorkloadId, limit: Duration) {
        let directory = self.directory(workload_id);
        if !directory.exists() {
            return;
        }
        let killed = std::fs::OpenOptions::new()
            .write(true)
            .open(directory.join("cgroup.kill"))
            .and_then(|mut file| file.write_all(b"1"));
        if let Err(error) = killed {
            tracing::warn!(%error, %workload_id, "writing cgroup.kill failed");
            self.signal(workload_id, Signal::SIGKILL);
        }
        if !self.wait_empty(workload_id, limit).await {
            tracing::warn!(%workload_id, cgroup = %directory.display(), "processes are left in the workload's cgroup after cgroup.kill");
            return;
        }
        if let Err(error) = std::fs::remove_dir(&directory) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%error, %workload_id, cgroup = %directory.display(), "removing the workload's cgroup failed");
            }
        }
    }
}

/// The mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup` on a unified
/// system, `/sys/fs/cgroup/unified` on a hybrid one).
fn cgroup2_mount() -> Option<PathBuf> {
    cgroup2_mount_in(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

/// The first cgroup2 mount point listed in `mountinfo` (/proc/PID/mountinfo).
fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let filesystem = after.split_whitespace().next()?;
        (filesystem == "cgroup2").then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// This process's cgroup in the v2 hierarchy (the `0::` line of /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    own_cgroup_in(&std::fs::read_to_string("/proc/self/cgroup").ok()?)
}

fn own_cgroup_in(cgroups: &str) -> Option<String> {
    cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let unified =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mount_in(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = "\
            31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            32 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1_only = "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(cgroup2_mount_in(v1_only), None);
    }

    #[test]
    fn the_own_cgroup_is_the_v2_line() {
        let hybrid = "4:memory:/process_api/e976\n0::/system.slice/slipway.service\n";
        assert_eq!(
            own_cgroup_in(hybrid).as_deref(),
            Some("/system.slice/slipway.service")
        );
        assert_eq!(own_cgroup_in("4:memory:/x\n"), None);
    }

    #[test]
    fn the_procs_file_is_in_the_workloads_cgroup() {
        let cgroups = Cgroups {
            mount: PathBuf::from("/sys/fs/cgroup"),
            base: PathBuf::from("/sys/fs/cgroup/slipway"),
            node: None,
        };
        let id = WorkloadId::generate();
        assert_eq!(
            cgroups.procs(&id),
            PathBuf::from(format!("/sys/fs/cgroup/slipway/workload-{id}/cgroup.procs"))
        );
    }

    #[test]
    fn limits_without_their_controller_are_reported() {
        let temp = tempfile::TempDir::new().expect("tempdir");
        let cgroups = Cgroups {
            mount: temp.path().to_path_buf(),
            base: temp.path().join("slipway"),
            node: None,
        };
        let id = WorkloadId::generate();
        std::fs::create_dir_all(cgroups.directory(&id)).expect("cgroup");
        std::fs::write(cgroups.base.join("cgroup.subtree_control"), "cpu\n").expect("control");
        let resources = Resources {
            memory_bytes: Some(64 * 1024 * 1024),
            millicpus: Some(500),
        };
        let warnings = cgroups.apply_limits(&id, &resources);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "memory limit (67108864 bytes) not applied: the memory controller is not enabled"
            ),
            "{warnings:?}"
        );
        let cpu_max =
            std::fs::read_to_string(cgroups.directory(&id).join("cpu.max")).expect("cpu.max");
        assert_eq!(cpu_max, "50000 100000");
    }
}
