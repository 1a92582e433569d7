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
    loop {
        let last = match probe_once(readiness, address).await {
            ProbeResult::Ready => return Ok(()),
            ProbeResult::NotReady(reason) => reason,
        };
        if Instant::now() + INTERVAL >= deadline {
            return Err(format!("not ready after {}s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// The status code of `GET path` on `address` (HTTP/1.0, connection closed).
async fn http_status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: slipway\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 8192 {
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
