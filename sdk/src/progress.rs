//! The progress stream of Start, Stop and Restart.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::{Stream, StreamExt};
use slipway::v1::{LogEntry, Workload, WorkloadProgress, workload_progress::Update};
use tonic::Streaming;

use crate::Error;

/// One message of an operation's progress.
// Unboxed on purpose: a handful of these pass per operation, and callers match
// on `Progress::Workload(workload)` directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A snapshot: the first one says the operation was accepted, then one per
    /// stage change; the last one is the final state.
    Workload(Workload),
    /// A log line produced during the operation.
    Log(LogEntry),
}

/// The progress of an operation, as a `Stream`. Dropping it does not cancel the
/// operation.
pub struct ProgressStream {
    inner: Streaming<WorkloadProgress>,
}

impl ProgressStream {
    pub(crate) fn new(inner: Streaming<WorkloadProgress>) -> Self {
        Self { inner }
    }

    /// Reads the stream to its end and returns the final workload: RUNNING for a
    /// start or restart, STOPPED (or FAILED) for a stop. An operation that did
    /// not reach its goal is [`Error::OperationFailed`], with the stage, the
    /// reason, the exit code and the last lines of output.
    pub async fn finish(mut self) -> Result<Workload, Error> {
        let mut last = None;
        while let Some(progress) = self.next().await {
            if let Progress::Workload(workload) = progress? {
                last = Some(workload);
            }
        }
        last.ok_or(Error::StreamEnded("no workload in the progress stream"))
    }

    /// Reads the stream to its end, returning every message and how the
    /// operation ended (as [`ProgressStream::finish`] does).
    pub async fn collect_outcome(mut self) -> (Vec<Progress>, Result<Workload, Error>) {
        let mut all = Vec::new();
        let mut last = None;
        while let Some(progress) = self.next().await {
            match progress {
                Ok(progress) => {
                    if let Progress::Workload(workload) = &progress {
                        last = Some(workload.clone());
                    }
                    all.push(progress);
                }
                Err(error) => return (all, Err(error)),
            }
        }
        let outcome = last.ok_or(Error::StreamEnded("no workload in the progress stream"));
        (all, outcome)
    }

    /// Reads the stream to its end, returning every message; an operation that
    /// did not reach its goal is an error, as with [`ProgressStream::finish`].
    pub async fn collect_all(mut self) -> Result<Vec<Progress>, Error> {
        let mut all = Vec::new();
        while let Some(progress) = self.next().await {
            all.push(progress?);
        }
        Ok(all)
    }
}

impl Stream for ProgressStream {
    type Item = Result<Progress, Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.inner.poll_next_unpin(context) {
                Poll::Ready(Some(Ok(message))) => match message.update {
                    Some(Update::Workload(workload)) => {
                        Poll::Ready(Some(Ok(Progress::Workload(workload))))
                    }
                    Some(Update::Log(entry)) => Poll::Ready(Some(Ok(Progress::Log(entry)))),
                    // A message from a newer server with an update this SDK does not know.
                    None => continue,
                },
                Poll::Ready(Some(Err(status))) => Poll::Ready(Some(Err(status.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
