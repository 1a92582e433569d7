//! The lifecycle when things go wrong: racing callers, process trees that resist a
//! stop, Slipway killed during a build and during a run.

use futures::future::join_all;
use slipway_sdk::{
    DeploymentBuilder, Error,
    proto::{RestartPolicy, Stage, restart_policy::Mode},
};
use slipway_testkit::{
    Dirs, ServerProcess, TestServer, eventually, http_get, port_is_free, port_range,
    process_exists, process_group_exists,
};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");
const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// Live processes whose environment carries `marker=1`.
fn marked_processes(marker: &str) -> Vec<i32> {
    let wanted = format!("{marker}=1");
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

fn unique_marker(name: &str) -> String {
    format!(
        "SLIPWAY_TEST_{}_{}",
        name.to_uppercase(),
        std::process::id()
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    Stop,
    Restart,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_stops_and_restarts_leave_one_consistent_state() {
    let server = TestServer::start().await;
    let marker = unique_marker("race");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("race")
                .command([SAMPLE, "http"])
                .env(&marker, "1")
                .listen()
                .stop_grace_period_seconds(5),
        )
        .await;
    server.start_workload(&workload.id).await;

    let calls = (0..50).map(|index| {
        let client = server.client.clone();
        let id = workload.id.clone();
        let call = if index % 2 == 0 {
            Call::Stop
        } else {
            Call::Restart
        };
        async move {
            let accepted = match call {
                Call::Stop => client.stop_workload(&id, None).await,
                Call::Restart => client.restart_workload(&id).await,
            };
            match accepted {
                Ok(progress) => {
                    let mut progress = progress;
                    // The first message is the accepted snapshot: its revision orders the calls.
                    use futures::StreamExt;
                    let first = match progress.next().await {
                        Some(Ok(slipway_sdk::Progress::Workload(workload))) => workload,
                        other => panic!("expected the accepted snapshot, got {other:?}"),
                    };
                    // A restart that a later stop overtook ends failed, as it should.
                    match progress.finish().await {
                        Ok(_) | Err(Error::OperationFailed(_)) => {}
                        Err(other) => panic!("unexpected end of progress: {other:?}"),
                    }
                    (call, Ok(first.revision))
                }
                Err(Error::InvalidState {
                    current_stage,
                    message,
                    ..
                }) => {
                    assert!(message.starts_with("Cannot "), "{message}");
                    (call, Err(current_stage))
                }
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
    });
    let answers = join_all(calls).await;
    assert_eq!(answers.len(), 50, "every call was answered");
    let accepted: Vec<(Call, u64)> = answers
        .iter()
        .filter_map(|(call, answer)| answer.as_ref().ok().map(|revision| (*call, *revision)))
        .collect();
    assert!(!accepted.is_empty());
    for (_, answer) in &answers {
        if let Err(stage) = answer {
            assert_ne!(
                *stage,
                Stage::Unspecified,
                "a refusal names the current stage"
            );
        }
    }
    let last = accepted
        .iter()
        .max_by_key(|(_, revision)| *revision)
        .expect("a last call")
        .0;
    let settled = server
        .wait_for(
            &workload.id,
            if last == Call::Stop {
                Stage::Stopped
            } else {
                Stage::Running
            },
        )
        .await
        .expect("the stage of the last accepted call");
    let processes = marked_processes(&marker);
    match last {
        Call::Stop => {
            eventually("no process of the workload is left", || {
                marked_processes(&marker).is_empty()
            })
            .await;
        }
        Call::Restart => {
            assert_eq!(processes.len(), 1, "exactly one process: {processes:?}");
            assert_eq!(processes[0].to_string(), settled.runtime_id);
            assert_eq!(http_get(settled.port as u16, "/").expect("http").0, 200);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_reaches_a_grandchild_that_ignores_sigterm_and_frees_the_port() {
    let server = TestServer::start().await;
    let marker = unique_marker("tree");
    let script = format!("(trap '' TERM; exec {SAMPLE} http) & echo started; wait");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("tree")
                .command(["sh", "-c", &script])
                .env(&marker, "1")
                .listen()
                .stop_grace_period_seconds(2),
        )
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running, "{}", running.error);
    let port = running.port as u16;
    assert_eq!(
        marked_processes(&marker).len(),
        2,
        "the shell and its grandchild"
    );
    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    assert!(
        marked_processes(&marker).is_empty(),
        "a process of the tree survived the stop"
    );
    assert!(
        port_is_free(port),
        "port {port} is still held after the stop"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_slipway_leaves_no_workload_in_transit_and_no_stale_process() {
    let dirs = Dirs::new();
    let range = port_range();
    let range = format!("{}-{}", range.start(), range.end());
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let build_marker = unique_marker("building");
    let run_marker = unique_marker("running");
    let building = server
        .client
        .create_deployment(
            DeploymentBuilder::new("building")
                .build_step(["sh", "-c", "echo compiling; exec sleep 300"])
                .command(["sleep", "300"])
                .env(&build_marker, "1")
                .build(),
        )
        .await
        .expect("deployment");
    let running = server
        .client
        .create_deployment(
            DeploymentBuilder::new("running")
                .command([SAMPLE, "http"])
                .env(&run_marker, "1")
                .listen()
                .build(),
        )
        .await
        .expect("deployment");
    let policed = server
        .client
        .create_deployment(
            DeploymentBuilder::new("policed")
                .command(["sleep", "300"])
                .restart_policy(RestartPolicy {
                    mode: Mode::OnFailure.into(),
                    initial_backoff_ms: Some(100),
                    ..RestartPolicy::default()
                })
                .stop_grace_period_seconds(1)
                .build(),
        )
        .await
        .expect("deployment");
    let restartable = server
        .client
        .create_workload(&policed.id)
        .await
        .expect("workload");
    let first = server
        .client
        .start_workload(&restartable.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("start");
    assert_eq!(first.stage(), Stage::Running);
    let in_build = server
        .client
        .create_workload(&building.id)
        .await
        .expect("workload");
    let in_run = server
        .client
        .create_workload(&running.id)
        .await
        .expect("workload");
    drop(
        server
            .client
            .start_workload(&in_build.id)
            .await
            .expect("start"),
    );
    let run = server
        .client
        .start_workload(&in_run.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("start");
    assert_eq!(run.stage(), Stage::Running);
    server
        .client
        .wait_for(&in_build.id, Stage::Build, slipway_testkit::PATIENCE)
        .await
        .ok();
    eventually("the build step runs", || {
        !marked_processes(&build_marker).is_empty()
    })
    .await;
    let run_pid: i32 = run.runtime_id.parse().expect("pid");

    server.kill9();
    assert!(
        process_exists(run_pid),
        "a process outlives a killed slipway"
    );
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    // Reconcile runs while the server serves: wait for its outcome.
    for (id, was) in [(&in_build.id, Stage::Build), (&in_run.id, Stage::Running)] {
        let workload = server
            .client
            .wait_for(id, Stage::Failed, slipway_testkit::PATIENCE)
            .await
            .expect("failed by reconcile");
        assert_eq!(workload.stage(), Stage::Failed, "{was:?}");
        assert_eq!(workload.failed_stage(), was);
        assert!(
            workload.error.contains("orchestrator restarted"),
            "{}",
            workload.error
        );
    }
    assert!(
        marked_processes(&build_marker).is_empty(),
        "the stale build step is gone"
    );
    assert!(
        marked_processes(&run_marker).is_empty(),
        "the stale service is gone"
    );
    assert!(!process_group_exists(run_pid));
    assert!(port_is_free(run.port as u16));
    // The restart policy applies to a run that ended with Slipway: it runs again.
    // (It may still rest failed, its restart due after the back-off.)
    let deadline = tokio::time::Instant::now() + slipway_testkit::PATIENCE;
    let again = loop {
        let workload = server
            .client
            .get_workload(&restartable.id)
            .await
            .expect("get");
        if workload.generation == 2 && workload.stage() == Stage::Running {
            break workload;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not restarted by its policy: {workload:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(again.generation, 2);
    assert_ne!(again.runtime_id, first.runtime_id);
    assert!(
        !process_exists(first.runtime_id.parse().expect("pid")),
        "the stale process is gone"
    );
    let listed = server
        .client
        .list_workloads(Default::default())
        .await
        .expect("list");
    assert!(listed.workloads.iter().all(|workload| {
        !matches!(
            workload.stage(),
            Stage::Validate | Stage::Build | Stage::Deploy | Stage::Stopping
        )
    }));
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_can_leave_process_workloads_running_for_the_next_start_to_clean_up() {
    let dirs = Dirs::new();
    let range = port_range();
    let range = format!("{}-{}", range.start(), range.end());
    let leave = ["--on-shutdown", "leave"];
    let server =
        ServerProcess::start_with_args(SERVER_PROCESS, &dirs.data, &dirs.root, &range, &leave)
            .await;
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new("left")
                .command(["sleep", "300"])
                .build(),
        )
        .await
        .expect("deployment");
    let workload = server
        .client
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    let running = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("start");
    let pid: i32 = running.runtime_id.parse().expect("pid");
    assert!(server.terminate().success());
    assert!(process_exists(pid), "left running at shutdown");
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let after = server
        .client
        .wait_for(&workload.id, Stage::Failed, slipway_testkit::PATIENCE)
        .await
        .expect("failed by reconcile");
    assert_eq!(after.stage(), Stage::Failed);
    assert!(
        after.error.contains("orchestrator restarted"),
        "{}",
        after.error
    );
    assert!(!process_exists(pid), "stopped by the next start");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_signal_is_the_deployments_own() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("interruptible")
                .command([
                    "sh",
                    "-c",
                    "trap 'echo got INT; exit 0' INT; trap '' TERM; echo up; while :; do sleep 0.1; done",
                ])
                .stop_signal("SIGINT")
                .stop_grace_period_seconds(30),
        )
        .await;
    server.start_workload(&workload.id).await;
    server.follow_until(&workload.id, |line| line == "up").await;
    let began = std::time::Instant::now();
    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Stopped);
    assert!(
        began.elapsed().as_secs() < 15,
        "SIGINT ended it, not the kill after the grace period"
    );
    let messages = server.log_messages(&workload.id).await;
    assert!(
        messages.iter().any(|line| line == "got INT"),
        "{messages:?}"
    );
    let refused = server
        .client
        .create_deployment(
            DeploymentBuilder::new("bad-signal")
                .command(["true"])
                .stop_signal("SIGSTOP")
                .build(),
        )
        .await
        .expect_err("SIGSTOP is no stop signal");
    assert!(
        matches!(refused, Error::InvalidArgument { .. }),
        "{refused:?}"
    );
    server.stop().await;
}
