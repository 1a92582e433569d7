//! Several nodes on one PostgreSQL database: workloads are placed on a node
//! that fits, any node answers for any workload (calls reach the owner), and
//! the workloads of a lost node run again elsewhere, once, while the lost
//! node, if it comes back, lets go of them.

use std::collections::HashSet;

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use slipway_sdk::{
    Client, DeploymentBuilder,
    proto::{
        Node, RestartPolicy, Stage, StreamLogsRequest, WatchEventsRequest, Workload,
        restart_policy::Mode,
    },
};
use slipway_testkit::{
    PATIENCE, ServerProcess,
    cluster::{self, Member, eventually_async},
    net::{TcpProxy, postgres_address, postgres_url_via},
    postgres_test_database, process_group_exists, until,
};
use tempfile::TempDir;

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

async fn member(database_url: &str, name: &str, ports: &str) -> Member {
    cluster::member(SERVER_PROCESS, database_url, name, ports).await
}

async fn member_in(
    database_url: &str,
    name: &str,
    ports: &str,
    dirs: (TempDir, TempDir),
) -> Member {
    cluster::member_in(SERVER_PROCESS, database_url, name, ports, dirs).await
}

/// Three nodes on one new database, all registered; `None` without PostgreSQL.
async fn three_nodes() -> Option<(Member, Member, Member)> {
    let Some(database_url) = postgres_test_database().await else {
        eprintln!("skipped: several nodes need PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
        return None;
    };
    // One node first: it creates the schema and the others find it made.
    let a = member(&database_url, "node-a", "3700-3719").await;
    let (b, c) = tokio::join!(
        member(&database_url, "node-b", "3720-3739"),
        member(&database_url, "node-c", "3740-3759"),
    );
    cluster::registered(&a, 3).await;
    Some((a, b, c))
}

async fn node_named(client: &Client, name: &str) -> Node {
    client.get_node(name).await.expect("node")
}

fn echo_then_sleep() -> DeploymentBuilder {
    DeploymentBuilder::new("echo").command(["sh", "-c", "echo up; exec sleep 600"])
}

/// Starts `count` workloads of a new deployment through `client`.
async fn start_many(client: &Client, builder: DeploymentBuilder, count: usize) -> Vec<Workload> {
    let deployment = client
        .create_deployment(builder.build())
        .await
        .expect("deployment");
    let mut started = Vec::new();
    for _ in 0..count {
        let workload = client
            .create_workload(&deployment.id)
            .await
            .expect("workload");
        let running = client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("running");
        assert_eq!(running.stage(), Stage::Running);
        started.push(running);
    }
    started
}

/// Every event so far, read through `client`.
async fn all_events(client: &Client) -> Vec<slipway_sdk::proto::Event> {
    let newest = client
        .list_workloads(Default::default())
        .await
        .expect("list")
        .revision;
    let mut events = Box::pin(
        client
            .watch_events(WatchEventsRequest {
                since_revision: 0,
                ..WatchEventsRequest::default()
            })
            .await
            .expect("watch"),
    );
    let mut seen = Vec::new();
    while seen
        .last()
        .is_none_or(|event: &slipway_sdk::proto::Event| event.revision < newest)
    {
        match tokio::time::timeout(PATIENCE, events.next()).await {
            Ok(Some(Ok(event))) if event.revision > 0 => seen.push(event),
            Ok(Some(Ok(_bookmark))) => {}
            other => panic!("the event stream ended early: {other:?}"),
        }
    }
    seen
}

/// Revisions go up by one, from 1: none skipped, none repeated.
fn assert_gap_free(events: &[slipway_sdk::proto::Event]) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.revision, index as u64 + 1, "{events:#?}");
    }
}

/// The seqs of a workload's stored log go up by one from 1; how many times
/// generation 2 said it was up.
async fn assert_log_gap_free(client: &Client, workload_id: &str) -> usize {
    let lines = client.all_logs(workload_id).await.expect("logs");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line.seq, index as u64 + 1, "{lines:#?}");
    }
    lines
        .iter()
        .filter(|line| line.generation == 2 && line.message == "up")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_placed_and_any_node_answers_for_them() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let (a_node, b_node) = (
        node_named(&a.server.client, "node-a").await,
        node_named(&a.server.client, "node-b").await,
    );
    // Three starts through node A: each goes to the node that runs the fewest.
    let placed = start_many(&a.server.client, echo_then_sleep(), 3).await;
    let owners: HashSet<&str> = placed.iter().map(|w| w.node_id.as_str()).collect();
    assert_eq!(owners.len(), 3, "one per node: {placed:#?}");
    let events = all_events(&c.server.client).await;
    assert_gap_free(&events);
    assert!(
        events
            .iter()
            .any(|event| event.message.contains("placed on node node-b")),
        "the choice is explained: {events:#?}"
    );

    // Through node C, a workload node A owns: stop, restart, logs, events.
    let on_a = placed
        .iter()
        .find(|w| w.node_id == a_node.id)
        .expect("one on node A");
    let stopped = c
        .server
        .client
        .stop_workload(&on_a.id, Some(5))
        .await
        .expect("stop through C")
        .finish()
        .await
        .expect("stopped");
    assert_eq!(stopped.stage(), Stage::Stopped);
    let again = c
        .server
        .client
        .stop_workload(&on_a.id, None)
        .await
        .map(|_| ())
        .expect_err("a second stop is refused, as on the owner");
    assert_eq!(
        again.code(),
        Some(tonic::Code::FailedPrecondition),
        "{again}"
    );
    let restarted = c
        .server
        .client
        .restart_workload(&on_a.id)
        .await
        .expect("restart through C")
        .finish()
        .await
        .expect("running again");
    assert_eq!(restarted.stage(), Stage::Running);
    assert_eq!(restarted.generation, 2);

    let mut follow = Box::pin(
        c.server
            .client
            .stream_logs(StreamLogsRequest {
                workload_id: restarted.id.clone(),
                follow: true,
                ..StreamLogsRequest::default()
            })
            .await
            .expect("follow through C"),
    );
    let mut seqs = Vec::new();
    let mut saw_second = false;
    while let Ok(Some(entry)) = tokio::time::timeout(PATIENCE, follow.next()).await {
        let entry = entry.expect("log entry");
        seqs.push(entry.seq);
        if entry.generation == 2 && entry.message == "up" {
            saw_second = true;
            break;
        }
    }
    assert!(saw_second, "the live log through C: {seqs:?}");
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{seqs:?}"
    );

    // Delete through C a workload node B runs: B stops it.
    let on_b = placed
        .iter()
        .find(|w| w.node_id == b_node.id)
        .expect("one on node B");
    let pgid: i32 = on_b.runtime_id.parse().expect("a process group");
    c.server
        .client
        .delete_workload(&on_b.id)
        .await
        .expect("delete through C");
    eventually_async("node B stopped it", || async {
        !process_group_exists(pgid)
    })
    .await;
    let gone = a.server.client.get_workload(&on_b.id).await.unwrap_err();
    assert_eq!(gone.code(), Some(tonic::Code::NotFound), "{gone}");
    assert_gap_free(&all_events(&b.server.client).await);
}

fn always() -> RestartPolicy {
    RestartPolicy {
        mode: Mode::Always.into(),
        initial_backoff_ms: Some(100),
        jitter_percent: Some(0),
        ..RestartPolicy::default()
    }
}

/// Waits until the workload runs again, as generation 2, on another node than `lost`.
async fn runs_again_elsewhere(client: &Client, workload_id: &str, lost: &str) -> Workload {
    until("running again on another node", || async {
        client
            .get_workload(workload_id)
            .await
            .ok()
            .filter(|workload| {
                workload.stage() == Stage::Running
                    && workload.generation == 2
                    && workload.node_id != lost
            })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_nodes_workloads_wait_for_a_node_that_fits() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let b_node = node_named(&a.server.client, "node-b").await;
    // Two workloads on node B (a node selector puts them there).
    let builder = echo_then_sleep()
        .node_selector("name", "node-b")
        .restart_policy(always());
    let on_b = start_many(&a.server.client, builder, 2).await;
    assert!(on_b.iter().all(|w| w.node_id == b_node.id), "{on_b:#?}");
    // The deployment may run on node B only: once B is lost, its workloads
    // fail over, and wait, PENDING with the reason, for a node that fits.
    b.server.kill9();
    // The machine went with it: so did its processes.
    for workload in &on_b {
        let pgid: i32 = workload.runtime_id.parse().expect("a process group");
        let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
    }
    let client = &c.server.client;
    eventually_async("failed over and waiting for a node", || async {
        let mut waiting = 0;
        for workload in &on_b {
            if let Ok(now) = client.get_workload(&workload.id).await {
                if now.stage() == Stage::Pending
                    && now.generation == 2
                    && now.pending_reason.contains("no node fits")
                {
                    waiting += 1;
                }
            }
        }
        waiting == on_b.len()
    })
    .await;
    let events = all_events(client).await;
    assert_gap_free(&events);
    for workload in &on_b {
        let lost: Vec<_> = events
            .iter()
            .filter(|event| {
                event.workload_id == workload.id && event.message.contains("node node-b lost")
            })
            .collect();
        assert_eq!(lost.len(), 1, "failed once: {events:#?}");
    }
    let waiting = a
        .server
        .client
        .get_workload(&on_b[0].id)
        .await
        .expect("workload");
    assert!(
        waiting
            .pending_reason
            .contains("lacks the label name=node-b"),
        "{waiting:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_nodes_workloads_run_once_on_another_node() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let b_node = node_named(&a.server.client, "node-b").await;
    let builder = DeploymentBuilder::new("moves")
        .command(["sh", "-c", "echo up; exec sleep 600"])
        .restart_policy(always());
    let placed = start_many(&a.server.client, builder, 3).await;
    let on_b = placed
        .iter()
        .find(|w| w.node_id == b_node.id)
        .expect("one on node B")
        .clone();
    let old_pgid: i32 = on_b.runtime_id.parse().expect("a process group");

    // kill -9 of node B, with its machine (its processes).
    b.server.kill9();
    let _ = kill(Pid::from_raw(-old_pgid), Signal::SIGKILL);
    let moved = runs_again_elsewhere(&c.server.client, &on_b.id, &b_node.id).await;
    assert_ne!(moved.node_id, b_node.id);
    let events = all_events(&a.server.client).await;
    assert_gap_free(&events);
    let story: Vec<&str> = events
        .iter()
        .filter(|event| event.workload_id == on_b.id)
        .map(|event| event.message.as_str())
        .collect();
    assert_eq!(
        story
            .iter()
            .filter(|m| m.contains("node node-b lost"))
            .count(),
        1,
        "{story:#?}"
    );
    assert_eq!(
        story
            .iter()
            .filter(|m| m.contains("runs again on another node"))
            .count(),
        1,
        "{story:#?}"
    );
    assert_eq!(assert_log_gap_free(&a.server.client, &on_b.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_lets_go_of_what_another_node_took_over() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let b_node = node_named(&a.server.client, "node-b").await;
    let builder = DeploymentBuilder::new("paused")
        .command(["sh", "-c", "echo up; exec sleep 600"])
        .restart_policy(always());
    let placed = start_many(&a.server.client, builder, 3).await;
    let on_b = placed
        .iter()
        .find(|w| w.node_id == b_node.id)
        .expect("one on node B")
        .clone();
    let old_pgid: i32 = on_b.runtime_id.parse().expect("a process group");

    // SIGSTOP node B for longer than its TTL: its workload runs again elsewhere
    // (its old process, which nobody can stop meanwhile, still runs)…
    kill(Pid::from_raw(b.server.pid()), Signal::SIGSTOP).expect("SIGSTOP");
    let moved = runs_again_elsewhere(&c.server.client, &on_b.id, &b_node.id).await;
    let taken_over_at = moved.revision;

    // …and once continued, node B finds out and kills its old process, and
    // nothing it writes lands after the new owner's.
    kill(Pid::from_raw(b.server.pid()), Signal::SIGCONT).expect("SIGCONT");
    eventually_async("node B let go of its old process", || async {
        !process_group_exists(old_pgid)
    })
    .await;
    eventually_async("node B active again", || async {
        a.server
            .client
            .get_node("node-b")
            .await
            .is_ok_and(|node| node.incarnation == b_node.incarnation + 1)
    })
    .await;
    let now = a
        .server
        .client
        .get_workload(&on_b.id)
        .await
        .expect("workload");
    let story: Vec<String> = all_events(&a.server.client)
        .await
        .into_iter()
        .filter(|event| event.workload_id == on_b.id)
        .map(|event| format!("{} {}", event.revision, event.message))
        .collect();
    assert_eq!(now.stage(), Stage::Running, "{now:#?} {story:#?}");
    assert_eq!(now.node_id, moved.node_id, "{now:#?}");
    assert_eq!(now.generation, 2);
    let events = all_events(&a.server.client).await;
    assert_gap_free(&events);
    let later_by_b: Vec<_> = events
        .iter()
        .filter(|event| event.revision > taken_over_at && event.workload_id == on_b.id)
        .filter(|event| {
            event
                .workload
                .as_ref()
                .is_some_and(|snapshot| snapshot.node_id == b_node.id)
        })
        .collect();
    assert!(later_by_b.is_empty(), "{later_by_b:#?}");
    assert_eq!(assert_log_gap_free(&c.server.client, &on_b.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_database_stops_its_workloads_when_told_to() {
    let Some(database_url) = postgres_test_database().await else {
        eprintln!("skipped: needs PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
        return;
    };
    let proxy = TcpProxy::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        postgres_address(&database_url),
    )
    .await;
    let through_proxy = postgres_url_via(&database_url, proxy.address);
    let data = TempDir::new().expect("data");
    let root = TempDir::new().expect("root");
    let node = ServerProcess::start_with_args(
        SERVER_PROCESS,
        &data.path().join("data"),
        root.path(),
        "3760-3779",
        &[
            "--database-url",
            &through_proxy,
            "--node-name",
            "cut-off",
            "--heartbeat-interval",
            "200ms",
            "--heartbeat-ttl",
            "5s",
            "--stop-after-disconnect",
            "1s",
        ],
    )
    .await;
    eventually_async("registered", || async {
        node.client.list_nodes(false).await.is_ok()
    })
    .await;
    let builder = echo_then_sleep().restart_policy(always());
    let running = start_many(&node.client, builder, 1).await.remove(0);
    let pgid: i32 = running.runtime_id.parse().expect("a process group");

    // Cut off: after a second without the database, it stops what it runs.
    proxy.set_cut(true);
    eventually_async("the workload stopped while cut off", || async {
        !process_group_exists(pgid)
    })
    .await;
    // Back: it says it was down, its workload failed over (to itself: the
    // only node), and runs again.
    proxy.set_cut(false);
    let again = runs_again_elsewhere(&node.client, &running.id, "").await;
    assert_eq!(again.generation, 2);
    let events = all_events(&node.client).await;
    assert_gap_free(&events);
    assert!(
        events
            .iter()
            .any(|event| event.workload_id == running.id
                && event.message.contains("node cut-off lost")),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_takes_no_new_workloads() {
    let Some((a, _b, c)) = three_nodes().await else {
        return;
    };
    let b_node = node_named(&a.server.client, "node-b").await;
    // Another node takes work: no force needed.
    c.server
        .client
        .pause_node("node-b", false, "")
        .await
        .expect("pause node-b");
    let placed = start_many(&a.server.client, echo_then_sleep(), 4).await;
    assert!(
        placed.iter().all(|w| w.node_id != b_node.id),
        "nothing new on a paused node: {placed:#?}"
    );
    a.server.client.resume_node("node-b").await.expect("resume");
    let more = start_many(
        &a.server.client,
        DeploymentBuilder::new("after-resume").command(["sleep", "600"]),
        1,
    )
    .await;
    assert_eq!(more[0].node_id, b_node.id, "the emptiest node again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_started_again_stops_what_it_no_longer_runs() {
    let Some((a, b, c)) = three_nodes().await else {
        return;
    };
    let b_node = node_named(&a.server.client, "node-b").await;
    let builder = DeploymentBuilder::new("orphans")
        .command(["sh", "-c", "echo up; exec sleep 600"])
        .restart_policy(always());
    let placed = start_many(&a.server.client, builder, 3).await;
    let on_b = placed
        .iter()
        .find(|w| w.node_id == b_node.id)
        .expect("one on node B")
        .clone();
    let old_pgid: i32 = on_b.runtime_id.parse().expect("a process group");

    // kill -9 of the server alone: its process outlives it, and the workload
    // runs again on another node meanwhile.
    let Member {
        server,
        dirs,
        database_url,
    } = b;
    server.kill9();
    let moved = runs_again_elsewhere(&c.server.client, &on_b.id, &b_node.id).await;
    assert!(
        process_group_exists(old_pgid),
        "the old process outlived its node"
    );

    // Started again, node B stops the process of the workload it no longer runs.
    let b = member_in(&database_url, "node-b", "3720-3739", dirs).await;
    eventually_async("node B stopped its orphan", || async {
        !process_group_exists(old_pgid)
    })
    .await;
    let now = b
        .server
        .client
        .get_workload(&on_b.id)
        .await
        .expect("workload");
    assert_eq!(now.stage(), Stage::Running);
    assert_eq!(now.node_id, moved.node_id);
    assert_eq!(now.generation, 2);
}
