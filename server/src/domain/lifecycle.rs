//! The one rule of a workload's lifecycle: which operation it admits in which
//! condition, and what "done" means for each operation. `allowed_actions`, the
//! supervisor's refusals, the end of a progress stream, the CLI and any UI derive
//! from the functions here; nothing else decides it.

use super::{Stage, Workload};

/// A control a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Delete,
}

impl Action {
    /// Every action, in the order they are shown.
    pub const ALL: [Action; 4] = [Action::Start, Action::Stop, Action::Restart, Action::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Delete => "delete",
        }
    }
}

/// The operations that move a workload through its stages and report progress
/// (delete is not one: it stops the workload first when needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Start,
    Stop,
    Restart,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Start, Operation::Stop, Operation::Restart];

    pub fn as_str(self) -> &'static str {
        self.action().as_str()
    }

    /// The action a client sees for this operation.
    pub fn action(self) -> Action {
        match self {
            Operation::Start => Action::Start,
            Operation::Stop => Action::Stop,
            Operation::Restart => Action::Restart,
        }
    }
}

/// What admission looks at: where the run is, whether the restart policy waits
/// to run it again, and which operation its supervisor is carrying out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub stage: Stage,
    /// The restart policy has scheduled the next run (back-off).
    pub restart_pending: bool,
    /// The operation under way, when one is.
    pub under_way: Option<Operation>,
}

impl Condition {
    /// The condition a stored workload shows (no supervisor consulted: the
    /// operation under way does not change which actions are admitted, only how).
    pub fn of(workload: &Workload) -> Condition {
        Condition {
            stage: workload.stage,
            restart_pending: workload.next_restart_at.is_some(),
            under_way: None,
        }
    }
}

/// The answer to an operation asked in some condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admitted: the operation runs.
    Run,
    /// Admitted: the same operation is under way, the caller follows it.
    Join,
    /// Refused, with the reason ("already stopped").
    Refuse(String),
}

impl Admission {
    pub fn admitted(&self) -> bool {
        !matches!(self, Admission::Refuse(_))
    }
}

/// Whether `action` is admitted in `condition`.
///
/// - Start: a workload that never ran (pending).
/// - Stop: any stage before the run is over (it cancels a pipeline under way, and
///   a restart under way); a run that is over while the restart policy waits
///   (it cancels the pending restart); a stop under way is joined.
/// - Restart: a running workload, or one whose run is over (also while the
///   policy waits: it restarts now).
/// - Delete: always (the workload is stopped first).
pub fn admit(condition: Condition, action: Action) -> Admission {
    use Stage::*;
    let Condition {
        stage,
        restart_pending,
        under_way,
    } = condition;
    let busy = || {
        Admission::Refuse(format!(
            "another operation is under way (stage {stage}); wait for it"
        ))
    };
    match (action, stage) {
        (Action::Delete, _) => Admission::Run,

        (Action::Start, Pending) => Admission::Run,
        (Action::Start, Validate | Build | Deploy) => {
            Admission::Refuse(format!("already starting (stage {stage})"))
        }
        (Action::Start, Running) => Admission::Refuse("already running".to_owned()),
        (Action::Start, Stopping) => busy(),
        (Action::Start, Stopped | Failed) => {
            Admission::Refuse(format!("already {stage}; use restart to run it again"))
        }

        (Action::Stop, Stopping) if under_way == Some(Operation::Stop) => Admission::Join,
        (Action::Stop, Pending | Validate | Build | Deploy | Running | Stopping) => Admission::Run,
        (Action::Stop, Stopped | Failed) if restart_pending => Admission::Run,
        (Action::Stop, Stopped | Failed) => Admission::Refuse(format!("already {stage}")),

        (Action::Restart, Running | Stopped | Failed) => Admission::Run,
        (Action::Restart, Pending) => Admission::Refuse("not started yet; use start".to_owned()),
        (Action::Restart, Validate | Build | Deploy | Stopping) => busy(),
    }
}

/// The actions admitted in `condition`, in [`Action::ALL`] order.
pub fn allowed_actions(condition: Condition) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|action| admit(condition, *action).admitted())
        .collect()
}

/// Where an operation stands, judged from the workload it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not over yet.
    Underway,
    /// It reached its goal.
    Succeeded,
    /// It is over without reaching its goal.
    Failed,
}

/// An operation accepted by a supervisor, as far as its outcome is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goal {
    pub operation: Operation,
    /// Start and restart are judged on this generation (restart: the next one).
    pub generation: u64,
    /// A stop was admitted after it: it ends when the run is over, failed.
    pub superseded: bool,
}

impl Goal {
    /// The goal of `operation` accepted while the workload was `before`.
    pub fn of(operation: Operation, before: &Workload) -> Goal {
        let generation = match operation {
            Operation::Restart => before.generation + 1,
            Operation::Start | Operation::Stop => before.generation,
        };
        Goal {
            operation,
            generation,
            superseded: false,
        }
    }

    /// What "done" means, for the workload as it is now:
    /// - start and restart succeed when the run of their generation is RUNNING
    ///   (alive and ready), and fail when it is over (stopped or failed) or when a
    ///   stop superseded them and the run is over;
    /// - stop succeeds once the run is over and no restart is pending.
    pub fn verdict(&self, workload: &Workload) -> Verdict {
        let over = workload.stage.is_terminal();
        match self.operation {
            Operation::Stop if over && workload.next_restart_at.is_none() => Verdict::Succeeded,
            Operation::Stop => Verdict::Underway,
            Operation::Start | Operation::Restart if self.superseded && over => Verdict::Failed,
            Operation::Start | Operation::Restart if workload.generation < self.generation => {
                Verdict::Underway
            }
            Operation::Start | Operation::Restart => match workload.stage {
                Stage::Running => Verdict::Succeeded,
                Stage::Stopped | Stage::Failed => Verdict::Failed,
                _ => Verdict::Underway,
            },
        }
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
