//! The slow-reader scenario of issue 16: a workload prints a burst
//! (`sh -c 'sleep 3; seq 1 N; sleep 1'`, server `--log-retention-lines 1000000`)
//! while F followers (each a client of its own) follow its log from before the
//! start, S of them reading one message every 5 ms. Reports how many lines were
//! stored, how the fast followers fared, how far the slow ones got, and the
//! server's peak resident memory.
//!
//! `cargo bench -p slipway-testkit --bench slow_readers [-- LINES FOLLOWERS SLOW]`
//! (defaults: 200000 50 40). The server runs as its own process (release build,
//! SQLite on disk; `--database-url URL` after the numbers for PostgreSQL).

use std::time::{Duration, Instant};

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder,
    proto::{Stage, Stream, StreamLogsRequest},
};
use slipway_testkit::{Dirs, ServerProcess, port_range};

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// What one follower saw: lines in order, whether it ended with an error.
struct Followed {
    slow: bool,
    numbers: Vec<u64>,
    error: Option<String>,
}

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: u64| {
        arguments
            .iter()
            .filter(|argument| !argument.starts_with("--") && !argument.contains("://"))
            .nth(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let lines = number(0, 200_000);
    let followers = number(1, 50) as usize;
    let slow = number(2, 40) as usize;
    let database_url = arguments
        .iter()
        .position(|argument| argument == "--database-url")
        .and_then(|index| arguments.get(index + 1).cloned());
    let dirs = Dirs::new();
    let range = port_range();
    let range = format!("{}-{}", range.start(), range.end());
    let mut flags = vec!["--log-retention-lines", "1000000"];
    if let Some(url) = &database_url {
        flags.extend(["--database-url", url.as_str()]);
    }
    let server =
        ServerProcess::start_with_args(SERVER_PROCESS, &dirs.data, &dirs.root, &range, &flags)
            .await;
    let script = format!("sleep 3; seq 1 {lines}; sleep 1");
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new("burst")
                .command(["sh", "-c", &script])
                .min_ready_ms(0)
                .build(),
        )
        .await
        .expect("deployment");
    let workload = server
        .client
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    let (stop_slow, slow_stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for index in 0..followers {
        let is_slow = index < slow;
        let client = Client::connect(format!("http://{}", server.address))
            .await
            .expect("connect");
        let mut stream = Box::pin(
            client
                .stream_logs(StreamLogsRequest {
                    workload_id: workload.id.clone(),
                    follow: true,
                    ..StreamLogsRequest::default()
                })
                .await
                .expect("follow"),
        );
        let mut stopped = slow_stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut followed = Followed {
                slow: is_slow,
                numbers: Vec::new(),
                error: None,
            };
            loop {
                let entry = tokio::select! {
                    entry = stream.next() => entry,
                    _ = stopped.wait_for(|stop| *stop), if is_slow => break,
                };
                match entry {
                    None => break,
                    Some(Err(error)) => {
                        followed.error = Some(format!("{error}"));
                        break;
                    }
                    Some(Ok(entry)) => {
                        if entry.stream() == Stream::Stdout {
                            if let Ok(number) = entry.message.parse() {
                                followed.numbers.push(number);
                            }
                        }
                    }
                }
                if is_slow {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            followed
        }));
    }
    let began = Instant::now();
    drop(
        server
            .client
            .start_workload(&workload.id)
            .await
            .expect("start"),
    );
    let done = server
        .client
        .wait_for(&workload.id, Stage::Stopped, slipway_testkit::PATIENCE)
        .await
        .expect("stopped");
    let ended = began.elapsed();
    let get_logs_began = Instant::now();
    let stored = server.client.all_logs(&workload.id).await.expect("logs");
    let get_logs = get_logs_began.elapsed();
    let stored_numbers: Vec<u64> = stored
        .iter()
        .filter(|entry| entry.stream() == Stream::Stdout)
        .filter_map(|entry| entry.message.parse().ok())
        .collect();
    let complete = stored_numbers == (1..=lines).collect::<Vec<_>>();
    let mut results = Vec::new();
    let fast_tasks = tasks.split_off(slow);
    for task in fast_tasks {
        results.push(task.await.expect("follower"));
    }
    let fast_ended = began.elapsed();
    let _ = stop_slow.send(true);
    for task in tasks {
        results.push(task.await.expect("follower"));
    }
    let peak = server.peak_memory_kib();
    let expected: Vec<u64> = (1..=lines).collect();
    let fast_complete = results
        .iter()
        .filter(|followed| !followed.slow && followed.error.is_none())
        .filter(|followed| followed.numbers == expected)
        .count();
    let errors: Vec<&String> = results
        .iter()
        .filter_map(|followed| followed.error.as_ref())
        .collect();
    let slow_in_order = results
        .iter()
        .filter(|followed| followed.slow)
        .filter(|followed| {
            followed.numbers == (1..=followed.numbers.len() as u64).collect::<Vec<_>>()
        })
        .count();
    let slow_read: Vec<usize> = results
        .iter()
        .filter(|followed| followed.slow)
        .map(|followed| followed.numbers.len())
        .collect();
    println!(
        "lines: {lines}, followers: {followers} ({slow} reading one message every 5 ms), database: {}",
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "workload: {:?} exit {:?}, ended {ended:.2?} after the start",
        done.stage(),
        done.exit_code
    );
    println!(
        "stored: {} of {lines} output lines ({}), GetLogs of all: {get_logs:.2?}",
        stored_numbers.len(),
        if complete {
            "complete, in order"
        } else {
            "INCOMPLETE"
        }
    );
    println!(
        "fast followers with every line in order and no error: {fast_complete} of {}, all done {fast_ended:.2?} after the start",
        followers - slow
    );
    println!(
        "slow followers in order: {slow_in_order} of {slow}, lines read: {} to {}",
        slow_read.iter().min().copied().unwrap_or(0),
        slow_read.iter().max().copied().unwrap_or(0)
    );
    println!("stream errors: {} {:?}", errors.len(), errors.first());
    println!("server peak RSS: {} MiB", peak / 1024);
    server.terminate();
}
