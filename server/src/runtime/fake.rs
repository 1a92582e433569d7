//! A scripted runtime for lifecycle tests: builds that fail or hang, runs that
//! exit with a code after a delay or run until stopped, stops that are honoured
//! or ignored until the kill, and what reconcile finds. No process, no engine.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    ExitStatus, Instance, LogResume, Reclaimed, RunContext, Runtime, RuntimeError, RuntimeHandle,
};
use crate::{
    domain::{LogStream, RuntimeKind, WorkloadId},
    logs::LogSink,
};

/// What a build does.
#[derive(Debug, Clone)]
pub enum Build {
    Succeed,
    /// Prints the line, then fails with it.
    Fail(String),
    /// Never ends (until the workload is stopped).
    Hang,
}

/// What one run does once started.
#[derive(Debug, Clone)]
pub enum Run {
    /// Prints the line, waits, then exits with the code.
    ExitAfter(Duration, i32, &'static str),
    /// Runs until stopped.
    Forever,
}

/// What a stop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Exits on the stop signal.
    Honour,
    /// Ignores it: exits when killed at the end of the grace period.
    Ignore,
}

/// The script. Runs are taken in order; the last one repeats.
#[derive(Debug)]
pub struct Script {
    pub build: Build,
    pub runs: Mutex<VecDeque<Run>>,
    pub stop: Stop,
    /// What reconcile finds for a recorded instance.
    pub reclaim: fn() -> Reclaimed,
}

impl Script {
    pub fn runs(runs: impl IntoIterator<Item = Run>) -> Script {
        Script {
            build: Build::Succeed,
            runs: Mutex::new(runs.into_iter().collect()),
            stop: Stop::Honour,
            reclaim: || Reclaimed::Stopped,
        }
    }
}

/// The scripted runtime (registered as the process runtime).
pub struct FakeRuntime {
    script: Script,
    /// Instances started so far.
    pub starts: AtomicUsize,
    /// Stops asked so far.
    pub stops: AtomicUsize,
    next_id: AtomicU64,
    /// The exit senders of live instances, by runtime id.
    live: Mutex<Vec<(String, watch::Sender<Option<ExitStatus>>)>>,
}

impl FakeRuntime {
    pub fn new(script: Script) -> Arc<FakeRuntime> {
        Arc::new(FakeRuntime {
            script,
            starts: AtomicUsize::new(0),
            stops: AtomicUsize::new(0),
            next_id: AtomicU64::new(1000),
            live: Mutex::new(Vec::new()),
        })
    }

    fn next_run(&self) -> Run {
        let mut runs = self
            .script
            .runs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match runs.len() {
            0 => Run::Forever,
            1 => runs[0].clone(),
            _ => runs.pop_front().unwrap_or(Run::Forever),
        }
    }

    fn exit(&self, runtime_id: &str, status: ExitStatus) {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, sender)) = live.iter().find(|(id, _)| id == runtime_id) {
            sender.send_if_modified(|current| {
                let first = current.is_none();
                if first {
                    *current = Some(status);
                }
                first
            });
        }
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn validate(&self, _context: &RunContext, _logs: &LogSink) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn build(&self, _context: &RunContext, logs: &LogSink) -> Result<(), RuntimeError> {
        match &self.script.build {
            Build::Succeed => Ok(()),
            Build::Fail(line) => {
                logs.output(LogStream::Stderr, line.clone()).await;
                Err(RuntimeError::Build(line.clone()))
            }
            Build::Hang => std::future::pending().await,
        }
    }

    async fn start(&self, _context: &RunContext, logs: &LogSink) -> Result<Instance, RuntimeError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        let runtime_id = self.next_id.fetch_add(1, Ordering::SeqCst).to_string();
        let (sender, exit) = watch::channel(None);
        let scripted = sender.clone();
        self.live
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push((runtime_id.clone(), sender));
        if let Run::ExitAfter(delay, code, line) = self.next_run() {
            logs.output(LogStream::Stdout, line.to_owned()).await;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                scripted.send_if_modified(|current| {
                    let first = current.is_none();
                    if first {
                        *current = Some(ExitStatus {
                            code: Some(code),
                            ..ExitStatus::default()
                        });
                    }
                    first
                });
            });
        }
        let handle = RuntimeHandle {
            runtime_id,
            process_start_time: Some(1),
        };
        Ok(Instance::new(handle, exit))
    }

    async fn stop(
        &self,
        instance: &Instance,
        _signal: &str,
        grace: Duration,
    ) -> Result<ExitStatus, RuntimeError> {
        self.stops.fetch_add(1, Ordering::SeqCst);
        let signalled = |signal| ExitStatus {
            signal: Some(signal),
            ..ExitStatus::default()
        };
        if self.script.stop == Stop::Honour {
            self.exit(&instance.handle.runtime_id, signalled(15));
        } else if tokio::time::timeout(grace, instance.exited())
            .await
            .is_err()
        {
            self.exit(&instance.handle.runtime_id, signalled(9));
        }
        Ok(instance.exited().await)
    }

    async fn exec(
        &self,
        _context: &RunContext,
        _instance: &Instance,
        _command: &[String],
        _timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        Ok(true)
    }

    async fn reclaim(
        &self,
        _handle: &RuntimeHandle,
        _logs: &LogSink,
        _resume: LogResume,
        _grace: Duration,
    ) -> Result<Reclaimed, RuntimeError> {
        Ok((self.script.reclaim)())
    }

    async fn remove(&self, _workload_id: &WorkloadId) -> Result<(), RuntimeError> {
        Ok(())
    }
}
