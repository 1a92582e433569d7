//! Where a run's log lines go.

use tokio::sync::{mpsc, watch};

use super::Message;
use crate::domain::{LogLevel, LogStream, NewLogLine, Stage, WorkloadId};

/// Sends the lines of one run of a workload into the pipeline. Cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    messages: mpsc::Sender<Message>,
    workload_id: WorkloadId,
    generation: u64,
    stage: watch::Receiver<Stage>,
}

impl LogSink {
    pub(super) fn new(
        messages: mpsc::Sender<Message>,
        workload_id: WorkloadId,
        generation: u64,
        stage: watch::Receiver<Stage>,
    ) -> Self {
        Self {
            messages,
            workload_id,
            generation,
            stage,
        }
    }

    /// Hands a line over; waits while the pipeline is full (back-pressure on the
    /// workload's output rather than a lost line).
    pub async fn send(&self, line: NewLogLine) {
        let stage = *self.stage.borrow();
        let message = Message::Line {
            workload_id: self.workload_id.clone(),
            generation: self.generation,
            stage,
            line,
        };
        if self.messages.send(message).await.is_err() {
            tracing::warn!(workload_id = %self.workload_id, "log pipeline closed, line dropped");
        }
    }

    /// A line of the workload's own output.
    pub async fn output(&self, stream: LogStream, message: String) {
        self.send(NewLogLine::output(stream, message)).await;
    }

    /// One of Slipway's own lines about the workload.
    pub async fn system(&self, level: LogLevel, message: impl Into<String>) {
        self.send(NewLogLine::system(level, message)).await;
    }

    pub fn workload_id(&self) -> &WorkloadId {
        &self.workload_id
    }
}
