//! An operation's own progress channel: the supervisor that runs a Start, Stop or
//! Restart publishes its stage snapshots through the log pipeline, so that they
//! reach the caller in the order they happened relative to the operation's log
//! lines (each line once stored). The channel carries a bounded number of lines
//! in flight; a slow caller gets a marker for the lines it missed (they stay in
//! the log), never a stalled pipeline.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::sync::mpsc;

use crate::domain::{LogLine, LogStream, Stage, Workload};

/// Lines of an operation that may wait for its caller at once.
const LINES_IN_FLIGHT: usize = 1024;
/// Output lines kept to explain a failure.
pub const LAST_LINES: usize = 20;

/// Identifies one operation's channel within a workload.
pub type TapId = u64;

/// How an operation that did not reach its goal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    /// The workload as the operation left it.
    pub workload: Box<Workload>,
    /// The stage the run failed in (or the stage it was in when it stopped).
    pub stage: Stage,
    pub reason: String,
    pub exit_code: Option<i32>,
    /// The last lines of the workload's own output during the operation.
    pub last_lines: Vec<String>,
}

/// One message of an operation's progress.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A snapshot: the first says the operation was accepted, then one per change.
    Workload(Box<Workload>),
    /// A log line of the operation, stored.
    Log(LogLine),
    /// This many lines of the operation were not sent (the caller was slow); the
    /// last of them had seq `through`. They are in the log.
    Skipped { through: u64, count: u64 },
    /// The operation is over: the final workload (RUNNING for a start), or why
    /// it did not reach its goal. Nothing follows.
    Done(Result<Box<Workload>, OperationFailure>),
}

/// The receiving end, handed to the caller of an operation. Dropping it does not
/// cancel the operation.
pub struct ProgressReceiver {
    receiver: mpsc::UnboundedReceiver<Progress>,
    in_flight: Arc<AtomicUsize>,
}

impl ProgressReceiver {
    /// The next message; `None` once the operation is over (after `Done`) or the
    /// server is shutting down.
    pub async fn recv(&mut self) -> Option<Progress> {
        let message = self.receiver.recv().await?;
        if matches!(message, Progress::Log(_)) {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        Some(message)
    }

    /// The receiver as a stream that ends after `Done`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Progress> + Send + 'static {
        futures::stream::unfold(self, |mut receiver| async move {
            let message = receiver.recv().await?;
            Some((message, receiver))
        })
    }
}

/// The pipeline's end of one operation's channel.
pub(super) struct Tap {
    pub id: TapId,
    sender: mpsc::UnboundedSender<Progress>,
    in_flight: Arc<AtomicUsize>,
    skipped: u64,
    skipped_through: u64,
    last_lines: VecDeque<String>,
}

/// A new channel: the tap for the pipeline, the receiver for the caller.
pub(super) fn channel(id: TapId) -> (Tap, ProgressReceiver) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let tap = Tap {
        id,
        sender,
        in_flight: in_flight.clone(),
        skipped: 0,
        skipped_through: 0,
        last_lines: VecDeque::new(),
    };
    (
        tap,
        ProgressReceiver {
            receiver,
            in_flight,
        },
    )
}

impl Tap {
    /// Hands a stored line over, or counts it as skipped while too many wait.
    pub fn line(&mut self, line: &LogLine) {
        if line.stream != LogStream::System {
            if self.last_lines.len() == LAST_LINES {
                self.last_lines.pop_front();
            }
            self.last_lines.push_back(line.message.clone());
        }
        if self.in_flight.load(Ordering::Relaxed) >= LINES_IN_FLIGHT {
            self.skipped += 1;
            self.skipped_through = line.seq;
            return;
        }
        self.flush_skipped();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _ = self.sender.send(Progress::Log(line.clone()));
    }

    pub fn snapshot(&mut self, workload: &Workload) {
        self.flush_skipped();
        let _ = self
            .sender
            .send(Progress::Workload(Box::new(workload.clone())));
    }

    /// Ends the channel with the operation's outcome (the last lines are added to
    /// a failure here).
    pub fn done(mut self, outcome: Result<Box<Workload>, OperationFailure>) {
        self.flush_skipped();
        let outcome = outcome.map_err(|mut failure| {
            failure.last_lines = self.last_lines.drain(..).collect();
            failure
        });
        let _ = self.sender.send(Progress::Done(outcome));
    }

    fn flush_skipped(&mut self) {
        if self.skipped > 0 {
            let _ = self.sender.send(Progress::Skipped {
                through: self.skipped_through,
                count: self.skipped,
            });
            self.skipped = 0;
        }
    }
}
