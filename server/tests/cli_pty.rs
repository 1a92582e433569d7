//! `slipway run` in the foreground, driven in a pseudo-terminal: it shows the
//! stages and the logs, and Ctrl-C leaves the workload STOPPED.

mod cli_support;

use cli_support::{Harness, PATIENCE, SLIPWAY};
use slipway_sdk::proto::Stage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_the_foreground_shows_stages_and_logs_and_ctrl_c_stops_it() {
    let harness = Harness::start().await;
    let url = harness.url();
    let session = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(SLIPWAY);
        command
            .args(["--server", &url, "run", "--name", "foreground", "--"])
            .args([
                "sh",
                "-c",
                "echo hello from the foreground; while :; do sleep 1; done",
            ])
            .env("NO_COLOR", "1");
        let timeout_ms = u64::try_from(PATIENCE.as_millis()).expect("timeout");
        let mut session =
            rexpect::session::spawn_command(command, Some(timeout_ms)).expect("spawn in a pty");
        // Each stage as it happens (a spinner line per stage on a terminal), then the log.
        let mut shown = String::new();
        for stage in ["validate", "build", "deploy", "running"] {
            shown.push_str(&session.exp_string(stage).expect("stage shown"));
        }
        shown.push_str(
            &session
                .exp_string("hello from the foreground")
                .expect("log line shown"),
        );
        session.send_control('c').expect("Ctrl-C");
        shown.push_str(&session.exp_string("stopped").expect("stop shown"));
        shown.push_str(&session.exp_eof().expect("the command ends"));
        shown
    });
    let shown = tokio::time::timeout(PATIENCE * 2, session)
        .await
        .expect("the session ends in time")
        .expect("the session ran");
    assert!(shown.contains("stopping"), "{shown}");

    let deployment = harness
        .client
        .all_deployments()
        .await
        .expect("deployments")
        .into_iter()
        .find(|deployment| deployment.name == "foreground")
        .expect("the deployment");
    let workloads = harness
        .client
        .list_workloads(slipway_sdk::proto::ListWorkloadsRequest {
            deployment_id: deployment.id,
            ..Default::default()
        })
        .await
        .expect("workloads")
        .workloads;
    assert_eq!(workloads.len(), 1);
    assert_eq!(workloads[0].stage(), Stage::Stopped);
    harness.stop().await;
}
