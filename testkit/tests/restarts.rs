//! Slipway killed (`kill -9`) with process workloads running: the next start
//! serves at once while it stops the old processes, all at the same time, and a
//! shutdown meanwhile still stops them.

use std::time::{Duration, Instant};

use slipway_sdk::{DeploymentBuilder, Error, proto::Stage};
use slipway_testkit::{Dirs, ServerProcess, eventually, port_range, process_exists};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// A workload that ignores SIGTERM (and so do its children).
const IGNORES_TERM: [&str; 3] = ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"];
const GRACE_SECONDS: u32 = 10;

/// Starts a workload of a new deployment running `command`; returns its id and pid.
async fn run(
    server: &ServerProcess,
    name: &str,
    command: &[&str],
    grace_seconds: u32,
) -> (String, i32) {
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new(name)
                .command(command.iter().copied())
                .stop_grace_period_seconds(grace_seconds)
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
    assert_eq!(running.stage(), Stage::Running);
    (workload.id, running.runtime_id.parse().expect("pid"))
}

/// Polls `Health/Check` until the server answers SERVING; returns when it did.
async fn first_health_answer(server: &ServerProcess) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = async {
            let channel =
                tonic::transport::Channel::from_shared(format!("http://{}", server.address))
                    .ok()?
                    .connect()
                    .await
                    .ok()?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .ok()?;
            (response.into_inner().status() == ServingStatus::Serving).then_some(())
        };
        if tokio::time::timeout(Duration::from_secs(1), answered)
            .await
            .ok()
            .flatten()
            .is_some()
        {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the server never answered Health/Check"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn range() -> String {
    let range = port_range();
    format!("{}-{}", range.start(), range.end())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_the_next_start_answers_at_once_and_stops_the_old_processes_in_parallel() {
    let dirs = Dirs::new();
    let range = range();
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let (stubborn, stubborn_pid) = run(&server, "stubborn", &IGNORES_TERM, GRACE_SECONDS).await;
    let mut others = Vec::new();
    for index in 0..4 {
        others.push(
            run(
                &server,
                &format!("other-{index}"),
                &["sleep", "300"],
                GRACE_SECONDS,
            )
            .await,
        );
    }
    server.kill9();
    assert!(process_exists(stubborn_pid), "outlives the killed slipway");

    let restarted_at = Instant::now();
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let answered = first_health_answer(&server).await - restarted_at;
    println!("first Health/Check answer {answered:?} after the restart");
    // The point: the server does not wait for the old processes' grace periods
    // (10 s for the one that ignores SIGTERM) before it answers.
    assert!(
        answered < Duration::from_secs(5),
        "the restarted server answered only after {answered:?}"
    );

    // While its old process is being stopped, the workload keeps its stage and
    // its log says it is being reconciled.
    let during = server.client.get_workload(&stubborn).await.expect("get");
    if during.stage() == Stage::Running {
        // The line is stored with the next batch: poll for it, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let logs = server.client.all_logs(&stubborn).await.expect("logs");
            if logs
                .iter()
                .any(|entry| entry.message.contains("reconciling"))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the log says the workload is being reconciled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The old processes are stopped at the same time: those that honour SIGTERM
    // go at once, not after the stubborn one's grace period.
    for (id, pid) in &others {
        let failed = server
            .client
            .wait_for(id, Stage::Failed, slipway_testkit::PATIENCE)
            .await
            .expect("failed");
        assert!(
            failed.error.contains("orchestrator restarted"),
            "{}",
            failed.error
        );
        assert!(!process_exists(*pid), "the old process {pid} is gone");
    }
    let others_gone = restarted_at.elapsed();
    println!("the four TERM-honouring processes were gone {others_gone:?} after the restart");
    assert!(
        others_gone < Duration::from_secs(u64::from(GRACE_SECONDS)),
        "the others waited for the stubborn one: {others_gone:?}"
    );
    // A control call on the workload waits for reconcile, then sees its outcome:
    // the workload failed meanwhile, so there is nothing to stop.
    match server.client.stop_workload(&stubborn, None).await {
        Err(Error::InvalidState { current_stage, .. }) => {
            assert_eq!(current_stage, Stage::Failed);
        }
        Err(other) => panic!("the stop got another error: {other:?}"),
        Ok(_) => panic!("a stop was accepted on a workload reconcile failed"),
    }
    let failed = server.client.get_workload(&stubborn).await.expect("get");
    assert_eq!(failed.stage(), Stage::Failed);
    assert!(
        failed.error.contains("orchestrator restarted"),
        "{}",
        failed.error
    );
    eventually("the stubborn process is gone", || {
        !process_exists(stubborn_pid)
    })
    .await;
    let stubborn_gone = restarted_at.elapsed();
    println!("the TERM-ignoring process was gone {stubborn_gone:?} after the restart");
    assert!(
        stubborn_gone < Duration::from_secs(u64::from(GRACE_SECONDS) + 8),
        "stopped within its grace period (and the kill after it): {stubborn_gone:?}"
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_reconcile_still_stops_the_old_processes() {
    let dirs = Dirs::new();
    let range = range();
    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let (stubborn, pid) = run(&server, "stubborn", &IGNORES_TERM, 5).await;
    server.kill9();

    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    first_health_answer(&server).await;
    // SIGTERM while reconcile is (most likely) still waiting out the grace period.
    assert!(server.terminate().success(), "a clean exit");
    assert!(
        !process_exists(pid),
        "the shutdown finished stopping the old process before it exited"
    );

    let server = ServerProcess::start(SERVER_PROCESS, &dirs.data, &dirs.root, &range).await;
    let after = server
        .client
        .wait_for(&stubborn, Stage::Failed, slipway_testkit::PATIENCE)
        .await
        .expect("failed");
    assert!(
        after.error.contains("orchestrator restarted"),
        "{}",
        after.error
    );
    server.terminate();
}
