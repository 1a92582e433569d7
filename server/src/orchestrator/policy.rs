//! The restart policy, applied by a workload's supervisor: which endings are
//! restarted, with what delay, and when it gives up. The wait is visible on the
//! workload (`restart_count`, `next_restart_at`) and in its events.

use std::{
    collections::VecDeque,
    pin::Pin,
    time::{Duration, Instant},
};

use tokio::time::Sleep;

use super::supervisor::{Flow, Supervisor};
use crate::domain::{LogLevel, RestartMode, Stage, Timestamp, now};

/// A supervisor's restart bookkeeping.
#[derive(Default)]
pub struct RestartState {
    /// The pending restart, while the policy waits.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the restarts of the current streak happened.
    recent: VecDeque<Instant>,
    /// When the current run started.
    pub run_started: Option<Instant>,
}

impl RestartState {
    /// Whether a restart is scheduled.
    pub fn pending(&self) -> bool {
        self.timer.is_some()
    }

    /// Starts a new streak (a restart on request).
    pub fn forget(&mut self) {
        self.recent.clear();
        self.timer = None;
    }
}

/// Resolves when the scheduled restart is due; never without one.
pub async fn restart_due(state: &mut RestartState) {
    match &mut state.timer {
        Some(timer) => {
            timer.as_mut().await;
            state.timer = None;
        }
        None => std::future::pending().await,
    }
}

/// A number in [-1, 1] for the jitter, from the system's randomness.
fn jitter_sample() -> f64 {
    let random = uuid::Uuid::new_v4().as_u128() % 2001;
    random as f64 / 1000.0 - 1.0
}

impl Supervisor {
    /// Schedules a restart if the deployment's policy asks for one after this
    /// ending; returns whether it did. Gives up (the workload stays as it ended,
    /// with the reason) once the policy's limit is reached.
    pub(super) async fn apply_restart_policy(&mut self) -> bool {
        let Ok(deployment) = self.deployment().await else {
            return false;
        };
        let policy = deployment.spec.restart_policy;
        // Slipway was restarted while a restart was pending: keep its time.
        if let Some(at) = self.workload.next_restart_at {
            let wait = Duration::from_micros(at.0.saturating_sub(now().0).max(0) as u64);
            self.restarts.timer = Some(Box::pin(tokio::time::sleep(wait)));
            return true;
        }
        let applies = match policy.mode {
            RestartMode::Never => false,
            RestartMode::OnFailure => self.workload.stage == Stage::Failed,
            RestartMode::Always => self.workload.stage.is_terminal(),
        };
        if !applies {
            return false;
        }
        let state = &mut self.restarts;
        if state
            .run_started
            .is_some_and(|started| started.elapsed() >= policy.stable_after)
        {
            state.recent.clear();
        }
        let moment = Instant::now();
        state
            .recent
            .retain(|at| moment.duration_since(*at) < policy.window);
        let ended = self
            .workload
            .error
            .clone()
            .unwrap_or_else(|| self.workload.stage.to_string());
        if policy.max_restarts > 0 && state.recent.len() as u32 >= policy.max_restarts {
            let reason = format!(
                "restart policy gave up after {} restarts within {}s; last run: {ended}",
                state.recent.len(),
                policy.window.as_secs()
            );
            state.recent.clear();
            self.system(LogLevel::Error, reason.clone()).await;
            let mut next = self.workload.clone();
            next.error = Some(reason.clone());
            next.next_restart_at = None;
            next.updated_at = now();
            if let Err(error) = self.save(next, &reason).await {
                tracing::error!(%error, workload_id = %self.workload.id, "recording a give-up failed");
            }
            return false;
        }
        let attempt = state.recent.len() as u32 + 1;
        let delay = policy.delay(attempt, jitter_sample());
        state.recent.push_back(moment);
        state.timer = Some(Box::pin(tokio::time::sleep(delay)));
        let message = format!(
            "restart {attempt} in {} ms ({})",
            delay.as_millis(),
            self.workload
                .exit_code
                .map_or(ended.clone(), |code| format!("{ended}, exit code {code}"))
        );
        self.system(LogLevel::Warn, message.clone()).await;
        let mut next = self.workload.clone();
        next.restart_count = attempt;
        next.next_restart_at = Some(Timestamp(now().0 + delay.as_micros() as i64));
        next.updated_at = now();
        if let Err(error) = self.save(next, &message).await {
            tracing::error!(%error, workload_id = %self.workload.id, "recording a scheduled restart failed");
        }
        true
    }

    /// The scheduled restart is due: run the next generation.
    pub(super) async fn policy_restart(&mut self) -> Flow {
        if !self.workload.stage.is_terminal() {
            return Flow::Continue;
        }
        if let Err(error) = self.next_generation().await {
            tracing::error!(%error, workload_id = %self.workload.id, "restarting by policy failed");
        }
        Flow::Continue
    }

    /// A stop while the policy waits: the restart is called off.
    pub(super) async fn cancel_restart(
        &mut self,
        why: &str,
    ) -> Result<(), super::OrchestratorError> {
        if !self.restarts.pending() && self.workload.next_restart_at.is_none() {
            return Ok(());
        }
        self.restarts.forget();
        let mut next = self.workload.clone();
        next.next_restart_at = None;
        next.updated_at = now();
        self.system(
            LogLevel::Info,
            format!("{why}: the pending restart is cancelled"),
        )
        .await;
        self.save(next, "restart cancelled").await?;
        self.inner.logs.seal(&self.workload.id, true).await;
        Ok(())
    }
}
