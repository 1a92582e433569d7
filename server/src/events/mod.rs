//! The event log: every change of state is committed together with an event that
//! gets the next global revision, and watchers follow the log from any revision.
//!
//! One writer task assigns revisions and commits, so revisions are committed in
//! order and a watcher that has seen revision R has seen every event up to R.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    domain::{Event, NewEvent, now},
    store::{EventFilter, StateWrite, Store, StoreError},
};

/// Events read from the store per query while catching up.
const PAGE: u64 = 256;

/// Why a watch ended early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The requested revision is older than what is retained: re-list, then watch.
    #[error("revision {requested} is no longer retained; the oldest retained revision is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event log is shut down")]
    Closed,
}

struct Commit {
    write: StateWrite,
    event: NewEvent,
    reply: oneshot::Sender<Result<Event, StoreError>>,
}

/// Handle to the event log. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    commits: mpsc::Sender<Commit>,
    latest: watch::Receiver<u64>,
    store: Store,
}

impl EventLog {
    /// Starts the writer task, continuing after the newest stored revision.
    pub async fn start(store: Store) -> Result<EventLog, StoreError> {
        let last = store.last_revision().await?;
        let (commits, receiver) = mpsc::channel(256);
        let (latest_sender, latest) = watch::channel(last);
        tokio::spawn(write_loop(store.clone(), receiver, latest_sender, last));
        Ok(EventLog {
            commits,
            latest,
            store,
        })
    }

    /// Applies `write` and records `event` with the next revision, atomically.
    /// Workload snapshots (in the write and in the event) get that revision.
    pub async fn commit(&self, write: StateWrite, event: NewEvent) -> Result<Event, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.commits
            .send(Commit {
                write,
                event,
                reply,
            })
            .await
            .map_err(|_| CommitError::Closed)?;
        Ok(answer.await.map_err(|_| CommitError::Closed)??)
    }

    /// The newest committed revision.
    pub fn latest_revision(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Events with a revision above `since` that pass `filter`: the stored ones,
    /// then new ones as they are committed. Never ends by itself, except with an error.
    pub async fn watch(
        &self,
        since: u64,
        filter: EventFilter,
    ) -> Result<impl Stream<Item = Result<Event, WatchError>> + Send + 'static, WatchError> {
        if since > 0 {
            if let Some(oldest) = self.store.first_revision().await? {
                if since + 1 < oldest {
                    return Err(WatchError::Compacted {
                        requested: since,
                        oldest,
                    });
                }
            }
        }
        let state = WatchState {
            store: self.store.clone(),
            latest: self.latest.clone(),
            filter,
            cursor: since,
            buffered: std::collections::VecDeque::new(),
        };
        Ok(futures::stream::unfold(state, |mut state| async move {
            let next = state.next().await;
            next.map(|item| (item, state))
        })
        .fuse())
    }
}

struct WatchState {
    store: Store,
    latest: watch::Receiver<u64>,
    filter: EventFilter,
    /// Every event up to here has been read (and passed on when it matched).
    cursor: u64,
    buffered: std::collections::VecDeque<Event>,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event, WatchError>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Some(Ok(event));
            }
            let head = *self.latest.borrow_and_update();
            if head > self.cursor {
                let page = match self
                    .store
                    .read_events(self.cursor, &self.filter, PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => return Some(Err(error.into())),
                };
                if page.len() as u64 == PAGE {
                    self.cursor = page.last().map_or(self.cursor, |event| event.revision);
                } else {
                    // Everything up to `head` was committed before it was published.
                    let read_to = page.last().map_or(0, |event| event.revision);
                    self.cursor = head.max(read_to);
                }
                self.buffered.extend(page);
                continue;
            }
            if self.latest.changed().await.is_err() {
                return None;
            }
        }
    }
}

async fn write_loop(
    store: Store,
    mut commits: mpsc::Receiver<Commit>,
    latest: watch::Sender<u64>,
    mut last: u64,
) {
    while let Some(Commit {
        mut write,
        event,
        reply,
    }) = commits.recv().await
    {
        let revision = last + 1;
        let mut workload = event.workload;
        for snapshot in workload.iter_mut() {
            snapshot.revision = revision;
        }
        if let StateWrite::CreateWorkload(row) | StateWrite::UpdateWorkload(row) = &mut write {
            row.revision = revision;
        }
        let event = Event {
            revision,
            timestamp: now(),
            kind: event.kind,
            deployment_id: event.deployment_id,
            workload_id: event.workload_id,
            workload,
            message: event.message,
        };
        let mut attempt = 0;
        let result = loop {
            match store.commit(&write, &event).await {
                Err(StoreError::Database { context, source }) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(%source, context, attempt, "commit failed, retrying");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(()) => {
                last = revision;
                latest.send_replace(revision);
                let _ = reply.send(Ok(event));
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeploymentId, EventKind, Workload};

    async fn log() -> EventLog {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        EventLog::start(store).await.expect("event log")
    }

    fn created(workload: &Workload) -> (StateWrite, NewEvent) {
        (
            StateWrite::CreateWorkload(workload.clone()),
            NewEvent::workload(EventKind::WorkloadCreated, workload, "created"),
        )
    }

    #[tokio::test]
    async fn revisions_increase_and_watchers_replay_then_follow() {
        let log = log().await;
        let first = Workload::new(DeploymentId::generate());
        let (write, event) = created(&first);
        let committed = log.commit(write, event).await.expect("commit");
        assert_eq!(committed.revision, 1);
        assert_eq!(committed.workload.as_ref().map(|w| w.revision), Some(1));

        let mut all = Box::pin(log.watch(0, EventFilter::default()).await.expect("watch"));
        let replayed = all.next().await.expect("event").expect("ok");
        assert_eq!(replayed.revision, 1);

        let second = Workload::new(DeploymentId::generate());
        let only_second = EventFilter {
            workload_id: Some(second.id.clone()),
            ..EventFilter::default()
        };
        let mut filtered = Box::pin(log.watch(0, only_second).await.expect("watch"));
        let (write, event) = created(&second);
        log.commit(write, event).await.expect("commit");
        let live = all.next().await.expect("event").expect("ok");
        assert_eq!(live.revision, 2);
        let matched = filtered.next().await.expect("event").expect("ok");
        assert_eq!(matched.workload_id, Some(second.id));
        assert_eq!(log.latest_revision(), 2);
    }
}
