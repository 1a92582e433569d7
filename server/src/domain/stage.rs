//! The stages of a workload's run and the one table of allowed transitions.

use std::fmt;

/// Where a workload's run is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Created, not started yet (or about to run again after a restart).
    Pending,
    /// Checking the service directory, the command and the runtime.
    Validate,
    /// Running the build steps or building the image.
    Build,
    /// Starting the process or container and waiting for readiness.
    Deploy,
    /// Started and ready.
    Running,
    /// Being stopped: stop signal, grace period, kill.
    Stopping,
    /// Stopped on request. Terminal for the run.
    Stopped,
    /// Failed in some stage. Terminal for the run.
    Failed,
}

/// Every allowed `(from, to)` pair. Anything not listed is refused.
const TRANSITIONS: &[(Stage, Stage)] = &[
    (Stage::Pending, Stage::Validate),
    (Stage::Pending, Stage::Stopped),
    (Stage::Pending, Stage::Failed),
    (Stage::Validate, Stage::Build),
    (Stage::Validate, Stage::Stopping),
    (Stage::Validate, Stage::Failed),
    (Stage::Build, Stage::Deploy),
    (Stage::Build, Stage::Stopping),
    (Stage::Build, Stage::Failed),
    (Stage::Deploy, Stage::Running),
    (Stage::Deploy, Stage::Stopping),
    (Stage::Deploy, Stage::Failed),
    (Stage::Running, Stage::Stopping),
    // The service ended by itself, cleanly (exit code 0).
    (Stage::Running, Stage::Stopped),
    (Stage::Running, Stage::Failed),
    (Stage::Stopping, Stage::Stopped),
    (Stage::Stopping, Stage::Failed),
    // A restart runs the pipeline again, as the next generation.
    (Stage::Stopped, Stage::Pending),
    (Stage::Failed, Stage::Pending),
];

/// Whether a workload may go from `from` to `to`.
pub fn can_transition(from: Stage, to: Stage) -> bool {
    TRANSITIONS.contains(&(from, to))
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 8] = [
        Stage::Pending,
        Stage::Validate,
        Stage::Build,
        Stage::Deploy,
        Stage::Running,
        Stage::Stopping,
        Stage::Stopped,
        Stage::Failed,
    ];

    /// `stopped` and `failed`: the run is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Stopped | Stage::Failed)
    }

    /// `validate`, `build` and `deploy`: the start pipeline is under way.
    pub fn is_starting(self) -> bool {
        matches!(self, Stage::Validate | Stage::Build | Stage::Deploy)
    }

    /// The lowercase name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Validate => "validate",
            Stage::Build => "build",
            Stage::Deploy => "deploy",
            Stage::Running => "running",
            Stage::Stopping => "stopping",
            Stage::Stopped => "stopped",
            Stage::Failed => "failed",
        }
    }

    /// Parses [`Stage::as_str`] back.
    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == text)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A workload's health, separate from its stage.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked (yet), or not running.
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(text: &str) -> Option<Health> {
        [Health::Unknown, Health::Healthy, Health::Unhealthy]
            .into_iter()
            .find(|health| health.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole 8×8 table, written out: a change to the transitions has to change
    /// this test too.
    #[test]
    fn every_pair_of_stages_is_allowed_or_refused_as_designed() {
        use Stage::*;
        let expected: &[(Stage, &[Stage])] = &[
            (Pending, &[Validate, Stopped, Failed]),
            (Validate, &[Build, Stopping, Failed]),
            (Build, &[Deploy, Stopping, Failed]),
            (Deploy, &[Running, Stopping, Failed]),
            (Running, &[Stopping, Stopped, Failed]),
            (Stopping, &[Stopped, Failed]),
            (Stopped, &[Pending]),
            (Failed, &[Pending]),
        ];
        let mut checked = 0;
        for (from, allowed) in expected {
            for to in Stage::ALL {
                assert_eq!(
                    can_transition(*from, to),
                    allowed.contains(&to),
                    "{from} -> {to}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }

    #[test]
    fn no_stage_goes_to_itself() {
        for stage in Stage::ALL {
            assert!(!can_transition(stage, stage), "{stage}");
        }
    }

    #[test]
    fn terminal_stages_only_lead_to_a_new_run() {
        for stage in Stage::ALL.into_iter().filter(|stage| stage.is_terminal()) {
            for to in Stage::ALL {
                assert_eq!(can_transition(stage, to), to == Stage::Pending);
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert_eq!(Stage::parse("sleeping"), None);
    }
}
