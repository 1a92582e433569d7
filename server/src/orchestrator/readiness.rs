//! Readiness probes: a TCP connect or an HTTP GET against the workload's service
//! itself (its [`Instance::probe_address`]), or, when the spec has no readiness
//! check, the instance's own health check (an image's `HEALTHCHECK`).

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

use crate::{
    domain::Readiness,
    runtime::{Instance, OwnHealth, Runtime},
};

/// One attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Probes start this soon after each other and back off to [`INTERVAL`]: a
/// service that listens within a few milliseconds is seen within a few
/// milliseconds, a slow one costs at most one probe every 100 ms.
const FIRST_INTERVAL: Duration = Duration::from_millis(1);
const INTERVAL: Duration = Duration::from_millis(100);
/// How often the engine is asked about an instance's own health check.
const OWN_HEALTH_INTERVAL: Duration = Duration::from_millis(250);

/// The outcome of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Ready,
    NotReady(String),
}

/// Probes `address` once.
pub async fn probe_once(readiness: &Readiness, address: SocketAddr) -> ProbeResult {
    match readiness {
        Readiness::None => ProbeResult::Ready,
        Readiness::Tcp => {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(_)) => ProbeResult::Ready,
                Ok(Err(error)) => {
                    ProbeResult::NotReady(format!("tcp connect to {address}: {error}"))
                }
                Err(_) => ProbeResult::NotReady(format!("tcp connect to {address}: timed out")),
            }
        }
        Readiness::Http { path } => {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, http_status(address, path)).await {
                Ok(Ok(status)) if (200..400).contains(&status) => ProbeResult::Ready,
                Ok(Ok(status)) => {
                    ProbeResult::NotReady(format!("GET {path} on {address}: status {status}"))
                }
                Ok(Err(error)) => {
                    ProbeResult::NotReady(format!("GET {path} on {address}: {error}"))
                }
                Err(_) => ProbeResult::NotReady(format!("GET {path} on {address}: timed out")),
            }
        }
    }
}

/// Waits until a started instance is ready, within `timeout`: the spec's
/// readiness check against the instance's probe address, or, when the spec has
/// none, the instance's own health check (ready at once when it has none).
pub async fn wait_instance_ready(
    runtime: &dyn Runtime,
    instance: &Instance,
    readiness: &Readiness,
    timeout: Duration,
) -> Result<(), String> {
    match readiness {
        Readiness::None => wait_own_health(runtime, instance, timeout).await,
        Readiness::Tcp | Readiness::Http { .. } => {
            wait_ready(readiness, instance.probe_address(), timeout).await
        }
    }
}

/// Waits until the instance's own health check says healthy; fails when it says
/// unhealthy or `timeout` passes first. Ready at once when there is no such check.
pub async fn wait_own_health(
    runtime: &dyn Runtime,
    instance: &Instance,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match runtime.own_health(instance).await {
            Ok(OwnHealth::NoCheck | OwnHealth::Healthy) => return Ok(()),
            Ok(OwnHealth::Unhealthy(reason)) => {
                return Err(format!(
                    "the image's health check reports unhealthy: {reason}"
                ));
            }
            Ok(OwnHealth::Starting) => "the image's health check has not passed yet".to_owned(),
            Err(error) => error.to_string(),
        };
        if Instant::now() + OWN_HEALTH_INTERVAL >= deadline {
            return Err(format!("not healthy after {}s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(OWN_HEALTH_INTERVAL).await;
    }
}

/// Probes `address` until ready or until `timeout`; the error is the last
/// failure. Ready at once without an address (the workload does not listen).
pub async fn wait_ready(
    readiness: &Readiness,
    address: Option<SocketAddr>,
    timeout: Duration,
) -> Result<(), String> {
    let Some(address) = address else {
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    let mut interval = FIRST_INTERVAL;
    loop {
        let last = match probe_once(readiness, address).await {
            ProbeResult::Ready => return Ok(()),
            ProbeResult::NotReady(reason) => reason,
        };
        if Instant::now() + interval >= deadline {
            return Err(format!("not ready after {}s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(INTERVAL);
    }
}

/// The status code of `GET path` on `address` (HTTP/1.0, connection closed).
async fn http_status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: slipway\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // Read the whole head (not just the status line), so a service that writes
    // its response in pieces is not cut off mid-write by the probe going away.
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 8192 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&head);
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, sync::Mutex, time::Duration};

    use async_trait::async_trait;
    use tokio::sync::watch;

    use super::*;
    use crate::{
        domain::{RuntimeKind, WorkloadId},
        logs::LogSink,
        runtime::{ExitStatus, LogResume, Reclaimed, RunContext, RuntimeError, RuntimeHandle},
    };

    /// A runtime whose instances' own health check says the scripted verdicts in
    /// turn, then the last one forever; nothing else is used.
    struct ScriptedHealth(Mutex<VecDeque<OwnHealth>>);

    impl ScriptedHealth {
        fn new(verdicts: impl IntoIterator<Item = OwnHealth>) -> Self {
            Self(Mutex::new(verdicts.into_iter().collect()))
        }
    }

    fn unused() -> RuntimeError {
        RuntimeError::Invalid("not used by readiness".to_owned())
    }

    #[async_trait]
    impl Runtime for ScriptedHealth {
        fn kind(&self) -> RuntimeKind {
            RuntimeKind::Docker
        }
        async fn validate(&self, _: &RunContext, _: &LogSink) -> Result<(), RuntimeError> {
            Err(unused())
        }
        async fn build(&self, _: &RunContext, _: &LogSink) -> Result<(), RuntimeError> {
            Err(unused())
        }
        async fn start(&self, _: &RunContext, _: &LogSink) -> Result<Instance, RuntimeError> {
            Err(unused())
        }
        async fn stop(
            &self,
            _: &Instance,
            _: &str,
            _: Duration,
        ) -> Result<ExitStatus, RuntimeError> {
            Err(unused())
        }
        async fn exec(
            &self,
            _: &RunContext,
            _: &Instance,
            _: &[String],
            _: Duration,
        ) -> Result<bool, RuntimeError> {
            Err(unused())
        }
        async fn own_health(&self, _: &Instance) -> Result<OwnHealth, RuntimeError> {
            let mut verdicts = self.0.lock().map_err(|_| unused())?;
            let verdict = if verdicts.len() > 1 {
                verdicts.pop_front()
            } else {
                verdicts.front().cloned()
            };
            Ok(verdict.unwrap_or(OwnHealth::NoCheck))
        }
        async fn reclaim(
            &self,
            _: &RuntimeHandle,
            _: &LogSink,
            _: LogResume,
            _: Duration,
        ) -> Result<Reclaimed, RuntimeError> {
            Err(unused())
        }
        async fn remove(&self, _: &WorkloadId) -> Result<(), RuntimeError> {
            Err(unused())
        }
    }

    fn instance(probe_address: Option<SocketAddr>) -> Instance {
        let (_exit, exited) = watch::channel(None);
        let handle = RuntimeHandle {
            runtime_id: "test".to_owned(),
            process_start_time: None,
        };
        Instance::new(handle, exited).with_probe_address(probe_address)
    }

    #[tokio::test]
    async fn without_a_readiness_check_the_instances_own_health_check_decides() {
        let timeout = Duration::from_secs(1);
        let none = Readiness::None;
        let cases = [
            (vec![OwnHealth::NoCheck], Ok(())),
            (
                vec![OwnHealth::Starting, OwnHealth::Starting, OwnHealth::Healthy],
                Ok(()),
            ),
            (
                vec![
                    OwnHealth::Starting,
                    OwnHealth::Unhealthy("exit code 1".to_owned()),
                ],
                Err("the image's health check reports unhealthy: exit code 1".to_owned()),
            ),
            (
                vec![OwnHealth::Starting],
                Err("not healthy after 1s: the image's health check has not passed yet".to_owned()),
            ),
        ];
        for (verdicts, expected) in cases {
            let runtime = ScriptedHealth::new(verdicts.clone());
            let outcome = wait_instance_ready(&runtime, &instance(None), &none, timeout).await;
            assert_eq!(outcome, expected, "{verdicts:?}");
        }
    }

    #[tokio::test]
    async fn probes_go_to_the_instances_probe_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        // An image that says unhealthy does not matter when the spec has its own check.
        let runtime = ScriptedHealth::new([OwnHealth::Unhealthy("ignored".to_owned())]);
        let ready = wait_instance_ready(
            &runtime,
            &instance(Some(address)),
            &Readiness::Tcp,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(ready, Ok(()));
        drop(listener);
        assert!(matches!(
            probe_once(&Readiness::Tcp, address).await,
            ProbeResult::NotReady(reason) if reason.contains(&address.to_string())
        ));
    }
}
