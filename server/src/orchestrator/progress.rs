//! The progress of a Start, Stop or Restart: the accepted snapshot, then every
//! stage change and the operation's log lines, until the operation is over. Built
//! on the event log and the log pipeline; the operation does not depend on anyone
//! reading it.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Orchestrator, OrchestratorError};
use crate::{
    domain::{
        DeploymentId, EventKind, LogFilter, LogItem, LogLine, Operation, Stage, Workload,
        WorkloadId,
    },
    events::WatchItem,
    store::EventFilter,
};

/// One message of an operation's progress.
#[derive(Debug, Clone)]
pub enum Progress {
    Workload(Workload),
    Log(LogLine),
}

/// Whether `workload` shows the operation is over.
fn is_done(operation: Operation, target_generation: u64, workload: &Workload) -> bool {
    let settled = matches!(
        workload.stage,
        Stage::Running | Stage::Stopped | Stage::Failed
    );
    match operation {
        Operation::Start => settled,
        Operation::Stop => workload.stage.is_terminal(),
        Operation::Restart => settled && workload.generation >= target_generation,
    }
}

impl Orchestrator {
    /// Runs an operation and returns its progress. Errors (an invalid state, an
    /// unknown id) come before the stream.
    pub async fn operation_progress(
        &self,
        id: &WorkloadId,
        deployment_id: Option<&DeploymentId>,
        operation: Operation,
        grace: Option<Duration>,
    ) -> Result<
        impl Stream<Item = Result<Progress, OrchestratorError>> + Send + 'static,
        OrchestratorError,
    > {
        let accepted = self.operate(id, deployment_id, operation, grace).await?;
        let first = accepted.workload;
        let target_generation = match (operation, first.stage) {
            (Operation::Restart, Stage::Stopping) => first.generation + 1,
            _ => first.generation,
        };
        let filter = EventFilter {
            workload_id: Some(id.clone()),
            ..EventFilter::default()
        };
        let mut events = Box::pin(
            self.inner
                .events
                .watch(first.revision, filter, Duration::from_secs(3600))
                .await?,
        );
        let mut logs =
            self.inner
                .logs
                .reader(id, accepted.log_seq, true, false, LogFilter::default());
        let pipeline = self.inner.logs.clone();
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            let done = is_done(operation, target_generation, &first);
            if sender
                .send(Ok(Progress::Workload(first.clone())))
                .await
                .is_err()
            {
                return;
            }
            let mut last = first;
            let mut logs_open = true;
            let mut finished = done;
            while !finished {
                tokio::select! {
                    line = logs.next(), if logs_open => match line {
                        Some(Ok(LogItem::Line(line))) => {
                            if sender.send(Ok(Progress::Log(line))).await.is_err() {
                                return;
                            }
                        }
                        // An operation's own lines are too recent to have been dropped.
                        Some(Ok(LogItem::Dropped { .. })) => {}
                        Some(Err(error)) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                        None => logs_open = false,
                    },
                    event = events.next() => match event {
                        Some(Ok(WatchItem::Bookmark(_))) => {}
                        Some(Ok(WatchItem::Event(event))) => {
                            if event.kind == EventKind::WorkloadDeleted {
                                finished = true;
                                continue;
                            }
                            if let Some(workload) = event.workload {
                                finished = is_done(operation, target_generation, &workload);
                                last = workload;
                                if !finished
                                    && sender.send(Ok(Progress::Workload(last.clone()))).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                        Some(Err(error)) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                        None => return,
                    },
                }
            }
            // The operation's last lines, then its final state.
            pipeline.flush().await;
            while let Some(Ok(item)) = logs.next_stored().await {
                if let LogItem::Line(line) = item {
                    if sender.send(Ok(Progress::Log(line))).await.is_err() {
                        return;
                    }
                }
            }
            let _ = sender.send(Ok(Progress::Workload(last))).await;
        });
        Ok(ReceiverStream::new(receiver))
    }
}
