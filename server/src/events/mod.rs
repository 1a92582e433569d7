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

/// What a watch hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchItem {
    Event(Box<Event>),
    /// Nothing happened for a while: every event up to this revision was sent
    /// (or did not match the filter).
    Bookmark(u64),
}

/// Why a watch ended early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The requested revision is older than what is retained: re-list, then watch.
    #[error("revision {requested} is no longer retained; the oldest retained revision is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    /// The requested revision does not exist yet: a watch from it would skip the
    /// events up to it, and its bookmarks would name revisions not yet committed.
    #[error("revision {requested} is ahead of the current revision {current}")]
    Ahead { requested: u64, current: u64 },
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
    /// Starts the writer task, continuing after the newest stored revision and
    /// keeping about the last `retention` events.
    pub async fn start(store: Store, retention: u64) -> Result<EventLog, StoreError> {
        let last = store.last_revision().await?;
        let oldest = store.first_revision().await?.unwrap_or(last + 1);
        let (commits, receiver) = mpsc::channel(256);
        let (latest_sender, latest) = watch::channel(last);
        if store.is_shared() {
            tokio::spawn(follow_others(store.clone(), latest_sender.clone()));
        }
        let writer = Writer {
            store: store.clone(),
            latest: latest_sender,
            last,
            oldest,
            retention: retention.max(1),
        };
        tokio::spawn(writer.run(receiver));
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

    /// Fails when `since` is ahead of the newest committed revision. The store
    /// is asked before refusing: a revision read from it (a list's) may be
    /// committed a moment before this handle publishes it.
    async fn check_not_ahead(&self, since: u64) -> Result<(), WatchError> {
        if since <= self.latest_revision() {
            return Ok(());
        }
        let current = self.store.last_revision().await?;
        if since > current {
            return Err(WatchError::Ahead {
                requested: since,
                current,
            });
        }
        Ok(())
    }

    /// Events with a revision above `since` that pass `filter`: the stored ones,
    /// then new ones as they are committed, with a bookmark after
    /// `bookmark_interval` without one. Never ends by itself, except with an error
    /// (a watcher that falls behind compaction gets [`WatchError::Compacted`]).
    /// A `since` ahead of the newest committed revision is refused with
    /// [`WatchError::Ahead`].
    pub async fn watch(
        &self,
        since: u64,
        filter: EventFilter,
        bookmark_interval: Duration,
    ) -> Result<impl Stream<Item = Result<WatchItem, WatchError>> + Send + 'static, WatchError>
    {
        self.check_not_ahead(since).await?;
        check_retained(&self.store, since).await?;
        let state = WatchState {
            store: self.store.clone(),
            latest: self.latest.clone(),
            filter,
            cursor: since,
            buffered: std::collections::VecDeque::new(),
            bookmark_interval,
            failed: false,
        };
        Ok(futures::stream::unfold(state, |mut state| async move {
            let next = state.next().await;
            next.map(|item| (item, state))
        })
        .fuse())
    }
}

/// Publishes `revision` as the newest committed one unless a newer one was.
fn publish(latest: &watch::Sender<u64>, revision: u64) {
    latest.send_if_modified(|current| {
        let newer = revision > *current;
        if newer {
            *current = revision;
        }
        newer
    });
}

/// How often a node looks for events other nodes committed (a shared database).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// Publishes the revisions other nodes commit to a shared database, until
/// every handle to the log is gone.
async fn follow_others(store: Store, latest: watch::Sender<u64>) {
    let mut ticks = tokio::time::interval(FOLLOW_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if latest.receiver_count() == 0 {
            return;
        }
        match store.for_reading().last_revision().await {
            Ok(revision) => publish(&latest, revision),
            Err(error) => tracing::debug!(%error, "reading the newest revision failed"),
        }
    }
}

/// Fails when events after `since` were compacted away.
async fn check_retained(store: &Store, since: u64) -> Result<(), WatchError> {
    if let Some(oldest) = store.first_revision().await? {
        if since.saturating_add(1) < oldest {
            return Err(WatchError::Compacted {
                requested: since,
                oldest,
            });
        }
    }
    Ok(())
}

struct WatchState {
    store: Store,
    latest: watch::Receiver<u64>,
    filter: EventFilter,
    /// Every event up to here has been read (and passed on when it matched).
    cursor: u64,
    buffered: std::collections::VecDeque<Event>,
    bookmark_interval: Duration,
    failed: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchItem, WatchError>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Some(Ok(WatchItem::Event(Box::new(event))));
            }
            let head = *self.latest.borrow_and_update();
            if head > self.cursor {
                // Events after the cursor may have been compacted while this watcher lagged.
                if let Err(error) = check_retained(&self.store, self.cursor).await {
                    self.failed = true;
                    return Some(Err(error));
                }
                let page = match self
                    .store
                    .read_events(self.cursor, &self.filter, PAGE)
                    .await
                {
                    Ok(page) => page,
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error.into()));
                    }
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
            match tokio::time::timeout(self.bookmark_interval, self.latest.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_closed)) => return None,
                Err(_idle) => return Some(Ok(WatchItem::Bookmark(self.cursor))),
            }
        }
    }
}

struct Writer {
    store: Store,
    latest: watch::Sender<u64>,
    last: u64,
    /// The oldest retained revision (last + 1 when there is none).
    oldest: u64,
    retention: u64,
}

impl Writer {
    async fn run(mut self, mut commits: mpsc::Receiver<Commit>) {
        while let Some(commit) = commits.recv().await {
            self.commit(commit).await;
            self.compact().await;
        }
    }

    async fn commit(
        &mut self,
        Commit {
            mut write,
            event,
            reply,
        }: Commit,
    ) {
        // The store gives the event its revision (and the snapshots with it).
        let mut event = Event {
            revision: 0,
            timestamp: now(),
            kind: event.kind,
            deployment_id: event.deployment_id,
            workload_id: event.workload_id,
            workload: event.workload,
            message: event.message,
            actor: event.actor,
        };
        let mut attempt = 0;
        let result = loop {
            match self.store.commit(&mut write, &mut event).await {
                Err(StoreError::Database { context, source }) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(%source, context, attempt, "commit failed, retrying");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(revision) => {
                self.last = self.last.max(revision);
                self.oldest = self.oldest.min(revision);
                publish(&self.latest, revision);
                let _ = reply.send(Ok(event));
            }
            Err(error) => {
                let _ = reply.send(Err(error));
            }
        }
    }

    /// Drops the oldest events once there are a tenth more than retained.
    async fn compact(&mut self) {
        let retained = self.last + 1 - self.oldest;
        if retained <= self.retention + self.retention / 10 {
            return;
        }
        let through = self.last - self.retention;
        match self.store.delete_events_through(through).await {
            Ok(_) => self.oldest = through + 1,
            Err(error) => tracing::warn!(%error, "compacting events failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Deployment, DeploymentId, DeploymentSpec, EventKind, Workload, now};

    /// An event log on a new store, and a deployment committed as revision 1 (a
    /// workload needs one: the foreign key).
    async fn log() -> (EventLog, DeploymentId) {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let log = EventLog::start(store, 1000).await.expect("event log");
        let deployment = Deployment {
            id: DeploymentId::generate(),
            name: "events".to_owned(),
            project: String::new(),
            service_path: String::new(),
            spec: DeploymentSpec::process(vec!["true".to_owned()]),
            labels: Default::default(),
            created_at: now(),
            updated_at: now(),
            revision: 1,
        };
        let event = NewEvent {
            kind: EventKind::DeploymentCreated,
            deployment_id: deployment.id.clone(),
            workload_id: None,
            workload: None,
            message: "created".to_owned(),
            actor: None,
        };
        let id = deployment.id.clone();
        log.commit(StateWrite::CreateDeployment(Box::new(deployment)), event)
            .await
            .expect("deployment");
        (log, id)
    }

    fn created(workload: &Workload) -> (StateWrite, NewEvent) {
        (
            StateWrite::CreateWorkload(workload.clone()),
            NewEvent::workload(EventKind::WorkloadCreated, workload, "created"),
        )
    }

    #[tokio::test]
    async fn revisions_increase_and_watchers_replay_then_follow() {
        let (log, deployment_id) = log().await;
        let first = Workload::new(deployment_id.clone());
        let (write, event) = created(&first);
        let committed = log.commit(write, event).await.expect("commit");
        assert_eq!(committed.revision, 2);
        assert_eq!(committed.workload.as_ref().map(|w| w.revision), Some(2));

        let mut all = Box::pin(
            log.watch(1, EventFilter::default(), Duration::from_secs(60))
                .await
                .expect("watch"),
        );
        let Some(Ok(WatchItem::Event(replayed))) = all.next().await else {
            panic!("an event")
        };
        assert_eq!(replayed.revision, 2);

        let second = Workload::new(deployment_id);
        let only_second = EventFilter {
            workload_id: Some(second.id.clone()),
            ..EventFilter::default()
        };
        let mut filtered = Box::pin(
            log.watch(0, only_second, Duration::from_secs(60))
                .await
                .expect("watch"),
        );
        let (write, event) = created(&second);
        log.commit(write, event).await.expect("commit");
        let Some(Ok(WatchItem::Event(live))) = all.next().await else {
            panic!("an event")
        };
        assert_eq!(live.revision, 3);
        let Some(Ok(WatchItem::Event(matched))) = filtered.next().await else {
            panic!("an event")
        };
        assert_eq!(matched.workload_id, Some(second.id));
        assert_eq!(log.latest_revision(), 3);
    }
}
