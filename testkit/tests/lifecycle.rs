//! The whole life of a process workload through the SDK: start, serve, stop,
//! refuse a second stop, restart, delete.

use slipway_sdk::{DeploymentBuilder, Error, Progress, proto::Action, proto::Stage};
use slipway_testkit::{TestServer, eventually, http_get, port_is_free, process_group_exists};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

fn stages_of(progress: &[Progress]) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for message in progress {
        if let Progress::Workload(workload) = message {
            if stages.last() != Some(&workload.stage()) {
                stages.push(workload.stage());
            }
        }
    }
    stages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_workload_starts_serves_stops_restarts_and_is_deleted() {
    let server = TestServer::start().await;
    server.service_dir("web");
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("web")
                .service_path("web")
                .command([SAMPLE, "http"])
                .env("GREETING_NAME", "web")
                .listen()
                .http_readiness("/health")
                .stop_grace_period_seconds(5),
        )
        .await;
    assert_eq!(workload.deployment_id, deployment.id);
    assert_eq!(workload.stage(), Stage::Pending);
    assert_eq!(workload.generation, 1);
    assert!(
        workload
            .allowed_actions()
            .any(|action| action == Action::Start)
    );

    // Start: the stream shows every stage up to RUNNING and the start's log lines.
    let progress = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start accepted")
        .collect_all()
        .await
        .expect("start progress");
    // The accepted snapshot (as it was accepted), then each stage.
    assert_eq!(
        stages_of(&progress),
        [
            Stage::Pending,
            Stage::Validate,
            Stage::Build,
            Stage::Deploy,
            Stage::Running
        ]
    );
    assert!(
        progress.iter().any(|message| matches!(message, Progress::Log(entry) if entry.message.starts_with("listening on"))),
        "the service's first line is part of the start's progress: {progress:?}"
    );
    let running = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(running.stage(), Stage::Running);
    let port = u16::try_from(running.port).expect("port");
    assert!(server.address.port() != port && port != 0);
    let pid: i32 = running.runtime_id.parse().expect("pid");
    assert!(running.started_at.is_some());
    assert_eq!(
        running.allowed_actions().collect::<Vec<_>>(),
        [Action::Stop, Action::Restart, Action::Delete]
    );

    // It serves on its port, and what it prints is in the logs.
    let (status, body) = http_get(port, "/").expect("http");
    assert_eq!((status, body.as_str()), (200, "hello from web\n"));
    let seen = server
        .follow_until(&workload.id, |line| line == "GET / 200")
        .await;
    assert!(
        seen.iter()
            .any(|line| line == &format!("listening on {port}"))
    );

    // Stop: the process group is gone and the port is free.
    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    assert_eq!(stopped.port, 0);
    assert!(stopped.stopped_at.is_some());
    assert!(
        !process_group_exists(pid),
        "process group {pid} survived the stop"
    );
    assert!(port_is_free(port), "port {port} is still held");

    // A second stop is refused, naming the stage.
    match server.client.stop_workload(&workload.id, None).await {
        Err(Error::InvalidState {
            workload_id,
            current_stage,
            message,
        }) => {
            assert_eq!(workload_id, workload.id);
            assert_eq!(current_stage, Stage::Stopped);
            assert_eq!(message, "Cannot stop workload: already stopped");
        }
        Err(other) => panic!("expected an invalid state, got {other:?}"),
        Ok(_) => panic!("a second stop was accepted"),
    }
    let unchanged = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(
        unchanged.revision, stopped.revision,
        "the refused stop changed nothing"
    );

    // Restart from stopped: generation 2, serving again.
    let restarted = server
        .client
        .restart_workload(&workload.id)
        .await
        .expect("restart accepted")
        .finish()
        .await
        .expect("restart progress");
    assert_eq!(
        (restarted.stage(), restarted.generation),
        (Stage::Running, 2)
    );
    let port = u16::try_from(restarted.port).expect("port");
    assert_eq!(http_get(port, "/health").expect("http").0, 200);

    // Restart while running: stop, then generation 3.
    let again = server
        .client
        .restart_workload(&workload.id)
        .await
        .expect("restart accepted")
        .collect_all()
        .await
        .expect("restart progress");
    let stages = stages_of(&again);
    assert_eq!(
        stages,
        [
            Stage::Running,
            Stage::Stopping,
            Stage::Stopped,
            Stage::Pending,
            Stage::Validate,
            Stage::Build,
            Stage::Deploy,
            Stage::Running
        ]
    );
    let third = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(third.generation, 3);
    let third_pid: i32 = third.runtime_id.parse().expect("pid");
    let third_port = u16::try_from(third.port).expect("port");

    // The log keeps every generation.
    let entries = server.client.all_logs(&workload.id).await.expect("logs");
    let generations: std::collections::BTreeSet<u64> =
        entries.iter().map(|entry| entry.generation).collect();
    assert_eq!(generations.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        entries
            .windows(2)
            .all(|pair| pair[1].seq == pair[0].seq + 1),
        "seqs have no gap"
    );

    // Delete stops it and removes it.
    server
        .client
        .delete_workload(&workload.id)
        .await
        .expect("delete");
    assert!(matches!(
        server.client.get_workload(&workload.id).await,
        Err(Error::NotFound { .. })
    ));
    eventually("the deleted workload's processes are gone", || {
        !process_group_exists(third_pid)
    })
    .await;
    assert!(port_is_free(third_port));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_a_build_under_way_and_kills_its_processes() {
    let server = TestServer::start().await;
    let dir = server.service_dir("slow-build");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("slow-build")
                .service_path("slow-build")
                .build_step([
                    "sh",
                    "-c",
                    "echo $$ > build.pid; echo building; exec sleep 300",
                ])
                .command([SAMPLE, "http"])
                .listen(),
        )
        .await;
    let _progress = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start accepted");
    server
        .follow_until(&workload.id, |line| line == "building")
        .await;
    let pid: i32 = std::fs::read_to_string(dir.join("build.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let during = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(during.stage(), Stage::Build);

    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    assert!(
        !process_group_exists(pid),
        "the build step {pid} survived the stop"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_a_pending_workload_and_start_of_a_stopped_one() {
    let server = TestServer::start().await;
    server.service_dir("idle");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("idle")
                .service_path("idle")
                .command(["sleep", "300"]),
        )
        .await;
    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    match server.client.start_workload(&workload.id).await {
        Err(Error::InvalidState {
            current_stage,
            message,
            ..
        }) => {
            assert_eq!(current_stage, Stage::Stopped);
            assert!(message.contains("use restart"), "{message}");
        }
        other => panic!("expected an invalid state, got {:?}", other.map(|_| ())),
    }
    server.stop().await;
}
