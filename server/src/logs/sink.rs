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
    /// Secret values, masked in every line.
    redactions: std::sync::Arc<Vec<String>>,
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
            redactions: std::sync::Arc::new(Vec::new()),
        }
    }

    /// The same sink, masking these values wherever they appear in a line.
    pub fn with_redactions(mut self, values: Vec<String>) -> Self {
        self.redactions = std::sync::Arc::new(
            values
                .into_iter()
                .filter(|value| !value.is_empty())
                .collect(),
        );
        self
    }

    /// Hands a line over; waits while the pipeline is full (back-pressure on the
    /// workload's output rather than a lost line).
    pub async fn send(&self, mut line: NewLogLine) {
        for secret in self.redactions.iter() {
            if line.message.contains(secret.as_str()) {
                line.message = line.message.replace(secret.as_str(), "********");
            }
        }
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
