//! Reading a workload's log from the store, following new lines.

use std::{collections::VecDeque, time::Duration};

use futures::Stream;
use tokio::{sync::watch, time::Instant};

use super::LogCursor;
use crate::{
    domain::{LogFilter, LogItem, LogLine, WorkloadId},
    store::{Store, StoreError, is_transient},
};

/// Lines read from the store per query: what a reader costs the server at most.
const PAGE: u64 = 1000;

/// How long a reader retries a transient failure of the store (the readers'
/// pool busy, the database locked) before its stream ends with the error.
const TRANSIENT_PATIENCE: Duration = Duration::from_secs(30);

/// Reads a workload's log in seq order from a position; with a cursor it follows
/// new lines until the log is sealed. Lines that retention dropped before they
/// were read, or that could not be stored, are announced by a
/// [`LogItem::Dropped`] marker, never skipped silently.
///
/// A reader holds no connection between queries and reads a page at a time,
/// so a slow one costs one page and falls behind, catching up from the store.
pub struct LogReader {
    store: Store,
    workload_id: WorkloadId,
    filter: LogFilter,
    /// Every line up to here has been handed out (or did not pass the filter).
    after_seq: u64,
    cursor: Option<watch::Receiver<LogCursor>>,
    buffered: VecDeque<LogItem>,
    checked_start: bool,
    done: bool,
}

impl LogReader {
    pub(super) fn new(
        store: Store,
        workload_id: WorkloadId,
        after_seq: u64,
        cursor: Option<watch::Receiver<LogCursor>>,
        filter: LogFilter,
    ) -> Self {
        Self {
            store,
            workload_id,
            filter,
            after_seq,
            cursor,
            buffered: VecDeque::new(),
            checked_start: false,
            done: false,
        }
    }

    /// The seq of the last line handed out (or the starting point).
    pub fn position(&self) -> u64 {
        self.after_seq
    }

    /// The next line or marker; `None` at the end of the stored lines (not
    /// following) or once the log is sealed and read to its end (following).
    pub async fn next(&mut self) -> Option<Result<LogItem, StoreError>> {
        self.read(true).await
    }

    /// The next stored line or marker, without waiting for new ones.
    pub async fn next_stored(&mut self) -> Option<Result<LogItem, StoreError>> {
        self.read(false).await
    }

    /// A marker for the lines retention dropped after `after_seq`, if any.
    async fn dropped_marker(&self) -> Result<Option<LogItem>, StoreError> {
        let first = self.store.first_log_seq(&self.workload_id).await?;
        Ok(match first {
            Some(first) if first > self.after_seq + 1 => Some(LogItem::Dropped {
                through: first - 1,
                count: first - 1 - self.after_seq,
            }),
            _ => None,
        })
    }

    async fn read(&mut self, wait: bool) -> Option<Result<LogItem, StoreError>> {
        loop {
            if let Some(item) = self.buffered.pop_front() {
                self.after_seq = match &item {
                    LogItem::Line(line) => line.seq,
                    LogItem::Dropped { through, .. } => *through,
                };
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if !self.checked_start {
                self.checked_start = true;
                match self.dropped_marker().await {
                    Ok(Some(marker)) => {
                        self.buffered.push_back(marker);
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => return Some(Err(self.fail(error))),
                }
            }
            // Read the seal before the store: a seal is set only after every line
            // before it is stored, so an empty read after a seal is the end.
            let sealed = match &mut self.cursor {
                Some(cursor) => cursor.borrow_and_update().sealed,
                None => true,
            };
            let page = match self.read_page().await {
                Ok(page) => page,
                Err(error) => return Some(Err(self.fail(error))),
            };
            if let Some(first) = page.first() {
                if first.seq > self.after_seq + 1 {
                    // A gap: filtered-out lines, lines retention dropped meanwhile,
                    // or (with no filter) lines that could not be stored.
                    match self.dropped_marker().await {
                        Ok(Some(marker)) => self.buffered.push_back(marker),
                        Ok(None) if self.filter.is_empty() => {
                            self.buffered.push_back(LogItem::Dropped {
                                through: first.seq - 1,
                                count: first.seq - 1 - self.after_seq,
                            })
                        }
                        Ok(None) => {}
                        Err(error) => return Some(Err(self.fail(error))),
                    }
                }
                let mut previous: Option<u64> = None;
                for line in page {
                    // With no filter, a gap inside the page is lines that could
                    // not be stored: said, not skipped.
                    if let Some(previous) = previous.filter(|_| self.filter.is_empty()) {
                        if line.seq > previous + 1 {
                            self.buffered.push_back(LogItem::Dropped {
                                through: line.seq - 1,
                                count: line.seq - 1 - previous,
                            });
                        }
                    }
                    previous = Some(line.seq);
                    self.buffered.push_back(LogItem::Line(line));
                }
                continue;
            }
            if sealed || !wait {
                self.done = sealed;
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

    /// The next page, retrying transient failures of the store with back-off
    /// for up to [`TRANSIENT_PATIENCE`].
    async fn read_page(&self) -> Result<Vec<LogLine>, StoreError> {
        let began = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            match self
                .store
                .read_filtered_log_lines(&self.workload_id, self.after_seq, PAGE, &self.filter)
                .await
            {
                Err(error) if is_transient(&error) && began.elapsed() < TRANSIENT_PATIENCE => {
                    tracing::debug!(%error, workload_id = %self.workload_id, "reading log lines failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    fn fail(&mut self, error: StoreError) -> StoreError {
        self.done = true;
        error
    }

    /// The reader as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Result<LogItem, StoreError>> + Send + 'static {
        futures::stream::unfold(self, |mut reader| async move {
            reader.next().await.map(|item| (item, reader))
        })
    }
}

/// A line, when the item is one.
pub fn line(item: LogItem) -> Option<LogLine> {
    match item {
        LogItem::Line(line) => Some(line),
        LogItem::Dropped { .. } => None,
    }
}
