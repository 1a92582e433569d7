//! How one program of a process workload is launched: its environment, and
//! what must happen before it runs — entering the workload's cgroup, setting
//! rlimits, becoming the workload's user — done by `/bin/sh` in that order (the
//! first two need the server's privileges), which then `exec`s the program, so
//! the pid, process group and start time stay the same.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

use super::{WORKLOAD_ENV, identity::Identity, resolve_program};
use crate::runtime::{RunContext, RuntimeError};

/// The shell that prepares the process, then becomes the program.
pub(super) const SHELL: &str = "/bin/sh";

/// How the programs of one workload are launched.
#[derive(Debug, Clone)]
pub(super) struct Launch {
    /// The whole environment: what is inherited from the server, the user's
    /// login variables, the spec's env and secrets, `PORT`.
    pub env: BTreeMap<String, String>,
    /// Who runs the programs, with the `setpriv` that makes them so, when not
    /// the server's user.
    pub switch: Option<(Identity, PathBuf)>,
    /// RLIMIT_NOFILE, when the spec sets it.
    pub max_open_files: Option<u64>,
}

impl Launch {
    /// The command that runs `argv` in the service directory; with
    /// `cgroup_procs` (the `cgroup.procs` of the workload's cgroup), the
    /// process enters that cgroup before anything else, so none of its
    /// children can start outside it.
    pub fn command(
        &self,
        argv: &[String],
        context: &RunContext,
        cgroup_procs: Option<&Path>,
    ) -> Result<Command, RuntimeError> {
        let (program, arguments) = argv
            .split_first()
            .ok_or_else(|| RuntimeError::Invalid("the command is empty".to_owned()))?;
        let resolved = resolve_program(
            program,
            &context.service_dir,
            self.env.get("PATH").map(String::as_str),
        )
        .ok_or_else(|| {
            RuntimeError::Invalid(format!("program {program:?} not found or not executable"))
        })?;
        let mut full = Vec::with_capacity(argv.len() + 5);
        if let Some((identity, setpriv)) = &self.switch {
            full.push(setpriv.to_string_lossy().into_owned());
            full.extend(identity.setpriv_arguments());
        }
        full.push(resolved.to_string_lossy().into_owned());
        full.extend(arguments.iter().cloned());
        let script = script(cgroup_procs.is_some(), self.max_open_files);
        let mut command = match script {
            Some(script) => {
                let mut command = Command::new(SHELL);
                let zero = cgroup_procs
                    .map(|procs| procs.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "slipway-launch".to_owned());
                command.arg("-c").arg(script).arg(zero).args(&full);
                command
            }
            None => {
                let mut command = Command::new(&full[0]);
                command.args(&full[1..]);
                command
            }
        };
        command
            .current_dir(&context.service_dir)
            // Nothing of the server's environment but what `env` holds.
            .env_clear()
            .envs(&self.env)
            // Marks every process of the workload, build steps included, so that one
            // left behind by an earlier Slipway can be found and stopped.
            .env(WORKLOAD_ENV, context.workload_id.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        Ok(command)
    }
}

/// The launching shell's script, run with `$0` the cgroup's `cgroup.procs` and
/// `"$@"` the program (behind `setpriv`, when switching users); `None` when
/// there is nothing to do before the program. Only numbers are put into it.
fn script(enter_cgroup: bool, max_open_files: Option<u64>) -> Option<String> {
    let mut steps = Vec::new();
    if enter_cgroup {
        steps.push("echo 0 > \"$0\"".to_owned());
    }
    if let Some(files) = max_open_files {
        // Soft and hard limit alike; raised as the server (root) if need be,
        // before setpriv drops the privileges.
        steps.push(format!("ulimit -n {files}"));
    }
    if steps.is_empty() {
        return None;
    }
    steps.push("exec \"$@\"".to_owned());
    Some(steps.join(" && "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_enters_the_cgroup_then_sets_limits_then_runs_the_program() {
        assert_eq!(script(false, None), None);
        assert_eq!(
            script(true, Some(1024)).as_deref(),
            Some("echo 0 > \"$0\" && ulimit -n 1024 && exec \"$@\"")
        );
        assert_eq!(
            script(false, Some(64)).as_deref(),
            Some("ulimit -n 64 && exec \"$@\"")
        );
    }
}
