//! Logs and events under load, resumed after a disconnect, bounded by retention.

use std::time::Duration;

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder, Error,
    proto::{
        EventType, ListWorkloadsRequest, LogEntry, Stage, Stream, StreamLogsRequest,
        WatchEventsRequest,
    },
};
use slipway_testkit::{Dirs, PATIENCE, ServerProcess, TestServer, port_range};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");
const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

fn follow(workload_id: &str) -> StreamLogsRequest {
    StreamLogsRequest {
        workload_id: workload_id.to_owned(),
        follow: true,
        ..StreamLogsRequest::default()
    }
}

/// Reads a following stream to its end; `pause` is how long to wait every 1000
/// entries (a deliberately slow reader).
async fn read_all(client: &Client, request: StreamLogsRequest, pause: Duration) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    let mut stream = Box::pin(client.stream_logs(request).await.expect("stream"));
    while let Some(entry) = stream.next().await {
        entries.push(entry.expect("entry"));
        if !pause.is_zero() && entries.len() % 1000 == 0 {
            tokio::time::sleep(pause).await;
        }
    }
    entries
}

fn numbered(entries: &[LogEntry]) -> Vec<u64> {
    entries
        .iter()
        .filter(|entry| entry.stream() == Stream::Stdout)
        .filter_map(|entry| entry.message.strip_prefix("line ")?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_and_slow_followers_get_every_line_of_a_burst_once_and_the_server_stays_small() {
    const LINES: u64 = 200_000;
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
            DeploymentBuilder::new("burst")
                .command([SAMPLE, "lines", &LINES.to_string()])
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
    // Both follow from the start, before the workload prints anything.
    let fast = tokio::spawn({
        let client = server.client.clone();
        let request = follow(&workload.id);
        async move { read_all(&client, request, Duration::ZERO).await }
    });
    let slow = tokio::spawn({
        let client = server.client.clone();
        let request = follow(&workload.id);
        async move { read_all(&client, request, Duration::from_millis(15)).await }
    });
    server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("start");
    let fast = tokio::time::timeout(PATIENCE * 4, fast)
        .await
        .expect("fast in time")
        .expect("fast");
    let slow = tokio::time::timeout(PATIENCE * 4, slow)
        .await
        .expect("slow in time")
        .expect("slow");
    let expected: Vec<u64> = (1..=LINES).collect();
    assert_eq!(numbered(&fast), expected, "the fast follower");
    assert_eq!(numbered(&slow), expected, "the slow follower");
    assert!(fast.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
    assert_eq!(fast, slow, "both saw the same entries");
    let peak = server.peak_memory_kib();
    assert!(peak < 200 * 1024, "the server's peak memory was {peak} KiB");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_resumes_after_a_disconnect_with_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("resume")
                .command([SAMPLE, "lines", "3000"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    let mut first = Vec::new();
    {
        let mut stream = Box::pin(
            server
                .client
                .stream_logs(follow(&workload.id))
                .await
                .expect("stream"),
        );
        while first.len() < 1234 {
            first.push(stream.next().await.expect("entry").expect("ok"));
        }
        // Dropped here: the reader hangs up at line 1234.
    }
    let resume_at = first.last().expect("entries").seq + 1;
    let rest = read_all(
        &server.client,
        StreamLogsRequest {
            from_seq: resume_at,
            ..follow(&workload.id)
        },
        Duration::ZERO,
    )
    .await;
    let all: Vec<u64> = first.iter().chain(&rest).map(|entry| entry.seq).collect();
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        numbered(&[first, rest].concat()),
        (1..=3000).collect::<Vec<_>>()
    );

    let tail = read_all(
        &server.client,
        StreamLogsRequest {
            tail: Some(10),
            ..StreamLogsRequest::default()
        }
        .with_workload(&workload.id),
        Duration::ZERO,
    )
    .await;
    let last_seq = all.last().copied().expect("seq");
    assert_eq!(
        tail.iter().map(|entry| entry.seq).collect::<Vec<_>>(),
        ((last_seq - 9)..=last_seq).collect::<Vec<_>>()
    );
    server.stop().await;
}

trait WithWorkload {
    fn with_workload(self, workload_id: &str) -> Self;
}

impl WithWorkload for StreamLogsRequest {
    fn with_workload(mut self, workload_id: &str) -> Self {
        self.workload_id = workload_id.to_owned();
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_carries_on_across_a_restart_and_ends_after_the_final_stop() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("twice")
                .command([
                    "sh",
                    "-c",
                    "echo \"hello from $$\"; while :; do sleep 1; done",
                ])
                .stop_grace_period_seconds(5),
        )
        .await;
    server.start_workload(&workload.id).await;
    let reader = tokio::spawn({
        let client = server.client.clone();
        let request = follow(&workload.id);
        async move { read_all(&client, request, Duration::ZERO).await }
    });
    server
        .follow_until(&workload.id, |line| line.starts_with("hello from"))
        .await;
    let restarted = server
        .client
        .restart_workload(&workload.id)
        .await
        .expect("restart")
        .finish()
        .await
        .expect("restart");
    assert_eq!(restarted.generation, 2);
    let hellos_seen = std::cell::Cell::new(0);
    server
        .follow_until(&workload.id, |line| {
            if line.starts_with("hello from") {
                hellos_seen.set(hellos_seen.get() + 1);
            }
            hellos_seen.get() == 2
        })
        .await;
    let hellos = server.log_messages(&workload.id).await;
    assert_eq!(
        hellos
            .iter()
            .filter(|line| line.starts_with("hello from"))
            .count(),
        2
    );
    assert!(
        !reader.is_finished(),
        "the follower went on across the restart"
    );
    server.stop_workload(&workload.id).await;
    let entries = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the follower ends after the final stop")
        .expect("reader");
    let generations: Vec<u64> = entries.iter().map(|entry| entry.generation).collect();
    assert!(generations.contains(&1) && generations.contains(&2));
    let marker = entries
        .iter()
        .position(|entry| {
            entry.stream() == Stream::System && entry.message.starts_with("restart: generation 2")
        })
        .expect("a line marks the new generation");
    assert!(
        entries[..marker]
            .iter()
            .all(|entry| entry.generation == 1 || entry.stream() == Stream::System)
    );
    assert!(entries[marker..].iter().all(|entry| entry.generation == 2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_lines_and_a_reader_from_the_start_is_told_how_many() {
    let server = TestServer::start_with(|config| {
        config.log_retention_lines = 1000;
    })
    .await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("chatty")
                .command([SAMPLE, "lines", "5000"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("done");
    let entries = read_all(
        &server.client,
        StreamLogsRequest::default().with_workload(&workload.id),
        Duration::ZERO,
    )
    .await;
    let marker = entries.first().expect("entries");
    assert!(
        marker.dropped > 0,
        "the first entry is the truncation marker: {marker:?}"
    );
    assert_eq!(
        entries[1].seq,
        marker.seq + 1,
        "the marker stands for every line before the next"
    );
    assert_eq!(
        marker.dropped, marker.seq,
        "the count covers lines 1..={}",
        marker.seq
    );
    assert!(
        (1001..=1101).contains(&entries.len()),
        "retention keeps the marker and at least 1000 lines, at most a tenth more: {}",
        entries.len()
    );
    let kept = numbered(&entries);
    assert_eq!(kept.last(), Some(&5000));
    assert!(kept.windows(2).all(|pair| pair[1] == pair[0] + 1));
    let page = server
        .client
        .get_logs(&workload.id, 0, 10)
        .await
        .expect("page");
    assert_eq!(page.dropped, marker.dropped);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_very_long_line_is_split_into_marked_pieces_and_filters_pick_lines() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("mixed")
                .command([
                    "sh",
                    "-c",
                    "head -c 100000 /dev/zero | tr '\\0' x; echo; echo out; echo err >&2",
                ])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("done");
    let messages = server.log_messages(&workload.id).await;
    let pieces: Vec<&String> = messages
        .iter()
        .filter(|line| line.starts_with("xxx"))
        .collect();
    assert_eq!(pieces.len(), 7, "100,000 bytes in pieces of 16 KiB");
    let continues = slipway_server::logs::LINE_CONTINUES;
    assert!(pieces[..6].iter().all(|piece| piece.ends_with(continues)));
    let whole: String = pieces
        .iter()
        .map(|piece| piece.strip_suffix(continues).unwrap_or(piece))
        .collect();
    assert_eq!(whole.len(), 100_000, "nothing is cut off");
    let stderr_only = read_all(
        &server.client,
        StreamLogsRequest {
            streams: vec![Stream::Stderr.into()],
            ..StreamLogsRequest::default()
        }
        .with_workload(&workload.id),
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        stderr_only
            .iter()
            .map(|entry| entry.message.as_str())
            .collect::<Vec<_>>(),
        ["err"]
    );
    let in_the_future = read_all(
        &server.client,
        StreamLogsRequest {
            since: Some(slipway_sdk::prost_types::Timestamp {
                seconds: 4_000_000_000,
                nanos: 0,
            }),
            ..StreamLogsRequest::default()
        }
        .with_workload(&workload.id),
        Duration::ZERO,
    )
    .await;
    assert!(in_the_future.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replays_from_a_revision_fails_on_a_compacted_one_and_bookmarks_when_idle() {
    let server = TestServer::start_with(|config| config.event_retention = 10).await;
    let (deployment, workload) = server
        .deploy(DeploymentBuilder::new("events").command(["sleep", "300"]))
        .await;
    let listed = server
        .client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list");
    let from = listed.revision;
    server.start_workload(&workload.id).await;
    server.stop_workload(&workload.id).await;
    let now = server
        .client
        .get_workload(&workload.id)
        .await
        .expect("get")
        .revision;

    let mut watch = Box::pin(
        server
            .client
            .watch_events(WatchEventsRequest {
                since_revision: from,
                bookmark_interval_seconds: Some(1),
                ..WatchEventsRequest::default()
            })
            .await
            .expect("watch"),
    );
    let mut revisions = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, watch.next())
            .await
            .expect("in time")
            .expect("event")
            .expect("ok");
        if event.r#type() == EventType::Bookmark {
            assert_eq!(
                event.revision, now,
                "an idle watch is bookmarked at the newest revision"
            );
            break;
        }
        revisions.push(event.revision);
    }
    assert_eq!(
        revisions,
        ((from + 1)..=now).collect::<Vec<_>>(),
        "exactly the events after {from}"
    );

    // More changes than are retained: revision `from` is compacted away.
    for _ in 0..3 {
        server
            .client
            .restart_workload(&workload.id)
            .await
            .expect("restart")
            .finish()
            .await
            .expect("restart");
    }
    match server
        .client
        .watch_events(WatchEventsRequest {
            since_revision: from,
            ..WatchEventsRequest::default()
        })
        .await
    {
        Err(Error::Compacted {
            oldest_revision, ..
        }) => assert!(oldest_revision > from + 1),
        Err(other) => panic!("expected OUT_OF_RANGE, got {other:?}"),
        Ok(_) => panic!("a compacted revision was accepted"),
    }
    server
        .client
        .delete_deployment(&deployment.id)
        .await
        .expect("delete");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_a_reader_received_before_a_kill_9_is_in_the_store_after_restart() {
    let dirs = Dirs::new();
    let range = port_range();
    let range = format!("{}-{}", range.start(), range.end());
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new("burst")
                .command([SAMPLE, "lines", "2000000"])
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
    let _start = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start");
    let mut received = Vec::new();
    {
        let mut stream = Box::pin(
            server
                .client
                .stream_logs(follow(&workload.id))
                .await
                .expect("stream"),
        );
        while received.len() < 30_000 {
            received.push(stream.next().await.expect("entry").expect("ok"));
        }
    }
    server.kill9();
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let stored = server.client.all_logs(&workload.id).await.expect("logs");
    assert!(stored.len() >= received.len());
    assert_eq!(
        &stored[..received.len()],
        &received[..],
        "what a reader received was stored"
    );
    server.terminate();
}
