//! Reading a workload's log from the store, following new lines.

use std::collections::VecDeque;

use futures::Stream;
use tokio::sync::watch;

use super::LogCursor;
use crate::{
    domain::{LogLine, WorkloadId},
    store::{Store, StoreError},
};

/// Lines read from the store per query.
const PAGE: u64 = 1000;

/// Reads a workload's log in seq order from a position; with a cursor it follows
/// new lines until the log is sealed.
pub struct LogReader {
    store: Store,
    workload_id: WorkloadId,
    /// Every line up to here has been handed out.
    after_seq: u64,
    cursor: Option<watch::Receiver<LogCursor>>,
    buffered: VecDeque<LogLine>,
    done: bool,
}

impl LogReader {
    pub(super) fn new(
        store: Store,
        workload_id: WorkloadId,
        after_seq: u64,
        cursor: Option<watch::Receiver<LogCursor>>,
    ) -> Self {
        Self {
            store,
            workload_id,
            after_seq,
            cursor,
            buffered: VecDeque::new(),
            done: false,
        }
    }

    /// The seq of the last line handed out (or the starting point).
    pub fn position(&self) -> u64 {
        self.after_seq
    }

    /// The next line; `None` at the end of the stored lines (not following) or once
    /// the log is sealed and read to its end (following).
    pub async fn next(&mut self) -> Option<Result<LogLine, StoreError>> {
        self.read(true).await
    }

    /// The next stored line, without waiting for new ones.
    pub async fn next_stored(&mut self) -> Option<Result<LogLine, StoreError>> {
        self.read(false).await
    }

    async fn read(&mut self, wait: bool) -> Option<Result<LogLine, StoreError>> {
        loop {
            if let Some(line) = self.buffered.pop_front() {
                self.after_seq = line.seq;
                return Some(Ok(line));
            }
            if self.done {
                return None;
            }
            // Read the seal before the store: a seal is set only after every line
            // before it is stored, so an empty read after a seal is the end.
            let sealed = match &mut self.cursor {
                Some(cursor) => cursor.borrow_and_update().sealed,
                None => true,
            };
            match self
                .store
                .read_log_lines(&self.workload_id, self.after_seq, PAGE)
                .await
            {
                Ok(page) if !page.is_empty() => {
                    self.buffered.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
            if sealed {
                self.done = true;
                return None;
            }
            if !wait {
                return None;
            }
            let Some(cursor) = &mut self.cursor else {
                return None;
            };
            if cursor.changed().await.is_err() {
                // The workload was deleted.
                self.done = true;
                return None;
            }
        }
    }

    /// The reader as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<LogLine, StoreError>> + Send + 'static {
        futures::stream::unfold(self, |mut reader| async move {
            reader.next().await.map(|line| (line, reader))
        })
    }
}
