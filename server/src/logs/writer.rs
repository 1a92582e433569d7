//! The writer task: gives each line its seq, stores lines in batches, wakes the
//! readers, hands lines to progress channels, and applies retention.
//!
//! A write that cannot succeed never wedges it: a transient failure of the
//! database (connection lost, pool exhausted, database locked) is retried with
//! back-off for a while; a permanent one (data the database refuses) splits the
//! batch in halves until the line at fault is found, which is replaced by a
//! marker line. Lines that still cannot be stored are counted, logged by the
//! server, leave a gap in the seqs (readers show it as a `dropped` marker), and
//! a system line in the log says how many were lost and why.

use std::{collections::HashMap, time::Duration};

use tokio::{sync::mpsc, time::Instant};

use super::{
    Cursors, LogCursor, LogRetention, Message, OperationFailure, TapId, progress, retention,
};
use crate::{
    domain::{LogLevel, LogLine, LogStream, Workload, WorkloadId},
    store::{Store, StoreError, is_transient},
};

/// When a batch is written: this many lines, or this long after its first line.
const BATCH_LINES: usize = 4096;
const BATCH_DELAY: Duration = Duration::from_millis(20);

/// How long a transient failure of the database is retried before the lines
/// are given up (counted, logged and marked in the log).
const TRANSIENT_PATIENCE: Duration = Duration::from_secs(30);

/// Why lines could not be stored.
enum Failure {
    /// The database refuses these lines, and would again.
    Permanent(StoreError),
    /// The database stayed unavailable for [`TRANSIENT_PATIENCE`].
    Unavailable(StoreError),
}

pub(super) struct Writer {
    store: Store,
    cursors: Cursors,
    next_seq: HashMap<WorkloadId, u64>,
    batch: Vec<LogLine>,
    retention: retention::Retention,
    /// Lines lost (not stored) that no line in the log reports yet: how many,
    /// why, and the last of them.
    unreported_loss: HashMap<WorkloadId, (u64, String, LogLine)>,
    /// Open progress channels, with the seq after which their lines start.
    taps: HashMap<WorkloadId, Vec<(u64, progress::Tap)>>,
    /// On a shared database, this node: lines of workloads it does not own are
    /// not stored.
    owner: Option<crate::domain::NodeId>,
    /// Lines stored and dropped, for the metrics.
    counters: super::LogCounters,
}

impl Writer {
    pub(super) fn new(
        store: Store,
        cursors: Cursors,
        limits: LogRetention,
        owner: Option<crate::domain::NodeId>,
    ) -> Self {
        Self {
            retention: retention::Retention::new(store.clone(), limits),
            store,
            cursors,
            next_seq: HashMap::new(),
            batch: Vec::new(),
            unreported_loss: HashMap::new(),
            taps: HashMap::new(),
            owner,
            counters: super::LogCounters::default(),
        }
    }

    /// Counts stored and dropped lines into `counters`.
    pub(super) fn with_counters(mut self, counters: super::LogCounters) -> Self {
        self.counters = counters;
        self
    }

    pub(super) async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
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
            if let Message::Line {
                workload_id,
                generation,
                stage,
                line,
            } = message
            {
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
                continue;
            }
            // Every other message is ordered after the lines sent before it.
            self.write_batch().await;
            deadline = None;
            self.handle(message).await;
        }
        // Every sender is gone: store what is left.
        self.write_batch().await;
    }

    /// Any message but a line, once the lines before it are stored.
    async fn handle(&mut self, message: Message) {
        match message {
            Message::Line { .. } => {}
            Message::Seal {
                workload_id,
                sealed,
            } => self.update_cursor(&workload_id, |cursor| cursor.sealed = sealed),
            Message::Flush(done) => {
                let _ = done.send(());
            }
            Message::ResetSeq(workload_id) => {
                self.next_seq.remove(&workload_id);
            }
            Message::Forget(workload_id) => {
                self.next_seq.remove(&workload_id);
                self.retention.forget(&workload_id);
                self.unreported_loss.remove(&workload_id);
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
            } => self.publish(&workload_id, &workload, finished),
        }
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

    /// Stores the batch (see the module's doc for what cannot be), then hands
    /// what was stored to readers and progress channels, and applies retention.
    async fn write_batch(&mut self) {
        self.report_losses().await;
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.drop_unowned(&mut batch).await;
        let stored = self.store_splitting(batch).await;
        self.counters.ingested.inc_by(stored.len() as u64);
        if !self.taps.is_empty() {
            for line in &stored {
                if let Some(taps) = self.taps.get_mut(&line.workload_id) {
                    for (after_seq, tap) in taps.iter_mut() {
                        if line.seq > *after_seq {
                            tap.line(line);
                        }
                    }
                }
            }
        }
        let mut written: HashMap<WorkloadId, (u64, retention::Usage)> = HashMap::new();
        for line in &stored {
            let entry = written.entry(line.workload_id.clone()).or_default();
            entry.0 = entry.0.max(line.seq);
            entry.1.lines += 1;
            entry.1.bytes += line.message.len() as u64;
        }
        for (workload_id, (last_seq, added)) in written {
            self.update_cursor(&workload_id, |cursor| {
                cursor.last_seq = cursor.last_seq.max(last_seq);
            });
            self.retention.account(&workload_id, added).await;
        }
    }

    /// Adds a system line to the batch for each workload that lost lines since
    /// its last such line.
    /// Drops the lines of workloads another node owns now (on a shared
    /// database): their seqs are that node's to give.
    async fn drop_unowned(&mut self, batch: &mut Vec<LogLine>) {
        let Some(owner) = &self.owner else { return };
        let mut ids: Vec<WorkloadId> = batch.iter().map(|line| line.workload_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let owned = match self.store.owned_by_node(&ids, owner).await {
            Ok(owned) => owned,
            Err(error) => {
                // Stored as usual: fencing of the workload's state still holds.
                tracing::warn!(%error, "checking which workloads this node owns failed");
                return;
            }
        };
        let before = batch.len();
        batch.retain(|line| owned.contains(&line.workload_id));
        self.counters.dropped.inc_by((before - batch.len()) as u64);
        if batch.len() < before {
            for id in ids.iter().filter(|id| !owned.contains(id)) {
                tracing::warn!(workload_id = %id, "dropped log lines of a workload another node owns now");
                self.next_seq.remove(id);
            }
        }
    }

    async fn report_losses(&mut self) {
        let losses: Vec<_> = self.unreported_loss.drain().collect();
        for (workload_id, (count, reason, last)) in losses {
            let seq = self.next_seq(&workload_id).await;
            self.batch.push(LogLine {
                seq,
                stream: LogStream::System,
                level: LogLevel::Error,
                message: format!(
                    "[slipway: dropped {count} log lines that could not be stored: {reason}]"
                ),
                ..last
            });
        }
    }

    /// Stores `lines`; returns the lines stored (a line the database refuses is
    /// replaced by a marker line with its seq).
    async fn store_splitting(&mut self, lines: Vec<LogLine>) -> Vec<LogLine> {
        let mut stored = Vec::with_capacity(lines.len());
        // Parts still to store, the next one last.
        let mut parts = vec![lines];
        while let Some(mut part) = parts.pop() {
            match self.store_retrying(&part).await {
                Ok(()) => stored.append(&mut part),
                Err(Failure::Permanent(_)) if part.len() > 1 => {
                    let second = part.split_off(part.len() / 2);
                    parts.push(second);
                    parts.push(part);
                }
                Err(Failure::Permanent(error)) => {
                    let Some(line) = part.pop() else { continue };
                    tracing::error!(
                        %error,
                        workload_id = %line.workload_id,
                        seq = line.seq,
                        "the database refused a log line; it is replaced by a marker"
                    );
                    let marker = LogLine {
                        stream: LogStream::System,
                        level: LogLevel::Error,
                        message: format!(
                            "[slipway: this line ({} bytes of {} output) could not be stored: {error}]",
                            line.message.len(),
                            line.stream.as_str()
                        ),
                        ..line
                    };
                    match self.store_retrying(std::slice::from_ref(&marker)).await {
                        Ok(()) => stored.push(marker),
                        Err(Failure::Permanent(error) | Failure::Unavailable(error)) => {
                            self.lose(std::slice::from_ref(&marker), &error)
                        }
                    }
                }
                Err(Failure::Unavailable(error)) => self.lose(&part, &error),
            }
        }
        stored
    }

    /// Stores `lines` at once, retrying transient failures with back-off for
    /// up to [`TRANSIENT_PATIENCE`].
    async fn store_retrying(&self, lines: &[LogLine]) -> Result<(), Failure> {
        let began = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let error = match self.store.append_log_lines(lines).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if !is_transient(&error) {
                return Err(Failure::Permanent(error));
            }
            if began.elapsed() >= TRANSIENT_PATIENCE {
                return Err(Failure::Unavailable(error));
            }
            tracing::warn!(%error, lines = lines.len(), "storing log lines failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Counts and logs lines given up; the next batch says so in their log.
    fn lose(&mut self, lines: &[LogLine], error: &StoreError) {
        self.counters.dropped.inc_by(lines.len() as u64);
        let mut per_workload: HashMap<&WorkloadId, u64> = HashMap::new();
        // (Seqs are not given back: the gap they leave is shown to readers.)
        for line in lines {
            *per_workload.entry(&line.workload_id).or_default() += 1;
        }
        for (workload_id, count) in per_workload {
            tracing::error!(
                %error,
                %workload_id,
                lines = count,
                "log lines could not be stored and are dropped"
            );
            let Some(last) = lines
                .iter()
                .rev()
                .find(|line| &line.workload_id == workload_id)
            else {
                continue;
            };
            let entry = self
                .unreported_loss
                .entry(workload_id.clone())
                .or_insert_with(|| (0, String::new(), last.clone()));
            entry.0 += count;
            entry.1 = error.to_string();
            entry.2 = last.clone();
        }
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
            .or_insert_with(|| tokio::sync::watch::channel(LogCursor::default()).0);
        cursor.send_modify(change);
    }
}
