//! Reading a process's output pipes to their end, however slow the log writer
//! is, with a bound only for pipes that a process outside the workload keeps open.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, ReadBuf},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    domain::{LogLevel, LogStream},
    logs::LogSink,
};

/// How long a pipe of an exited workload may stay open with nothing in it
/// before its reader gives up (a process that escaped the workload's kill holds
/// it). A reader that is waiting for the log writer is never given up on.
pub(super) const IDLE_PIPE_LIMIT: Duration = Duration::from_secs(2);
/// How often a drain looks at its readers.
const DRAIN_TICK: Duration = Duration::from_millis(50);

/// Since when the reader has been waiting for the pipe to have data (`None`
/// while it reads, or while it is busy handing lines to the log).
#[derive(Debug, Default)]
struct Idle {
    since: Mutex<Option<Instant>>,
}

impl Idle {
    fn set(&self, waiting: bool) {
        let mut since = self
            .since
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match (waiting, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    fn since(&self) -> Option<Instant> {
        *self
            .since
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A pipe that records when its reader waits on it for data.
pub(super) struct WatchedPipe<R> {
    inner: R,
    idle: Arc<Idle>,
}

impl<R: AsyncRead + Unpin> AsyncRead for WatchedPipe<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(context, buffer);
        self.idle.set(polled.is_pending());
        polled
    }
}

/// The task reading one pipe, and how to tell that it waits on an empty pipe.
pub(super) struct PipeReader {
    stream: LogStream,
    task: JoinHandle<()>,
    idle: Arc<Idle>,
}

/// Wraps `pipe` so that [`drain`] can tell an empty pipe from a slow log, and
/// starts `read` on it.
pub(super) fn spawn_reader<R, F, Fut>(pipe: R, stream: LogStream, read: F) -> PipeReader
where
    R: AsyncRead + Unpin + Send + 'static,
    F: FnOnce(WatchedPipe<R>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let idle = Arc::new(Idle::default());
    let watched = WatchedPipe {
        inner: pipe,
        idle: idle.clone(),
    };
    PipeReader {
        stream,
        task: tokio::spawn(read(watched)),
        idle,
    }
}

/// Waits until every reader has read its pipe to the end, however long the log
/// writer takes. Only a reader that has waited on an open, empty pipe for
/// `idle_limit` (counted from now at the earliest: the workload has exited) is
/// given up on; that is said in the workload's log and in the server's.
pub(super) async fn drain(readers: Vec<PipeReader>, logs: &LogSink, idle_limit: Duration) {
    let started = Instant::now();
    for mut reader in readers {
        loop {
            match tokio::time::timeout(DRAIN_TICK, &mut reader.task).await {
                Ok(_finished) => break,
                Err(_still_reading) => {
                    let idle_for = reader
                        .idle
                        .since()
                        .map(|since| Instant::now() - since.max(started));
                    if idle_for.is_some_and(|idle_for| idle_for >= idle_limit) {
                        reader.task.abort();
                        let stream = reader.stream.as_str();
                        tracing::warn!(workload_id = %logs.workload_id(), stream, "the workload exited but a process outside it keeps its output pipe open; no longer reading it");
                        logs.system(
                            LogLevel::Warn,
                            format!("[slipway: {stream} no longer read: the workload exited but a process that left it keeps the pipe open; anything it writes from now on is lost]"),
                        )
                        .await;
                        break;
                    }
                }
            }
        }
    }
}
