//! Following a start, stop or restart for a bounded time: an MCP client times
//! out a call that takes too long, so a tool answers with what happened so
//! far and the workload to follow with `wait_for_stage` instead of blocking.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use slipway_sdk::{Error, Progress, ProgressStream, proto::Workload};

use super::view::{LogLineView, WorkloadView, allowed_actions};

/// How many of the operation's log lines an answer carries (the last ones).
const LOG_LINES_KEPT: usize = 20;

/// Reads `progress` for at most `limit`. An operation that ended answers
/// `outcome: "done"` with the final workload; one still under way answers
/// `outcome: "in_progress"` with the workload as it is and how to follow it.
/// Either way the answer lists the stages passed and the operation's last log
/// lines. A failed operation is the SDK's error (`OperationFailed`).
pub async fn follow(
    operation: &'static str,
    goal: &'static str,
    mut progress: ProgressStream,
    limit: Duration,
    deployment_name: Option<&str>,
) -> Result<Value, Error> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut last: Option<Workload> = None;
    let mut stages: Vec<&'static str> = Vec::new();
    let mut lines = Vec::new();
    let finished = loop {
        let next = tokio::time::timeout_at(deadline, progress.next()).await;
        match next {
            Err(_) => break false,
            Ok(None) => break true,
            Ok(Some(update)) => match update? {
                Progress::Workload(workload) => {
                    let stage = workload.stage().label();
                    if stages.last() != Some(&stage) {
                        stages.push(stage);
                    }
                    last = Some(workload);
                }
                Progress::Log(entry) if entry.dropped == 0 => {
                    lines.push(LogLineView::new(&entry));
                    if lines.len() > LOG_LINES_KEPT {
                        lines.remove(0);
                    }
                }
                Progress::Log(_) => {}
            },
        }
    };
    let Some(workload) = last else {
        return Err(Error::StreamEnded("no workload in the progress stream"));
    };
    let mut answer = json!({
        "operation": operation,
        "outcome": if finished { "done" } else { "in_progress" },
        "workload": WorkloadView::new(&workload, deployment_name),
        "stages": stages,
        "log_lines": lines,
        "allowed_actions": allowed_actions(&workload),
    });
    if !finished {
        answer["next"] = json!({
            "tool": "wait_for_stage",
            "arguments": { "workload": workload.id, "stage": goal },
            "note": format!(
                "the {operation} goes on in the server; follow it with wait_for_stage"
            ),
        });
    }
    Ok(answer)
}
