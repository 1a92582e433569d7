//! Following a container: its output into the log, stdout and stderr apart, with
//! the engine's timestamps; then its exit.

use std::time::Duration;

use bollard::{
    Docker,
    container::LogOutput,
    query_parameters::{LogsOptionsBuilder, WaitContainerOptionsBuilder},
};
use futures::StreamExt;
use tokio::sync::watch;

use super::timestamps::split_timestamp;
use crate::{
    domain::{LogStream, NewLogLine, now},
    logs::LogSink,
    runtime::{ExitStatus, Instance, LogResume, RuntimeHandle},
};

/// How long the output of an exited container is still read.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);

/// Starts following `handle`'s output (after `resume`) and its exit.
pub fn follow(docker: Docker, handle: RuntimeHandle, logs: LogSink, resume: LogResume) -> Instance {
    let (exit_sender, exit) = watch::channel(None);
    let id = handle.runtime_id.clone();
    tokio::spawn(async move {
        let reader = tokio::spawn(forward_output(docker.clone(), id.clone(), logs, resume));
        let mut code = None;
        let mut waits = docker.wait_container(
            &id,
            Some(
                WaitContainerOptionsBuilder::new()
                    .condition("not-running")
                    .build(),
            ),
        );
        match waits.next().await {
            Some(Ok(response)) => code = Some(response.status_code),
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError {
                code: exit_code, ..
            })) => code = Some(exit_code),
            Some(Err(error)) => {
                tracing::warn!(%error, container = %id, "waiting for the container failed")
            }
            None => {}
        }
        let abort = reader.abort_handle();
        if tokio::time::timeout(OUTPUT_DRAIN, reader).await.is_err() {
            abort.abort();
        }
        let inspected = docker.inspect_container(&id, None).await.ok();
        let state = inspected.and_then(|inspected| inspected.state);
        let oom_killed = state
            .as_ref()
            .and_then(|state| state.oom_killed)
            .unwrap_or(false);
        let code = code.or_else(|| state.as_ref().and_then(|state| state.exit_code));
        let status = ExitStatus {
            code: code.and_then(|code| i32::try_from(code).ok()),
            signal: None,
            oom_killed,
        };
        exit_sender.send_replace(Some(status));
    });
    Instance::new(handle, exit)
}

async fn forward_output(docker: Docker, id: String, logs: LogSink, resume: LogResume) {
    let since = resume.timestamp.map_or(0, |time| {
        i32::try_from(time.0.div_euclid(1_000_000)).unwrap_or(0)
    });
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(since)
        .build();
    let mut output = docker.logs(&id, Some(options));
    let mut to_skip = resume.seen;
    while let Some(frame) = output.next().await {
        let (stream, bytes) = match frame {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                (LogStream::Stdout, message)
            }
            Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(error) => {
                tracing::warn!(%error, container = %id, "following the container's output failed");
                break;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        for raw in text.split_terminator('\n') {
            let (timestamp, message) = split_timestamp(raw.trim_end_matches('\r'));
            // Lines stored before Slipway restarted are not stored twice.
            if let (Some(last), Some(time)) = (resume.timestamp, timestamp) {
                if time < last {
                    continue;
                }
                if time == last && to_skip > 0 {
                    to_skip -= 1;
                    continue;
                }
            }
            let mut line = NewLogLine::output(stream, message.to_owned());
            line.timestamp = timestamp.unwrap_or_else(now);
            logs.send(line).await;
        }
    }
}
