//! Workloads that cannot run end FAILED with the stage, the reason and the output.

use slipway_sdk::{DeploymentBuilder, Error, Progress, proto::Stage};
use slipway_testkit::{TestServer, process_exists};

/// The fields of an [`Error::OperationFailed`].
fn failure(error: &Error) -> (Stage, Option<i32>, &[String], &str) {
    match error {
        Error::OperationFailed(failure) => (
            failure.stage,
            failure.exit_code,
            &failure.last_lines,
            &failure.reason,
        ),
        other => panic!("not an operation failure: {other:?}"),
    }
}

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
    let (failed, error) = server.start_expecting_failure(&workload.id).await;
    let (stage, _, last_lines, reason) = failure(&error);
    assert_eq!(stage, Stage::Build);
    assert!(reason.contains("exited with code 2"), "{reason}");
    assert!(
        last_lines.contains(&"error: missing semicolon".to_owned()),
        "{last_lines:?}"
    );
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
    let (failed, error) = server.start_expecting_failure(&workload.id).await;
    let (stage, exit_code, last_lines, _) = failure(&error);
    assert_eq!((stage, exit_code), (Stage::Deploy, Some(3)));
    assert_eq!(last_lines, ["fatal: no config file"]);
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
    let (failed, error) = server.start_expecting_failure(&workload.id).await;
    let (stage, _, last_lines, reason) = failure(&error);
    assert_eq!(stage, Stage::Deploy);
    assert!(reason.contains("readiness"), "{reason}");
    assert_eq!(last_lines, ["not listening"]);
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

/// A process that exits at once with no readiness check has not started: the
/// stream ends FAILED with its exit code and output, never RUNNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_readiness_of_a_process_that_exits_fails_with_exit_code_7() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("seven").command(["sh", "-c", "echo bye; exit 7"]))
        .await;
    let progress = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start accepted");
    let (messages, outcome) = progress.collect_outcome().await;
    let error = outcome.expect_err("the start fails");
    let (stage, exit_code, last_lines, reason) = failure(&error);
    assert_eq!((stage, exit_code), (Stage::Deploy, Some(7)), "{reason}");
    assert_eq!(last_lines, ["bye"]);
    let stages: Vec<Stage> = messages
        .iter()
        .filter_map(|message| match message {
            Progress::Workload(workload) => Some(workload.stage()),
            Progress::Log(_) => None,
        })
        .collect();
    assert!(!stages.contains(&Stage::Running), "{stages:?}");
    assert_eq!(stages.last(), Some(&Stage::Failed), "{stages:?}");
    server.stop().await;
}

/// Progress arrives in the order it happened: a build line before the deploy
/// snapshot, and a successful start ends with its RUNNING snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_in_order_and_a_start_ends_with_running() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("ordered")
                .build_step(["sh", "-c", "echo compiled"])
                .command(["sleep", "300"]),
        )
        .await;
    let messages = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start accepted")
        .collect_all()
        .await
        .expect("the start succeeds");
    let position = |wanted: &dyn Fn(&Progress) -> bool| {
        messages
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("missing in {messages:?}"))
    };
    let build_line =
        position(&|message| matches!(message, Progress::Log(entry) if entry.message == "compiled"));
    let deploy = position(
        &|message| matches!(message, Progress::Workload(workload) if workload.stage() == Stage::Deploy),
    );
    assert!(build_line < deploy, "{messages:?}");
    match messages.last() {
        Some(Progress::Workload(last)) => assert_eq!(last.stage(), Stage::Running),
        other => panic!("the stream ends with {other:?}"),
    }
    server.stop_workload(&workload.id).await;
    server.stop().await;
}

/// A workload that prints without pause still gets an answer: the start's
/// progress carries its lines up to the moment it is running, then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_workload_still_ends_its_start_at_running() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("chatty").command([
            "sh",
            "-c",
            "while :; do echo tick; done",
        ]))
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running);
    server.stop_workload(&workload.id).await;
    server.stop().await;
}
