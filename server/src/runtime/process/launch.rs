//! How one program of a process workload is launched: its environment, and
//! what must happen before it runs — entering the workload's cgroup, setting
//! rlimits, becoming the workload's user — done by `/bin/sh` in that order (the
//! first two need the server's privileges), which then `exec`s the program, so
//! the pid, process group and start time stay the same. Also who runs them
//! and with which environment, as the server's settings and the spec say.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

use super::{
    Containment, DEFAULT_ENV_ALLOW, NODE_ENV, ProcessRuntime, WORKLOAD_ENV,
    identity::{self, Identity},
    resolve_program,
};
use crate::{
    domain::{DeploymentSpec, FieldViolation, UserSpec},
    runtime::{RunContext, RuntimeError},
};

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

/// What the server's flags say about process workloads.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    /// The variables of the server's environment passed on to workloads.
    pub env_allow: Vec<String>,
    /// Who a workload whose spec names no user runs as; `None`: the server's user.
    pub default_user: Option<UserSpec>,
    /// This node's id, tagged on every process it starts.
    pub node_tag: Option<String>,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            env_allow: DEFAULT_ENV_ALLOW.split(',').map(str::to_owned).collect(),
            default_user: None,
            node_tag: None,
        }
    }
}

impl ProcessRuntime {
    /// The user a workload of `spec` runs as, and the field that named it.
    fn user_of(&self, spec: &DeploymentSpec) -> Result<Option<(UserSpec, &'static str)>, String> {
        match &spec.user {
            Some(user) => UserSpec::parse(user).map(|user| Some((user, "spec.user"))),
            None => Ok(self
                .default_user
                .clone()
                .map(|user| (user, "--process-user"))),
        }
    }

    /// Resolves who runs the workload's programs; `None` for the server's user.
    pub(super) fn identity(
        &self,
        spec: &DeploymentSpec,
    ) -> Result<Option<(Identity, PathBuf)>, RuntimeError> {
        let Some((user, field)) = self.user_of(spec).map_err(RuntimeError::Invalid)? else {
            return Ok(None);
        };
        let identity = identity::resolve(&user)
            .map_err(|reason| RuntimeError::Invalid(format!("{field}: {reason}")))?;
        if !identity.is_other_than_server() {
            return Ok(None);
        }
        let setpriv = self.setpriv.clone().ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "{field}: running as {user} needs setpriv (util-linux), which is not installed"
            ))
        })?;
        Ok(Some((identity, setpriv)))
    }

    /// What is wrong with the user `spec` names, for the deployment's creation.
    pub(super) fn spec_user_violations(&self, spec: &DeploymentSpec) -> Vec<FieldViolation> {
        // Only the spec's own user (the server's default was checked at
        // start-up), once it is well-formed (`validate_spec` says when not).
        let Some(Ok(user)) = spec.user.as_deref().map(UserSpec::parse) else {
            return Vec::new();
        };
        let problem = match identity::resolve(&user) {
            Ok(identity) if identity.is_other_than_server() && self.setpriv.is_none() => Some(
                format!("running as {user} needs setpriv (util-linux), which is not installed"),
            ),
            Ok(_) => None,
            Err(reason) => Some(reason),
        };
        problem
            .map(|reason| FieldViolation::new("spec.user", reason))
            .into_iter()
            .collect()
    }

    /// The limits of `spec` that cannot be applied, the runtime having no cgroups.
    pub(super) fn limits_without_cgroups(&self, spec: &DeploymentSpec) -> Vec<String> {
        let Containment::TagSweep { reason } = &self.containment else {
            return Vec::new();
        };
        let mut limits = Vec::new();
        if let Some(bytes) = spec.resources.memory_bytes {
            limits.push(format!("memory limit ({bytes} bytes)"));
        }
        if let Some(millicpus) = spec.resources.millicpus {
            limits.push(format!("cpu limit ({millicpus} millicpus)"));
        }
        limits
            .into_iter()
            .map(|what| {
                format!(
                    "{what} not applied: process workloads do not run in cgroups here ({reason})"
                )
            })
            .collect()
    }

    /// How the programs of the workload are launched: their environment (only
    /// what the spec gives, what Slipway sets and the allowed variables of the
    /// server's), their user, their rlimits.
    pub(super) fn launch(&self, context: &RunContext) -> Result<Launch, RuntimeError> {
        let switch = self.identity(&context.spec)?;
        let mut env = self.inherited_env.clone();
        if let Some((identity, _)) = &switch {
            // The server's HOME and USER are not the workload's.
            env.extend(identity.login_env());
        }
        env.extend(context.env());
        if let Some(node) = &self.node_tag {
            env.insert(NODE_ENV.to_owned(), node.clone());
        }
        Ok(Launch {
            env,
            switch,
            max_open_files: context.spec.max_open_files,
        })
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
