//! Restart policies, health checks and stop signals of a deployment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a run that ended by itself is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    #[default]
    Never,
    OnFailure,
    Always,
}

/// How a workload is restarted: which endings, how often, how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// Restarts allowed within `window`; 0 for no limit.
    pub max_restarts: u32,
    pub window: Duration,
    pub initial_backoff: Duration,
    /// The factor between delays, in percent (200 = doubling).
    pub backoff_factor_percent: u32,
    pub max_backoff: Duration,
    pub jitter_percent: u32,
    /// A run that lasted this long resets the count.
    pub stable_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            mode: RestartMode::Never,
            max_restarts: 0,
            window: Duration::from_secs(600),
            initial_backoff: Duration::from_millis(1000),
            backoff_factor_percent: 200,
            max_backoff: Duration::from_secs(300),
            jitter_percent: 10,
            stable_after: Duration::from_secs(600),
        }
    }
}

impl RestartPolicy {
    /// The delay before restart number `attempt` (1 for the first) of a streak;
    /// `jitter` in [-1, 1] picks where in the jitter band it falls.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let factor = f64::from(self.backoff_factor_percent) / 100.0;
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_backoff.as_secs_f64() * factor.powi(exponent);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let spread = capped * f64::from(self.jitter_percent) / 100.0 * jitter.clamp(-1.0, 1.0);
        Duration::from_secs_f64((capped + spread).max(0.0))
    }
}

/// What a health check probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    Tcp,
    Http { path: String },
    Exec { command: Vec<String> },
}

/// A check that runs while the workload runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
}

/// The signals a stop may begin with.
pub const STOP_SIGNALS: [&str; 6] = [
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let policy = RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            jitter_percent: 0,
            ..RestartPolicy::default()
        };
        let delays: Vec<u128> = (1..=6)
            .map(|attempt| policy.delay(attempt, 0.0).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        let jittered = RestartPolicy {
            jitter_percent: 10,
            ..policy
        };
        assert_eq!(jittered.delay(1, 1.0).as_millis(), 110);
        assert_eq!(jittered.delay(1, -1.0).as_millis(), 90);
    }
}
