//! The log pipeline: lines from runtimes and the orchestrator get a per-workload
//! sequence number, are stored in batches (by count and by time), and readers are
//! woken to read them from the store.
//!
//! Readers always read from the store, by seq (through the store's readers' pool,
//! so they never take a connection the writer needs), so a reader never sees a
//! duplicate or a silent gap, however slow it is, and the server holds at most one
//! page per reader. A line is handed to readers only once it is stored; lines that
//! could not be stored (see `writer`) show as a `dropped` marker.

mod progress;
mod reader;
mod retention;
mod sink;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

pub use progress::{OperationFailure, Progress, ProgressReceiver, TapId};
pub use reader::{LogReader, line};
pub use sink::{LINE_CONTINUES, LogSink};

use crate::{
    domain::{LogFilter, NewLogLine, Stage, Workload, WorkloadId},
    store::Store,
};

/// How much log each workload keeps; the oldest lines go first. At least this
/// much is kept: when a log grows past a limit by a tenth of it, its oldest
/// lines are dropped down to the limit (so not on every batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    pub max_lines: u64,
    /// Characters of message (bytes for ASCII output).
    pub max_bytes: u64,
}

/// The default longest line of output, in bytes, as Docker's partial messages:
/// a longer one is stored as pieces of at most this size, each but the last
/// ending with [`LINE_CONTINUES`].
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024;

impl Default for LogRetention {
    fn default() -> Self {
        Self {
            max_lines: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What readers of one workload's log are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogCursor {
    /// The highest stored seq.
    pub last_seq: u64,
    /// The workload rests in a terminal stage and every line of its run is stored:
    /// a following reader that has read up to `last_seq` is done.
    pub sealed: bool,
}

enum Message {
    Line {
        workload_id: WorkloadId,
        generation: u64,
        stage: Stage,
        line: NewLogLine,
    },
    Seal {
        workload_id: WorkloadId,
        sealed: bool,
    },
    Flush(oneshot::Sender<()>),
    Forget(WorkloadId),
    /// The next line's seq is read from the store again (another node may
    /// have stored lines of the workload since this one last did).
    ResetSeq(WorkloadId),
    /// An operation's progress channel opens: `first` is the workload as the
    /// operation was accepted; lines stored from now on are handed to it.
    Watch {
        workload_id: WorkloadId,
        tap: progress::Tap,
        first: Box<Workload>,
    },
    /// A change of the workload, for its operations' channels, ordered after every
    /// line sent before it; the operations in `finished` are over.
    Publish {
        workload_id: WorkloadId,
        workload: Box<Workload>,
        finished: Vec<(TapId, Result<(), OperationFailure>)>,
    },
}

type Cursors = Arc<Mutex<HashMap<WorkloadId, watch::Sender<LogCursor>>>>;

/// What the pipeline counts, for the metrics: lines stored, and lines given
/// up (not storable, or of a workload another node owns now).
#[derive(Clone, Default)]
pub struct LogCounters {
    pub ingested: prometheus_client::metrics::counter::Counter,
    pub dropped: prometheus_client::metrics::counter::Counter,
}

/// Handle to the log pipeline. Cheap to clone.
#[derive(Clone)]
pub struct LogPipeline {
    counters: LogCounters,
    messages: mpsc::Sender<Message>,
    cursors: Cursors,
    store: Store,
    next_tap: Arc<AtomicU64>,
    max_line_bytes: usize,
}

impl LogPipeline {
    /// Starts the writer task. Lines of output longer than `max_line_bytes` are
    /// stored as marked pieces.
    pub fn start(
        store: Store,
        retention: LogRetention,
        max_line_bytes: usize,
    ) -> (LogPipeline, JoinHandle<()>) {
        Self::start_owned(store, retention, max_line_bytes, None)
    }

    /// [`LogPipeline::start`] on a database shared with other nodes: only the
    /// lines of workloads `owner` (this node) owns are stored; those of a
    /// workload another node took over are dropped, so that a node that lost a
    /// workload never writes into its log again.
    pub fn start_owned(
        store: Store,
        retention: LogRetention,
        max_line_bytes: usize,
        owner: Option<crate::domain::NodeId>,
    ) -> (LogPipeline, JoinHandle<()>) {
        let (messages, receiver) = mpsc::channel(8192);
        let cursors = Cursors::default();
        let counters = LogCounters::default();
        let writer = writer::Writer::new(store.clone(), cursors.clone(), retention, owner)
            .with_counters(counters.clone());
        let task = tokio::spawn(writer.run(receiver));
        (
            LogPipeline {
                counters,
                messages,
                cursors,
                store,
                next_tap: Arc::new(AtomicU64::new(1)),
                max_line_bytes: max_line_bytes.max(1),
            },
            task,
        )
    }

    /// The lines stored and dropped so far.
    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }

    /// A sink for one run of a workload; its lines are tagged with the generation
    /// and with the stage `stage` holds when each line is read.
    pub fn sink(
        &self,
        workload_id: WorkloadId,
        generation: u64,
        stage: watch::Receiver<Stage>,
    ) -> LogSink {
        LogSink::new(
            self.messages.clone(),
            workload_id,
            generation,
            stage,
            self.max_line_bytes,
        )
    }

    /// Marks the workload's log as complete (`true`: it rests in a terminal stage)
    /// or open again. Ordered after every line sent before it.
    pub async fn seal(&self, workload_id: &WorkloadId, sealed: bool) {
        let _ = self
            .messages
            .send(Message::Seal {
                workload_id: workload_id.clone(),
                sealed,
            })
            .await;
    }

    /// Waits until every line sent before this call is stored.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.messages.send(Message::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Opens a progress channel for an operation accepted while the workload was
    /// `first`: it gets `first`, then every line of the workload stored from now on
    /// and every [`LogPipeline::publish`]ed change, in order, until the operation
    /// is reported finished.
    pub async fn watch(&self, first: &Workload) -> (TapId, ProgressReceiver) {
        let id = self.next_tap.fetch_add(1, Ordering::Relaxed);
        let (tap, receiver) = progress::channel(id);
        let _ = self
            .messages
            .send(Message::Watch {
                workload_id: first.id.clone(),
                tap,
                first: Box::new(first.clone()),
            })
            .await;
        (id, receiver)
    }

    /// Hands a change of the workload to its operations' channels (after the lines
    /// sent before it) and ends those in `finished` with their outcome.
    pub async fn publish(
        &self,
        workload: &Workload,
        finished: Vec<(TapId, Result<(), OperationFailure>)>,
    ) {
        let _ = self
            .messages
            .send(Message::Publish {
                workload_id: workload.id.clone(),
                workload: Box::new(workload.clone()),
                finished,
            })
            .await;
    }

    /// Makes the next line of the workload continue after the last stored seq
    /// (the workload's lines may have been written by another node since).
    pub async fn reset_seq(&self, workload_id: &WorkloadId) {
        let _ = self
            .messages
            .send(Message::ResetSeq(workload_id.clone()))
            .await;
    }

    /// Drops what the pipeline keeps about a deleted workload.
    pub async fn forget(&self, workload_id: &WorkloadId) {
        let _ = self
            .messages
            .send(Message::Forget(workload_id.clone()))
            .await;
    }

    /// The cursor readers of a workload watch, created with `sealed` if it is new.
    pub(crate) fn cursor(
        &self,
        workload_id: &WorkloadId,
        sealed: bool,
    ) -> watch::Receiver<LogCursor> {
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cursors
            .entry(workload_id.clone())
            .or_insert_with(|| {
                watch::channel(LogCursor {
                    last_seq: 0,
                    sealed,
                })
                .0
            })
            .subscribe()
    }

    /// A reader of a workload's log from `after_seq` (through the store's
    /// readers' pool, so that readers never take the writer's connections), following new lines when
    /// `follow` is set. `terminal` says whether the workload rests in a terminal stage
    /// now (used only when no run of it was seen since the server started).
    pub fn reader(
        &self,
        workload_id: &WorkloadId,
        after_seq: u64,
        follow: bool,
        terminal: bool,
        filter: LogFilter,
    ) -> LogReader {
        LogReader::new(
            self.store.for_reading(),
            workload_id.clone(),
            after_seq,
            follow.then(|| self.cursor(workload_id, terminal)),
            filter,
        )
    }
}
