//! Log lines at the edges: a NUL byte, a line of a megabyte, a secret across a
//! cut, retention that keeps its limit, and space given back after deletion.

use slipway_sdk::{
    DeploymentBuilder,
    proto::{Stage, Stream},
};
use slipway_testkit::{TestServer, eventually};

/// Ends every piece of a split line but the last (the server's
/// `logs::LINE_CONTINUES`).
const CONTINUES: &str = " [slipway: line continues]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_is_stored_as_a_replacement_character_and_other_logs_keep_flowing() {
    let server = TestServer::start().await;
    let (_, nul) = server
        .deploy(
            DeploymentBuilder::new("nul")
                .command(["sh", "-c", "printf 'a\\000b\\n'; echo after"])
                .min_ready_ms(0),
        )
        .await;
    let (_, other) = server
        .deploy(
            DeploymentBuilder::new("other")
                .command(["sh", "-c", "for i in $(seq 1 500); do echo tick $i; done"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&nul.id).await;
    server.start_workload(&other.id).await;
    for id in [&nul.id, &other.id] {
        server.wait_for(id, Stage::Stopped).await.expect("stopped");
    }
    let messages = server.log_messages(&nul.id).await;
    assert!(
        messages.iter().any(|line| line == "a\u{FFFD}b"),
        "the NUL is shown as U+FFFD: {messages:?}"
    );
    assert!(messages.iter().any(|line| line == "after"), "{messages:?}");
    let ticks: Vec<String> = server
        .log_messages(&other.id)
        .await
        .into_iter()
        .filter(|line| line.starts_with("tick "))
        .collect();
    let expected: Vec<String> = (1..=500).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected, "the other workload's log flowed");
    // The pipeline still takes lines: a third workload's log arrives too.
    let (_, later) = server
        .deploy(
            DeploymentBuilder::new("later")
                .command(["sh", "-c", "echo still here"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&later.id).await;
    let seen = server
        .follow_until(&later.id, |line| line == "still here")
        .await;
    assert_eq!(seen.last().map(String::as_str), Some("still here"));
    server.stop().await;
}

/// The pieces of the line of output that starts with `first`.
fn pieces_of(messages: &[String], first: &str) -> Vec<String> {
    let start = messages
        .iter()
        .position(|line| line.starts_with(first))
        .expect("the long line is stored");
    let mut pieces = Vec::new();
    for line in &messages[start..] {
        pieces.push(line.clone());
        if !line.ends_with(CONTINUES) {
            break;
        }
    }
    pieces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_line_arrives_as_marked_pieces_and_a_secret_is_masked_before_a_cut() {
    const SECRET: &str = "S3CRET-across-the-cut-7f3a";
    let server = TestServer::start().await;
    // A 1 MiB line, then a line whose secret starts 4 bytes before the 16 KiB cut.
    let script = "head -c 1048576 /dev/zero | tr '\\0' x; echo; \
                  head -c 16380 /dev/zero | tr '\\0' y; printf '%s' \"$TOKEN\"; \
                  head -c 100 /dev/zero | tr '\\0' z; echo; echo done";
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("long")
                .command(["sh", "-c", script])
                .secret_env("TOKEN", SECRET)
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("stopped");
    // Output only: Slipway's own lines (the stage changes) may come in between.
    let messages: Vec<String> = server
        .client
        .all_logs(&workload.id)
        .await
        .expect("logs")
        .into_iter()
        .filter(|entry| entry.stream() == Stream::Stdout)
        .map(|entry| entry.message)
        .collect();
    let pieces = pieces_of(&messages, "xxx");
    assert_eq!(pieces.len(), 64, "1 MiB in pieces of 16 KiB");
    for piece in &pieces[..63] {
        assert_eq!(piece.len(), 16 * 1024 + CONTINUES.len());
    }
    let whole: String = pieces
        .iter()
        .map(|piece| piece.strip_suffix(CONTINUES).unwrap_or(piece))
        .collect();
    assert_eq!(whole.len(), 1024 * 1024, "nothing is lost");
    assert!(whole.bytes().all(|byte| byte == b'x'));
    let secret_pieces = pieces_of(&messages, "yyy");
    assert!(secret_pieces.len() >= 2, "{}", secret_pieces.len());
    for piece in &secret_pieces {
        for window in SECRET.as_bytes().windows(4) {
            let part = std::str::from_utf8(window).expect("ascii");
            assert!(!piece.contains(part), "part of the secret stored: {part}");
        }
    }
    let whole: String = secret_pieces
        .iter()
        .map(|piece| piece.strip_suffix(CONTINUES).unwrap_or(piece))
        .collect();
    assert!(whole.contains("y********z"), "the secret is masked whole");
    assert!(messages.iter().any(|line| line == "done"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_at_least_its_limit() {
    let server = TestServer::start_with(|config| config.log_retention_lines = 1000).await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("chatty")
                .command(["sh", "-c", "seq 1 7777"])
                .min_ready_ms(0),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("stopped");
    let entries = server.client.all_logs(&workload.id).await.expect("logs");
    assert!(
        (1000..=1100).contains(&entries.len()),
        "between the limit and a tenth more: {}",
        entries.len()
    );
    let numbers: Vec<u64> = entries
        .iter()
        .filter_map(|entry| entry.message.parse().ok())
        .collect();
    assert_eq!(numbers.last(), Some(&7777));
    assert!(numbers.windows(2).all(|pair| pair[1] == pair[0] + 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_deployment_gives_the_space_back_and_leaves_no_secret_in_the_file() {
    const SENTINEL: &str = "sentinel-secret-5be1c0de";
    let server = TestServer::start().await;
    if !server.database_url().starts_with("sqlite") {
        eprintln!("skipped: the file checks are for SQLite (PostgreSQL vacuums by itself)");
        server.stop().await;
        return;
    }
    let path = server
        .database_url()
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_owned();
    let files = {
        let path = path.clone();
        move || {
            ["", "-wal"]
                .iter()
                .map(|suffix| std::fs::read(format!("{path}{suffix}")).unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let size = |files: &[Vec<u8>]| files.iter().map(Vec::len).sum::<usize>();
    // Settled after start-up: the size of an empty database.
    let (probe, _) = server
        .deploy(DeploymentBuilder::new("probe").command(["true"]))
        .await;
    server.delete_deployment(&probe.id).await;
    eventually("the WAL is checkpointed", || files()[1].is_empty()).await;
    let empty = size(&files());
    let mut deployments = Vec::new();
    for index in 0..3 {
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(format!("filler-{index}"))
                    .command([
                        "sh",
                        "-c",
                        "seq 1 30000 | sed 's/$/ some padding to weigh the log down/'",
                    ])
                    .secret_env("TOKEN", SENTINEL)
                    .min_ready_ms(0),
            )
            .await;
        server.start_workload(&workload.id).await;
        server
            .wait_for(&workload.id, Stage::Stopped)
            .await
            .expect("stopped");
        deployments.push(deployment.id);
    }
    let full = size(&files());
    assert!(
        full > empty + 2_000_000,
        "the logs weigh: {empty} -> {full}"
    );
    for id in &deployments {
        server.delete_deployment(id).await;
    }
    let sentinel = SENTINEL.as_bytes();
    eventually("the file shrinks and holds no secret", || {
        let files = files();
        size(&files) < empty + 200_000
            && !files.iter().any(|bytes| {
                bytes
                    .windows(sentinel.len())
                    .any(|window| window == sentinel)
            })
    })
    .await;
    server.stop().await;
}
