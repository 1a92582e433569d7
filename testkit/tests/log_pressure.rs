//! The log pipeline under pressure: many followers, some of them slow, while a
//! workload writes a burst; every line is stored and every fast follower gets
//! all of them, in order, without an error.

use std::time::Duration;

use futures::StreamExt;
use slipway_sdk::{
    DeploymentBuilder,
    proto::{LogEntry, Stage, Stream, StreamLogsRequest},
};
use slipway_testkit::{Dirs, PATIENCE, ServerProcess, port_range, postgres_test_database};

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// The burst; the scenario prints 200,000 lines with 40 slow followers
/// of 50 (`BENCHMARKS.md` has its figures); the test runs it scaled down to
/// stay quick in a debug build while still failing on the old pipeline.
const LINES: u64 = 100_000;
const FOLLOWERS: usize = 50;
const SLOW_FOLLOWERS: usize = 40;

fn follow(workload_id: &str) -> StreamLogsRequest {
    StreamLogsRequest {
        workload_id: workload_id.to_owned(),
        follow: true,
        ..StreamLogsRequest::default()
    }
}

fn numbers(entries: &[LogEntry]) -> Vec<u64> {
    entries
        .iter()
        .filter(|entry| entry.stream() == Stream::Stdout)
        .filter_map(|entry| entry.message.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_followers_never_cost_a_line_or_fail_the_fast_ones() {
    let dirs = Dirs::new();
    let range = port_range();
    let range = format!("{}-{}", range.start(), range.end());
    let database = postgres_test_database().await;
    let mut flags = vec!["--log-retention-lines", "1000000"];
    if let Some(url) = &database {
        flags.extend(["--database-url", url]);
    }
    let server =
        ServerProcess::start_with_args(SERVER_PROCESS, &dirs.data, &dirs.root, &range, &flags)
            .await;
    let script = format!("sleep 1; seq 1 {LINES}; sleep 1");
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
    let mut followers = Vec::new();
    for index in 0..FOLLOWERS {
        // Each follower is a client of its own (its own HTTP/2 connection), as
        // separate processes would be: on one shared connection the unread data
        // of slow streams would hold the connection's flow-control window.
        let client = server.client_with_token(server.admin_token()).await;
        let request = follow(&workload.id);
        let slow = index < SLOW_FOLLOWERS;
        let mut stopped = slow_stopped.clone();
        // Every follower has its stream open before the start.
        let mut stream = Box::pin(client.stream_logs(request).await.expect("follow"));
        followers.push(tokio::spawn(async move {
            let mut entries = Vec::new();
            loop {
                let entry = tokio::select! {
                    entry = stream.next() => entry,
                    _ = stopped.wait_for(|stop| *stop), if slow => break,
                };
                let Some(entry) = entry else { break };
                entries.push(entry.map_err(|error| format!("{error:?}"))?);
                if slow {
                    // A slow client: one message every 5 ms.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Ok::<_, String>((slow, entries))
        }));
    }
    server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("start");
    let done = tokio::time::timeout(
        PATIENCE * 4,
        server
            .client
            .wait_for(&workload.id, Stage::Stopped, PATIENCE * 4),
    )
    .await
    .expect("the workload ends in time")
    .expect("stopped");
    assert_eq!(done.exit_code, Some(0));
    let stored = server.client.all_logs(&workload.id).await.expect("logs");
    let expected: Vec<u64> = (1..=LINES).collect();
    assert!(
        numbers(&stored) == expected,
        "every line is stored: {} of {LINES}, last {:?}",
        numbers(&stored).len(),
        numbers(&stored).last()
    );
    assert!(
        stored.iter().all(|entry| entry.dropped == 0),
        "nothing was dropped"
    );
    let mut fast_done = 0;
    let mut slow_results = Vec::new();
    for follower in followers.drain(SLOW_FOLLOWERS..) {
        let (_, entries) = tokio::time::timeout(PATIENCE * 4, follower)
            .await
            .expect("a fast follower ends in time")
            .expect("follower task")
            .expect("a fast follower gets no error");
        assert_eq!(numbers(&entries), expected, "a fast follower's lines");
        fast_done += 1;
    }
    assert_eq!(fast_done, FOLLOWERS - SLOW_FOLLOWERS);
    let _ = stop_slow.send(true);
    for follower in followers {
        slow_results.push(
            tokio::time::timeout(PATIENCE, follower)
                .await
                .expect("a slow follower hangs up in time")
                .expect("follower task")
                .expect("a slow follower gets no error"),
        );
    }
    for (slow, entries) in slow_results {
        assert!(slow);
        let read = numbers(&entries);
        assert!(!read.is_empty(), "a slow follower read something");
        assert_eq!(
            read,
            (1..=read.len() as u64).collect::<Vec<_>>(),
            "a slow follower reads in order"
        );
    }
    let peak = server.peak_memory_kib();
    eprintln!("server peak RSS: {peak} KiB");
    assert!(peak < 300 * 1024, "the server's peak memory was {peak} KiB");
    server.terminate();
}
