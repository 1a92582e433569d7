//! End-to-end log throughput: lines per second from a workload's stdout pipe to a
//! client following its log over gRPC, next to the raw pipe ceiling (the same
//! program read straight from its pipe) on the same machine in the same run.
//!
//! `cargo bench -p slipway-testkit --bench log_throughput [-- LINES RUNS]`
//! (defaults: 300000 lines, 3 runs; the median run is reported). The server runs
//! as its own process (release build), with its SQLite database on disk, as in
//! production; its peak resident memory is reported too.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use futures::StreamExt;
use slipway_sdk::{DeploymentBuilder, proto::StreamLogsRequest};
use slipway_testkit::{Dirs, ServerProcess, port_range};
use tokio::io::{AsyncBufReadExt, BufReader};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");
const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// Reads `sample-service lines N` straight from its pipe, line by line.
async fn raw_pipe(lines: u64) -> Duration {
    let began = Instant::now();
    let mut child = tokio::process::Command::new(SAMPLE)
        .args(["lines", &lines.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut count = 0u64;
    while let Some(_line) = reader.next_line().await.expect("read") {
        count += 1;
    }
    child.wait().await.expect("wait");
    assert_eq!(count, lines);
    began.elapsed()
}

/// Runs `sample-service lines N` as a workload and follows its log from the first
/// line until line N arrives; returns the time and the server's peak memory (KiB).
async fn end_to_end(lines: u64) -> (Duration, u64) {
    let dirs = Dirs::new();
    let range = port_range();
    let server = ServerProcess::start(
        SERVER_PROCESS,
        &dirs.data,
        &dirs.root,
        &format!("{}-{}", range.start(), range.end()),
    )
    .await;
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new("bench")
                .command([SAMPLE, "lines", &lines.to_string()])
                .build(),
        )
        .await
        .expect("deployment");
    let workload = server
        .client
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    let mut follower = Box::pin(
        server
            .client
            .stream_logs(StreamLogsRequest {
                workload_id: workload.id.clone(),
                follow: true,
                ..StreamLogsRequest::default()
            })
            .await
            .expect("follow"),
    );
    let last = format!("line {lines}");
    let began = Instant::now();
    // Accepted: hang up on the progress stream (the start goes on), as a caller
    // that does not wait does; a stream left unread would hold the connection's
    // flow-control window.
    drop(
        server
            .client
            .start_workload(&workload.id)
            .await
            .expect("start"),
    );
    while let Some(entry) = follower.next().await {
        if entry.expect("entry").message == last {
            break;
        }
    }
    let took = began.elapsed();
    let peak = server.peak_memory_kib();
    server.terminate();
    (took, peak)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with("--"))
        .collect();
    let lines: u64 = arguments
        .first()
        .and_then(|value| value.parse().ok())
        .unwrap_or(300_000);
    let runs: usize = arguments
        .get(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    let mut raw = Vec::new();
    let mut served = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        raw.push(raw_pipe(lines).await);
        let (took, peak) = end_to_end(lines).await;
        served.push(took);
        peaks.push(peak);
    }
    let rate = |took: Duration| lines as f64 / took.as_secs_f64();
    let raw = median(raw);
    let served = median(served);
    println!("lines per run: {lines}, runs: {runs} (median reported)");
    println!("raw pipe ceiling: {:>10.0} lines/s ({raw:.2?})", rate(raw));
    println!(
        "end to end:       {:>10.0} lines/s ({served:.2?})",
        rate(served)
    );
    println!("end to end / raw: {:.1}%", 100.0 * rate(served) / rate(raw));
    println!(
        "server peak RSS:  {} MiB (max over runs)",
        peaks.iter().max().copied().unwrap_or(0) / 1024
    );
}
