//! Health history: each liveness check of a workload, what it says over a
//! window (uptime), and what a deployment's workloads say together (healthy,
//! degraded or unavailable).

use std::time::Duration;

use super::{Health, Stage, Timestamp, Workload, WorkloadId};

/// One liveness check of a workload's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub workload_id: WorkloadId,
    pub generation: u64,
    /// When the check started.
    pub at: Timestamp,
    pub passed: bool,
    /// How long the check took (to its answer, or to its timeout).
    pub response_time: Duration,
    /// Why it failed; empty when it passed.
    pub reason: String,
}

/// What a workload's checks in a window say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Uptime {
    /// Checks in the window.
    pub checks: u64,
    /// Of them, those that passed.
    pub passed: u64,
    /// The mean response time of the checks in the window.
    pub mean_response_time: Duration,
    /// The oldest check in the window, when there is one.
    pub first_check_at: Option<Timestamp>,
}

impl Uptime {
    /// The share of checks that passed, from 0 to 1; none without checks.
    pub fn ratio(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.passed as f64 / self.checks as f64)
    }
}

/// What a deployment's workloads say together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentHealthState {
    /// Every workload that should run runs and passes its checks.
    Healthy,
    /// Some do, some do not.
    Degraded,
    /// None does (nothing should run, or nothing that should run does).
    Unavailable,
}

impl DeploymentHealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentHealthState::Healthy => "healthy",
            DeploymentHealthState::Degraded => "degraded",
            DeploymentHealthState::Unavailable => "unavailable",
        }
    }
}

/// A deployment's health, with the counts it comes from and a sentence why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentHealth {
    pub state: DeploymentHealthState,
    /// Workloads that should run: on their way, running, or failed and
    /// waiting for their restart policy.
    pub wanted: u32,
    /// Of them, those running and not unhealthy.
    pub up: u32,
    pub reason: String,
}

/// What the health of a deployment is judged from, of each of its workloads
/// (the server's workloads and the terminal UI's live copies alike).
#[derive(Debug, Clone, Copy)]
pub struct WorkloadState<'a> {
    /// The id as the reason names it (short).
    pub id: &'a str,
    pub stage: Stage,
    pub health: Health,
    /// Failed, and its restart policy runs it again.
    pub restart_pending: bool,
    pub error: Option<&'a str>,
    pub pending_reason: Option<&'a str>,
    /// Orders failures: the latest is named.
    pub updated_at: i64,
}

impl<'a> From<&'a Workload> for WorkloadState<'a> {
    fn from(workload: &'a Workload) -> Self {
        WorkloadState {
            id: workload.id.short(),
            stage: workload.stage,
            health: workload.health,
            restart_pending: workload.next_restart_at.is_some(),
            error: workload.error.as_deref(),
            pending_reason: workload.pending_reason.as_deref(),
            updated_at: workload.updated_at.0,
        }
    }
}

impl WorkloadState<'_> {
    /// Whether it should be running: on its way or running, or failed with its
    /// restart policy to run it again. A stopped workload, one being stopped
    /// and one that failed for good are not wanted.
    fn is_wanted(&self) -> bool {
        match self.stage {
            Stage::Pending | Stage::Validate | Stage::Build | Stage::Deploy | Stage::Running => {
                true
            }
            Stage::Failed => self.restart_pending,
            Stage::Stopping | Stage::Stopped => false,
        }
    }

    fn is_up(&self) -> bool {
        self.stage == Stage::Running && self.health != Health::Unhealthy
    }

    /// Why a wanted workload is not up, in a few words.
    fn why_down(&self) -> String {
        let id = self.id;
        match (self.stage, self.pending_reason) {
            (Stage::Running, _) => format!("{id} is unhealthy"),
            (Stage::Failed, _) => match self.error {
                Some(error) => format!("{id} failed ({error}) and waits to restart"),
                None => format!("{id} failed and waits to restart"),
            },
            (Stage::Pending, Some(reason)) => format!("{id} waits for a node: {reason}"),
            (stage, _) => format!("{id} is {}", stage.as_str()),
        }
    }
}

/// The health of a deployment whose workloads are `workloads` (all of them,
/// in any stage).
pub fn deployment_health(workloads: &[WorkloadState<'_>]) -> DeploymentHealth {
    let wanted: Vec<&WorkloadState> = workloads.iter().filter(|w| w.is_wanted()).collect();
    let up = wanted.iter().filter(|w| w.is_up()).count() as u32;
    let total = wanted.len() as u32;
    let (state, reason) = if total == 0 {
        let latest_failure = workloads
            .iter()
            .filter(|w| w.stage == Stage::Failed)
            .max_by_key(|w| w.updated_at);
        let reason = match latest_failure {
            Some(failed) => format!(
                "no workload should run; {} failed{}",
                failed.id,
                failed
                    .error
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            ),
            None if workloads.is_empty() => "the deployment has no workload".to_owned(),
            None => "no workload should run (all stopped)".to_owned(),
        };
        (DeploymentHealthState::Unavailable, reason)
    } else if up == total {
        (
            DeploymentHealthState::Healthy,
            format!("{up} of {total} workloads up"),
        )
    } else {
        let down: Vec<String> = wanted
            .iter()
            .filter(|w| !w.is_up())
            .take(3)
            .map(|w| w.why_down())
            .collect();
        let state = if up == 0 {
            DeploymentHealthState::Unavailable
        } else {
            DeploymentHealthState::Degraded
        };
        (
            state,
            format!("{up} of {total} workloads up; {}", down.join("; ")),
        )
    };
    DeploymentHealth {
        state,
        wanted: total,
        up,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeploymentId;

    fn workload(stage: Stage, health: Health) -> Workload {
        let mut workload = Workload::new(DeploymentId::generate());
        workload.stage = stage;
        workload.health = health;
        workload
    }

    fn judge(workloads: &[Workload]) -> DeploymentHealth {
        let states: Vec<WorkloadState> = workloads.iter().map(WorkloadState::from).collect();
        deployment_health(&states)
    }

    fn state(workloads: &[Workload]) -> DeploymentHealthState {
        judge(workloads).state
    }

    #[test]
    fn all_running_is_healthy_and_one_down_is_degraded() {
        let running = workload(Stage::Running, Health::Healthy);
        let unknown = workload(Stage::Running, Health::Unknown);
        assert_eq!(
            state(&[running.clone(), unknown.clone()]),
            DeploymentHealthState::Healthy
        );
        let starting = workload(Stage::Deploy, Health::Unknown);
        let health = judge(&[running.clone(), unknown, starting.clone()]);
        assert_eq!(health.state, DeploymentHealthState::Degraded);
        assert_eq!((health.up, health.wanted), (2, 3));
        assert!(health.reason.contains(starting.id.short()), "{health:?}");
        let unhealthy = workload(Stage::Running, Health::Unhealthy);
        assert_eq!(
            state(&[running, unhealthy.clone()]),
            DeploymentHealthState::Degraded
        );
        assert_eq!(state(&[unhealthy]), DeploymentHealthState::Unavailable);
    }

    #[test]
    fn stopped_and_failed_for_good_are_not_wanted() {
        let running = workload(Stage::Running, Health::Healthy);
        let stopped = workload(Stage::Stopped, Health::Unknown);
        let mut failed = workload(Stage::Failed, Health::Unknown);
        failed.error = Some("exited with code 3".to_owned());
        assert_eq!(
            state(&[running, stopped.clone(), failed.clone()]),
            DeploymentHealthState::Healthy
        );
        let health = judge(&[stopped, failed.clone()]);
        assert_eq!(health.state, DeploymentHealthState::Unavailable);
        assert!(health.reason.contains("exited with code 3"), "{health:?}");
        // Waiting for its restart policy, it is wanted and down.
        failed.next_restart_at = Some(Timestamp(1));
        let health = judge(&[failed]);
        assert_eq!(health.state, DeploymentHealthState::Unavailable);
        assert_eq!(health.wanted, 1);
        assert!(health.reason.contains("waits to restart"), "{health:?}");
        assert_eq!(judge(&[]).reason, "the deployment has no workload");
    }

    #[test]
    fn uptime_is_the_share_of_passed_checks() {
        assert_eq!(Uptime::default().ratio(), None);
        let uptime = Uptime {
            checks: 4,
            passed: 1,
            ..Uptime::default()
        };
        assert_eq!(uptime.ratio(), Some(0.25));
    }
}
