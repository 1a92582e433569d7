//! The log pipeline: lines from runtimes and the orchestrator get a per-workload
//! sequence number, are stored in batches (by count and by time), and readers are
//! woken to read them from the store.
//!
//! Readers always read from the store, by seq, so a reader never sees a gap or a
//! duplicate, however slow it is, and the server holds at most one page per reader.
//! A line is handed to readers only once it is stored.

mod progress;
mod reader;
mod sink;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::Instant,
};

pub use progress::{OperationFailure, Progress, ProgressReceiver, TapId};
pub use reader::{LogReader, line};
pub use sink::LogSink;

use crate::{
    domain::{LogFilter, LogLine, NewLogLine, Stage, Workload, WorkloadId},
    store::Store,
};

/// When a batch is written: this many lines, or this long after its first line.
const BATCH_LINES: usize = 4096;
const BATCH_DELAY: Duration = Duration::from_millis(20);

/// How much log each workload keeps; the oldest lines go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    pub max_lines: u64,
    /// Characters of message (bytes for ASCII output).
    pub max_bytes: u64,
}

impl Default for LogRetention {
    fn default() -> Self {
        Self {
            max_lines: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a workload's stored log weighs.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    lines: u64,
    bytes: u64,
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

/// Handle to the log pipeline. Cheap to clone.
#[derive(Clone)]
pub struct LogPipeline {
    messages: mpsc::Sender<Message>,
    cursors: Cursors,
    store: Store,
    next_tap: Arc<AtomicU64>,
}

impl LogPipeline {
    /// Starts the writer task.
    pub fn start(store: Store, retention: LogRetention) -> (LogPipeline, JoinHandle<()>) {
        let (messages, receiver) = mpsc::channel(8192);
        let cursors = Cursors::default();
        let writer = Writer {
            store: store.clone(),
            cursors: cursors.clone(),
            next_seq: HashMap::new(),
            batch: Vec::new(),
            retention,
            usage: HashMap::new(),
            taps: HashMap::new(),
        };
        let task = tokio::spawn(writer.run(receiver));
        (
            LogPipeline {
                messages,
                cursors,
                store,
                next_tap: Arc::new(AtomicU64::new(1)),
            },
            task,
        )
    }

    /// A sink for one run of a workload; its lines are tagged with the generation
    /// and with the stage `stage` holds when each line is read.
    pub fn sink(
        &self,
        workload_id: WorkloadId,
        generation: u64,
        stage: watch::Receiver<Stage>,
    ) -> LogSink {
        LogSink::new(self.messages.clone(), workload_id, generation, stage)
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

    /// A reader of a workload's log from `after_seq`, following new lines when
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
            self.store.clone(),
            workload_id.clone(),
            after_seq,
            follow.then(|| self.cursor(workload_id, terminal)),
            filter,
        )
    }
}

struct Writer {
    store: Store,
    cursors: Cursors,
    next_seq: HashMap<WorkloadId, u64>,
    batch: Vec<LogLine>,
    retention: LogRetention,
    usage: HashMap<WorkloadId, Usage>,
    /// Open progress channels, with the seq after which their lines start.
    taps: HashMap<WorkloadId, Vec<(u64, progress::Tap)>>,
}

impl Writer {
    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let message = match deadline {
                Some(at) => match tokio::time::timeout_at(at, messages.recv()).await {
                    Ok(message) => message,
                    Err(_elapsed) => {
                        self.write_batch().await;
                        deadline = None;
                        continue;
                    }
                },
                None => messages.recv().await,
            };
            let Some(message) = message else { break };
            match message {
                Message::Line {
                    workload_id,
                    generation,
                    stage,
                    line,
                } => {
                    let seq = self.next_seq(&workload_id).await;
                    self.batch.push(LogLine {
                        workload_id,
                        seq,
                        generation,
                        timestamp: line.timestamp,
                        stage,
                        level: line.level,
                        stream: line.stream,
                        message: line.message,
                    });
                    if self.batch.len() >= BATCH_LINES {
                        self.write_batch().await;
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(Instant::now() + BATCH_DELAY);
                    }
                }
                Message::Seal {
                    workload_id,
                    sealed,
                } => {
                    self.write_batch().await;
                    deadline = None;
                    self.update_cursor(&workload_id, |cursor| cursor.sealed = sealed);
                }
                Message::Flush(done) => {
                    self.write_batch().await;
                    deadline = None;
                    let _ = done.send(());
                }
                Message::Forget(workload_id) => {
                    self.write_batch().await;
                    deadline = None;
                    self.next_seq.remove(&workload_id);
                    self.usage.remove(&workload_id);
                    self.taps.remove(&workload_id);
                    let mut cursors = self
                        .cursors
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner());
                    cursors.remove(&workload_id);
                }
                Message::Watch {
                    workload_id,
                    mut tap,
                    first,
                } => {
                    let after_seq = self.last_seq(&workload_id).await;
                    tap.snapshot(&first);
                    self.taps
                        .entry(workload_id)
                        .or_default()
                        .push((after_seq, tap));
                }
                Message::Publish {
                    workload_id,
                    workload,
                    finished,
                } => {
                    // The lines before this change reach the channels first.
                    self.write_batch().await;
                    deadline = None;
                    self.publish(&workload_id, &workload, finished);
                }
            }
        }
        // Every sender is gone: store what is left.
        self.write_batch().await;
    }

    /// The seq given to the workload's latest line (0 before the first), read
    /// from the store the first time.
    async fn last_seq(&mut self, workload_id: &WorkloadId) -> u64 {
        if let Some(next) = self.next_seq.get(workload_id) {
            return next - 1;
        }
        let mut last = 0;
        let mut attempt = 0u32;
        loop {
            match self.store.last_log_seq(workload_id).await {
                Ok(stored) => {
                    last = stored;
                    break;
                }
                Err(error) if attempt < 10 => {
                    attempt += 1;
                    tracing::warn!(%error, %workload_id, "reading the last log seq failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => {
                    tracing::error!(%error, %workload_id, "reading the last log seq failed");
                    break;
                }
            }
        }
        self.next_seq.insert(workload_id.clone(), last + 1);
        last
    }

    async fn next_seq(&mut self, workload_id: &WorkloadId) -> u64 {
        let seq = self.last_seq(workload_id).await + 1;
        self.next_seq.insert(workload_id.clone(), seq + 1);
        seq
    }

    /// Stores the batch, retrying until the store takes it: a line accepted is a
    /// line stored. Readers are woken once it is.
    async fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut delay = Duration::from_millis(50);
        while let Err(error) = self.store.append_log_lines(&self.batch).await {
            tracing::error!(%error, lines = self.batch.len(), "storing log lines failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        if !self.taps.is_empty() {
            for line in &self.batch {
                if let Some(taps) = self.taps.get_mut(&line.workload_id) {
                    for (after_seq, tap) in taps.iter_mut() {
                        if line.seq > *after_seq {
                            tap.line(line);
                        }
                    }
                }
            }
        }
        let mut written: HashMap<WorkloadId, (u64, Usage)> = HashMap::new();
        for line in &self.batch {
            let entry = written.entry(line.workload_id.clone()).or_default();
            entry.0 = line.seq;
            entry.1.lines += 1;
            entry.1.bytes += line.message.len() as u64;
        }
        self.batch.clear();
        for (workload_id, (last_seq, added)) in written {
            self.update_cursor(&workload_id, |cursor| cursor.last_seq = last_seq);
            self.account(&workload_id, added).await;
        }
    }

    /// Adds what was just stored to the workload's usage and drops its oldest
    /// lines when it is over the retention limits (down to 90% of them, so that
    /// trimming is not done for every batch).
    async fn account(&mut self, workload_id: &WorkloadId, added: Usage) {
        let usage = match self.usage.get_mut(workload_id) {
            Some(usage) => {
                usage.lines += added.lines;
                usage.bytes += added.bytes;
                *usage
            }
            None => {
                // The store already holds the batch just written.
                let (lines, bytes) = match self.store.log_usage(workload_id).await {
                    Ok(usage) => usage,
                    Err(error) => {
                        tracing::warn!(%error, %workload_id, "measuring a log failed");
                        return;
                    }
                };
                let usage = Usage { lines, bytes };
                self.usage.insert(workload_id.clone(), usage);
                usage
            }
        };
        let limits = self.retention;
        if usage.lines <= limits.max_lines && usage.bytes <= limits.max_bytes {
            return;
        }
        match self.trim(workload_id, usage).await {
            Ok(left) => {
                self.usage.insert(workload_id.clone(), left);
            }
            Err(error) => tracing::warn!(%error, %workload_id, "dropping old log lines failed"),
        }
    }

    async fn trim(
        &self,
        workload_id: &WorkloadId,
        mut usage: Usage,
    ) -> Result<Usage, crate::store::StoreError> {
        let keep_lines = self.retention.max_lines * 9 / 10;
        let keep_bytes = self.retention.max_bytes * 9 / 10;
        let over = |usage: &Usage| usage.lines > keep_lines || usage.bytes > keep_bytes;
        let mut after = self
            .store
            .first_log_seq(workload_id)
            .await?
            .unwrap_or(1)
            .saturating_sub(1);
        let mut cutoff = None;
        'pages: while over(&usage) {
            let page = self.store.read_log_lines(workload_id, after, 1000).await?;
            if page.is_empty() {
                break;
            }
            for line in page {
                if !over(&usage) {
                    break 'pages;
                }
                usage.lines -= 1;
                usage.bytes = usage.bytes.saturating_sub(line.message.len() as u64);
                cutoff = Some(line.seq);
                after = line.seq;
            }
        }
        if let Some(cutoff) = cutoff {
            self.store
                .delete_log_lines_through(workload_id, cutoff)
                .await?;
            tracing::debug!(%workload_id, through = cutoff, "dropped old log lines");
        }
        Ok(usage)
    }

    /// Hands a change to the workload's channels and closes the finished ones.
    fn publish(
        &mut self,
        workload_id: &WorkloadId,
        workload: &Workload,
        finished: Vec<(TapId, Result<(), OperationFailure>)>,
    ) {
        let Some(taps) = self.taps.get_mut(workload_id) else {
            return;
        };
        for (_, tap) in taps.iter_mut() {
            tap.snapshot(workload);
        }
        for (id, outcome) in finished {
            if let Some(index) = taps.iter().position(|(_, tap)| tap.id == id) {
                let (_, tap) = taps.swap_remove(index);
                tap.done(outcome.map(|()| Box::new(workload.clone())));
            }
        }
        if taps.is_empty() {
            self.taps.remove(workload_id);
        }
    }

    fn update_cursor(&self, workload_id: &WorkloadId, change: impl FnOnce(&mut LogCursor)) {
        let mut cursors = self
            .cursors
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let cursor = cursors
            .entry(workload_id.clone())
            .or_insert_with(|| watch::channel(LogCursor::default()).0);
        cursor.send_modify(change);
    }
}
