//! Readiness probes: a TCP connect or an HTTP GET against the workload's port.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

use crate::domain::Readiness;

/// One attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(100);

/// The outcome of one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Ready,
    NotReady(String),
}

/// Probes once.
pub async fn probe_once(readiness: &Readiness, port: u16) -> ProbeResult {
    match readiness {
        Readiness::None => ProbeResult::Ready,
        Readiness::Tcp => {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, TcpStream::connect(("127.0.0.1", port)))
                .await
            {
                Ok(Ok(_)) => ProbeResult::Ready,
                Ok(Err(error)) => {
                    ProbeResult::NotReady(format!("tcp connect to port {port}: {error}"))
                }
                Err(_) => ProbeResult::NotReady(format!("tcp connect to port {port}: timed out")),
            }
        }
        Readiness::Http { path } => {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, http_status(port, path)).await {
                Ok(Ok(status)) if (200..400).contains(&status) => ProbeResult::Ready,
                Ok(Ok(status)) => {
                    ProbeResult::NotReady(format!("GET {path} on port {port}: status {status}"))
                }
                Ok(Err(error)) => {
                    ProbeResult::NotReady(format!("GET {path} on port {port}: {error}"))
                }
                Err(_) => ProbeResult::NotReady(format!("GET {path} on port {port}: timed out")),
            }
        }
    }
}

/// Probes until ready or until `timeout`; the error is the last failure.
pub async fn wait_ready(
    readiness: &Readiness,
    port: Option<u16>,
    timeout: Duration,
) -> Result<(), String> {
    let Some(port) = port else {
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe_once(readiness, port).await {
            ProbeResult::Ready => return Ok(()),
            ProbeResult::NotReady(reason) => reason,
        };
        if Instant::now() + INTERVAL >= deadline {
            return Err(format!("not ready after {}s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// The status code of `GET path` on 127.0.0.1:port (HTTP/1.0, connection closed).
async fn http_status(port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: slipway\r\nConnection: close\r\n\r\n"
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
