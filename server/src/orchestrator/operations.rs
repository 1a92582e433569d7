//! The operations a supervisor has accepted and not finished, each with its
//! progress channel. After every change of the workload the supervisor publishes
//! it here; an operation whose goal is reached (or can no longer be) is ended
//! with its outcome, judged by the one rule in `domain::lifecycle`.

use super::OrchestratorError;
use crate::{
    domain::{Goal, Operation, Stage, Verdict, Workload},
    logs::{LogPipeline, OperationFailure, TapId},
};

/// Operations under way on one workload.
#[derive(Debug, Default)]
pub struct Operations {
    under_way: Vec<(TapId, Goal)>,
}

/// Why an operation that did not reach its goal ended, from the workload it left.
fn failure(workload: &Workload, fallback: &str) -> OperationFailure {
    let stage = match workload.stage {
        Stage::Failed => workload.failed_stage.unwrap_or(Stage::Failed),
        stage => stage,
    };
    OperationFailure {
        workload: Box::new(workload.clone()),
        stage,
        reason: workload
            .error
            .clone()
            .unwrap_or_else(|| fallback.to_owned()),
        exit_code: workload.exit_code,
        last_lines: Vec::new(),
    }
}

impl Operations {
    /// The most recently accepted operation still under way.
    pub fn latest(&self) -> Option<Operation> {
        self.under_way.last().map(|(_, goal)| goal.operation)
    }

    /// Follows an operation accepted while the workload was `before`.
    pub fn track(&mut self, tap: TapId, operation: Operation, before: &Workload) {
        self.under_way.push((tap, Goal::of(operation, before)));
    }

    /// A stop was accepted: starts and restarts under way end when the run is over.
    pub fn supersede(&mut self) {
        for (_, goal) in &mut self.under_way {
            if goal.operation != Operation::Stop {
                goal.superseded = true;
            }
        }
    }

    /// Hands `workload` to every channel and ends the operations that are over.
    pub async fn publish(&mut self, logs: &LogPipeline, workload: &Workload) {
        if self.under_way.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        self.under_way
            .retain(|(tap, goal)| match goal.verdict(workload) {
                Verdict::Underway => true,
                Verdict::Succeeded => {
                    finished.push((*tap, Ok(())));
                    false
                }
                Verdict::Failed => {
                    let fallback = match goal.operation {
                        Operation::Stop => "the stop did not complete",
                        Operation::Start | Operation::Restart => "stopped before it was running",
                    };
                    finished.push((*tap, Err(failure(workload, fallback))));
                    false
                }
            });
        logs.publish(workload, finished).await;
    }

    /// Ends one operation that could not be carried out.
    pub async fn abandon(
        &mut self,
        tap: TapId,
        logs: &LogPipeline,
        workload: &Workload,
        error: &OrchestratorError,
    ) {
        self.under_way.retain(|(id, _)| *id != tap);
        let mut failure = failure(workload, "");
        failure.reason = error.to_string();
        logs.publish(workload, vec![(tap, Err(failure))]).await;
    }

    /// Ends every operation under way, failed with `reason` (the workload is gone).
    pub async fn end_all(&mut self, logs: &LogPipeline, workload: &Workload, reason: &str) {
        let finished = self
            .under_way
            .drain(..)
            .map(|(tap, _)| {
                let mut failure = failure(workload, reason);
                failure.reason = reason.to_owned();
                (tap, Err(failure))
            })
            .collect::<Vec<_>>();
        if !finished.is_empty() {
            logs.publish(workload, finished).await;
        }
    }
}
