//! Workloads that cannot run end FAILED with the stage, the reason and the output.

use slipway_sdk::{DeploymentBuilder, proto::Stage};
use slipway_testkit::{TestServer, process_exists};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_step_fails_the_build_with_its_output_in_the_logs() {
    let server = TestServer::start().await;
    server.service_dir("broken");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("broken")
                .service_path("broken")
                .build_step([
                    "sh",
                    "-c",
                    "echo compiling; echo 'error: missing semicolon' >&2; exit 2",
                ])
                .command([SAMPLE, "http"])
                .listen(),
        )
        .await;
    let failed = server.start_workload(&workload.id).await;
    assert_eq!(failed.stage(), Stage::Failed);
    assert_eq!(failed.failed_stage(), Stage::Build);
    assert!(
        failed.error.contains("exited with code 2"),
        "{}",
        failed.error
    );
    assert_eq!(failed.port, 0);
    let entries = server.client.all_logs(&workload.id).await.expect("logs");
    let stderr = entries
        .iter()
        .find(|entry| entry.message == "error: missing semicolon")
        .expect("the step's stderr is in the logs");
    assert_eq!(stderr.stage(), Stage::Build);
    assert_eq!(stderr.stream(), slipway_sdk::proto::Stream::Stderr);
    assert_eq!(stderr.level(), slipway_sdk::proto::Level::Error);
    assert!(
        entries
            .iter()
            .any(|entry| entry.message == "compiling" && entry.stage() == Stage::Build)
    );
    assert!(
        entries
            .iter()
            .any(|entry| entry.message.starts_with("failed in build"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_at_once_fails_in_deploy_with_its_exit_code() {
    let server = TestServer::start().await;
    server.service_dir("crash");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("crash")
                .service_path("crash")
                .command(["sh", "-c", "echo 'fatal: no config file' >&2; exit 3"])
                .listen(),
        )
        .await;
    let failed = server.start_workload(&workload.id).await;
    assert_eq!(failed.stage(), Stage::Failed);
    assert_eq!(failed.failed_stage(), Stage::Deploy);
    assert_eq!(failed.exit_code, Some(3));
    assert!(
        failed.error.contains("exited with code 3"),
        "{}",
        failed.error
    );
    let messages = server.log_messages(&workload.id).await;
    assert!(
        messages.iter().any(|line| line == "fatal: no config file"),
        "{messages:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_timeout_fails_in_deploy_and_stops_the_process() {
    let server = TestServer::start().await;
    server.service_dir("deaf");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("deaf")
                .service_path("deaf")
                .command(["sh", "-c", "echo 'not listening'; exec sleep 300"])
                .listen()
                .startup_timeout_seconds(1)
                .stop_grace_period_seconds(1),
        )
        .await;
    let failed = server.start_workload(&workload.id).await;
    assert_eq!(failed.stage(), Stage::Failed);
    assert_eq!(failed.failed_stage(), Stage::Deploy);
    assert!(failed.error.contains("readiness"), "{}", failed.error);
    let pid: i32 = failed.runtime_id.parse().expect("pid");
    assert!(
        !process_exists(pid),
        "the unready process {pid} was left running"
    );
    let messages = server.log_messages(&workload.id).await;
    assert!(messages.iter().any(|line| line == "not listening"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_service_that_crashes_is_failed_with_its_exit_code_and_stderr() {
    let server = TestServer::start().await;
    server.service_dir("flaky");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("flaky")
                .service_path("flaky")
                .command([
                    "sh",
                    "-c",
                    "sleep 0.5; echo 'panic: out of cheese' >&2; exit 1",
                ]),
        )
        .await;
    let started = server.start_workload(&workload.id).await;
    assert!(matches!(started.stage(), Stage::Running | Stage::Failed));
    let failed = server
        .wait_for(&workload.id, Stage::Failed)
        .await
        .expect("the crash is noticed");
    assert_eq!(failed.exit_code, Some(1));
    assert_eq!(failed.failed_stage(), Stage::Running);
    let messages = server.log_messages(&workload.id).await;
    assert!(messages.iter().any(|line| line == "panic: out of cheese"));
    server.stop().await;
}
