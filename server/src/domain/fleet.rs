//! Fleet operations: draining a node and rolling restarts. An operation is
//! kept in the database with its items (one per workload) and carried out by
//! one node at a time, which holds it under an owner epoch as it holds a
//! workload: when that node is lost another takes the operation over, and the
//! items' recorded progress says what was already done, so nothing is done
//! twice.

use std::time::Duration;

use super::{DeploymentId, NodeId, Timestamp, WorkloadId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetKind {
    Drain,
    RollingRestart,
    /// A deployment's change reaching its live workloads.
    Rollout,
}

impl FleetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetKind::Drain => "drain",
            FleetKind::RollingRestart => "rolling_restart",
            FleetKind::Rollout => "rollout",
        }
    }

    pub fn parse(text: &str) -> Option<FleetKind> {
        match text {
            "drain" => Some(FleetKind::Drain),
            "rolling_restart" => Some(FleetKind::RollingRestart),
            "rollout" => Some(FleetKind::Rollout),
            _ => None,
        }
    }
}

/// Where an operation is. Running and paused ones are under way; the others
/// have ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FleetState {
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl FleetState {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::Running => "running",
            FleetState::Paused => "paused",
            FleetState::Succeeded => "succeeded",
            FleetState::Failed => "failed",
            FleetState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<FleetState> {
        match text {
            "running" => Some(FleetState::Running),
            "paused" => Some(FleetState::Paused),
            "succeeded" => Some(FleetState::Succeeded),
            "failed" => Some(FleetState::Failed),
            "cancelled" => Some(FleetState::Cancelled),
            _ => None,
        }
    }

    pub fn is_over(self) -> bool {
        !matches!(self, FleetState::Running | FleetState::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Waiting,
    Active,
    Done,
    Failed,
    Skipped,
}

impl ItemState {
    pub fn is_over(self) -> bool {
        matches!(
            self,
            ItemState::Done | ItemState::Failed | ItemState::Skipped
        )
    }
}

/// What a rolling restart does when a workload does not come back ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    #[default]
    Pause,
    Abort,
}

/// How many of a set may be down at once: a count, or a share in percent
/// (rounded down, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnavailable {
    Count(u32),
    Percent(u32),
}

impl MaxUnavailable {
    /// Parses "2" or "25%"; empty is 1.
    pub fn parse(text: &str) -> Result<MaxUnavailable, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(MaxUnavailable::Count(1));
        }
        let bad = || format!("must be a count (\"2\") or a share (\"25%\"), not {text:?}");
        if let Some(percent) = text.strip_suffix('%') {
            let percent: u32 = percent.trim().parse().map_err(|_| bad())?;
            if percent == 0 || percent > 100 {
                return Err(format!("a share must be 1% to 100%, not {text:?}"));
            }
            return Ok(MaxUnavailable::Percent(percent));
        }
        let count: u32 = text.parse().map_err(|_| bad())?;
        if count == 0 {
            return Err("must be at least 1".to_owned());
        }
        Ok(MaxUnavailable::Count(count))
    }

    /// How many of `total` at once.
    pub fn of(self, total: usize) -> u32 {
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        match self {
            MaxUnavailable::Count(count) => count,
            MaxUnavailable::Percent(percent) => {
                u32::try_from(u64::from(total) * u64::from(percent) / 100).unwrap_or(u32::MAX)
            }
        }
        .max(1)
    }
}

/// What kind of operation, with what settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetParams {
    Drain {
        node_id: NodeId,
        node_name: String,
        min_healthy_ms: u64,
        healthy_deadline_ms: u64,
        force: bool,
    },
    RollingRestart {
        max_unavailable: String,
        min_healthy_ms: u64,
        healthy_deadline_ms: u64,
        on_failure: FailurePolicy,
    },
    /// Brings the deployment's live workloads to `revision`: each restarted
    /// in place (`max_surge` 0), or replaced by a new workload that starts
    /// first (`max_surge` > 0), `parallel` at a time.
    Rollout {
        deployment_id: DeploymentId,
        deployment_name: String,
        revision: u64,
        /// "rolling" or "recreate".
        strategy: String,
        max_surge: u32,
        min_healthy_ms: u64,
        healthy_deadline_ms: u64,
    },
}

impl FleetParams {
    pub fn kind(&self) -> FleetKind {
        match self {
            FleetParams::Drain { .. } => FleetKind::Drain,
            FleetParams::RollingRestart { .. } => FleetKind::RollingRestart,
            FleetParams::Rollout { .. } => FleetKind::Rollout,
        }
    }

    /// What a failed item does to the operation; none for a drain (it goes on
    /// with the others). A rollout pauses, as a Kubernetes rollout stops
    /// progressing.
    pub fn on_failure(&self) -> Option<FailurePolicy> {
        match self {
            FleetParams::Drain { .. } => None,
            FleetParams::RollingRestart { on_failure, .. } => Some(*on_failure),
            FleetParams::Rollout { .. } => Some(FailurePolicy::Pause),
        }
    }

    pub fn min_healthy(&self) -> Duration {
        match self {
            FleetParams::Drain { min_healthy_ms, .. }
            | FleetParams::RollingRestart { min_healthy_ms, .. }
            | FleetParams::Rollout { min_healthy_ms, .. } => Duration::from_millis(*min_healthy_ms),
        }
    }

    pub fn healthy_deadline(&self) -> Duration {
        match self {
            FleetParams::Drain {
                healthy_deadline_ms,
                ..
            }
            | FleetParams::RollingRestart {
                healthy_deadline_ms,
                ..
            }
            | FleetParams::Rollout {
                healthy_deadline_ms,
                ..
            } => Duration::from_millis(*healthy_deadline_ms),
        }
    }
}

/// One workload of an operation, and how far it got. The generation and
/// revision recorded when it became active tell a node that takes the
/// operation over whether the restart was already made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FleetItem {
    pub workload_id: WorkloadId,
    pub deployment_id: DeploymentId,
    pub deployment_name: String,
    pub state: ItemState,
    #[serde(default)]
    pub replacement_id: Option<WorkloadId>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// The workload's generation and revision when the item became active.
    #[serde(default)]
    pub from_generation: u64,
    #[serde(default)]
    pub from_revision: u64,
    /// The deployment's stop grace period, for the ETA.
    #[serde(default)]
    pub grace_ms: u64,
}

impl FleetItem {
    pub fn new(
        workload_id: WorkloadId,
        deployment_id: DeploymentId,
        deployment_name: String,
        grace: Duration,
    ) -> FleetItem {
        FleetItem {
            workload_id,
            deployment_id,
            deployment_name,
            state: ItemState::Waiting,
            replacement_id: None,
            message: String::new(),
            started_at: None,
            finished_at: None,
            from_generation: 0,
            from_revision: 0,
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// An operation as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetOperation {
    pub id: String,
    pub params: FleetParams,
    /// What it acts on, for people.
    pub target: String,
    pub state: FleetState,
    pub message: String,
    pub items: Vec<FleetItem>,
    /// Items at once.
    pub parallel: u32,
    /// The node carrying it out, and the epoch it holds it under.
    pub node_id: Option<NodeId>,
    pub owner_epoch: u64,
    pub actor: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub deadline: Timestamp,
}

impl FleetOperation {
    pub fn new_id() -> String {
        format!("op-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
    }

    pub fn finished_items(&self) -> usize {
        self.items
            .iter()
            .filter(|item| item.state.is_over())
            .count()
    }

    /// A guess at what is left: per item still to do, its stop grace period
    /// plus the healthy time, spread over the items done at once.
    pub fn eta(&self) -> Duration {
        if self.state.is_over() {
            return Duration::ZERO;
        }
        let min_healthy = self.params.min_healthy();
        let left: Duration = self
            .items
            .iter()
            .filter(|item| !item.state.is_over())
            .map(|item| Duration::from_millis(item.grace_ms) + min_healthy)
            .sum();
        left / self.parallel.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unavailable_is_a_count_or_a_share_of_the_set() {
        assert_eq!(MaxUnavailable::parse(""), Ok(MaxUnavailable::Count(1)));
        assert_eq!(MaxUnavailable::parse("2").map(|m| m.of(10)), Ok(2));
        assert_eq!(MaxUnavailable::parse("25%").map(|m| m.of(10)), Ok(2));
        // Rounded down, at least one.
        assert_eq!(MaxUnavailable::parse("10%").map(|m| m.of(3)), Ok(1));
        assert!(MaxUnavailable::parse("0").is_err());
        assert!(MaxUnavailable::parse("150%").is_err());
        assert!(MaxUnavailable::parse("two").is_err());
    }
}
