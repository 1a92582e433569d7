//! The process runtime at its edges: a stop reaches processes that left the
//! workload's process group, and no output is lost at exit when the log writer
//! is slow.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use slipway_sdk::{DeploymentBuilder, proto::Stage};
use slipway_server::runtime::process::Cgroups;
use slipway_testkit::{TestServer, eventually};

/// Live processes whose environment has the entry `wanted` (`NAME=value`).
fn processes_with_env(wanted: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == wanted.as_bytes())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_reaches_processes_that_left_the_process_group() {
    // Each workload in its own cgroup where this host allows it.
    stop_reaches_processes_that_left_the_process_group("auto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_a_stop_sweeps_the_processes_carrying_the_workloads_tag() {
    stop_reaches_processes_that_left_the_process_group("off").await;
}

async fn stop_reaches_processes_that_left_the_process_group(cgroups: &str) {
    let server = TestServer::start_with(|config| config.process_cgroups = cgroups.to_owned()).await;
    let script = "for i in $(seq 200); do sleep 1000 & done; \
                  for i in 1 2 3 4 5; do setsid sleep 1001 & done; wait";
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("escapes")
                .command(["sh", "-c", script])
                .stop_grace_period_seconds(2),
        )
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running);
    let tag = format!("SLIPWAY_WORKLOAD_ID={}", workload.id);
    let pid = &running.runtime_id;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let own_cgroup = cgroup.contains(&format!("/slipway/workload-{}", workload.id));
    if cgroups == "auto" && Cgroups::detect().is_ok() {
        assert!(own_cgroup, "the workload runs in its own cgroup: {cgroup}");
    } else {
        assert!(!own_cgroup, "no cgroup of its own: {cgroup}");
    }
    let escaped = || {
        processes_with_env(&tag)
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| cmdline == b"sleep\x001001\x00")
            })
            .count()
    };
    eventually("the five setsid children run", || escaped() == 5).await;
    eventually("the 200 children run", || {
        processes_with_env(&tag).len() >= 205
    })
    .await;

    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    let left = processes_with_env(&tag);
    assert!(
        left.is_empty(),
        "processes carrying the workload's tag survived the stop: {left:?}"
    );
    server.stop().await;
}

/// Takes the database's write lock (SQLite `BEGIN IMMEDIATE`, an exclusive lock
/// on the log table on PostgreSQL) on a connection of its own.
async fn lock_the_log_table(url: &str) -> sea_orm::DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).min_connections(1);
    let connection = Database::connect(options).await.expect("connect");
    let lock = if url.starts_with("postgres") {
        "BEGIN; LOCK TABLE log_lines IN EXCLUSIVE MODE"
    } else {
        "BEGIN IMMEDIATE"
    };
    connection.execute_unprepared(lock).await.expect("lock");
    connection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_kept_at_exit_while_the_log_writer_is_stalled() {
    const LINES: usize = 20_000;
    let server = TestServer::start().await;
    let trigger = tempfile::TempDir::new().expect("tempdir");
    let go = trigger.path().join("go");
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.05; done; seq 1 {LINES}",
        go.display()
    );
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("burst").command(["sh", "-c", &script]))
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running);

    // The log writer stalls on the lock while the process prints and exits.
    let holder = lock_the_log_table(&server.database_url()).await;
    std::fs::write(&go, b"").expect("trigger");
    let pid: i32 = running.runtime_id.parse().expect("pid");
    let locked_at = tokio::time::Instant::now();
    let hold_until = locked_at + Duration::from_secs(6);
    let mut exited_while_locked = false;
    while tokio::time::Instant::now() < hold_until {
        exited_while_locked |= !slipway_testkit::process_exists(pid);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    holder.execute_unprepared("COMMIT").await.expect("unlock");
    drop(holder);
    assert!(
        exited_while_locked,
        "the process printed everything and exited while the log writer was stalled"
    );

    let ended = server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("stopped");
    assert_eq!(ended.error, "exited with code 0");
    let printed: Vec<String> = server
        .log_messages(&workload.id)
        .await
        .into_iter()
        .filter(|message| message.parse::<usize>().is_ok())
        .collect();
    let expected: Vec<String> = (1..=LINES).map(|number| number.to_string()).collect();
    assert_eq!(printed.len(), LINES, "every line is kept");
    assert_eq!(printed, expected, "in order");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_held_open_by_an_escaped_process_is_given_up_with_a_marker() {
    // Without cgroups, a process that drops the workload's tag and leaves its
    // group escapes the stop, and keeps the output pipe open.
    let server = TestServer::start_with(|config| config.process_cgroups = "off".to_owned()).await;
    let marks = tempfile::TempDir::new().expect("tempdir");
    let ready = marks.path().join("escaped");
    // The workload exits once the escaped process runs (else the group kill at
    // its exit could catch it before it left the group).
    let script = format!(
        "env -i setsid sh -c \"touch '{ready}'; exec sleep 31337\" & \
         while [ ! -e '{ready}' ]; do sleep 0.05; done; echo bye",
        ready = ready.display()
    );
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("leaky").command(["sh", "-c", &script]))
        .await;
    server.start_workload(&workload.id).await;
    let ended = server
        .wait_for(&workload.id, Stage::Stopped)
        .await
        .expect("the workload ends");
    assert_eq!(ended.error, "exited with code 0");
    let messages = server.log_messages(&workload.id).await;
    assert!(
        messages.iter().any(|message| message == "bye"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|message| message.contains("stdout no longer read")),
        "the loss is marked: {messages:?}"
    );
    for pid in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline == b"sleep\x0031337\x00")
        })
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    server.stop().await;
}
