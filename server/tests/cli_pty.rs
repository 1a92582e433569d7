//! `slipway run` in the foreground and `slipway logs`, driven in a
//! pseudo-terminal: run shows the stages and the logs, and Ctrl-C leaves the
//! workload STOPPED; a workload's escape sequences are shown escaped.

mod cli_support;

use cli_support::{Harness, PATIENCE, SLIPWAY};
use slipway_sdk::proto::Stage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_the_foreground_shows_stages_and_logs_and_ctrl_c_stops_it() {
    let harness = Harness::start().await;
    let url = harness.url();
    let token_file = harness.token_file.clone();
    let session = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(SLIPWAY);
        command
            .env("SLIPWAY_TOKEN_FILE", &token_file)
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

/// Runs `slipway ARGUMENTS` in a pseudo-terminal against `url` and returns all
/// it printed.
fn in_a_terminal(url: &str, token_file: &std::path::Path, arguments: &[&str]) -> String {
    let mut command = std::process::Command::new(SLIPWAY);
    command
        .env("SLIPWAY_TOKEN_FILE", token_file)
        .args(["--server", url])
        .args(arguments)
        .env("NO_COLOR", "1");
    let timeout_ms = u64::try_from(PATIENCE.as_millis()).expect("timeout");
    let mut session =
        rexpect::session::spawn_command(command, Some(timeout_ms)).expect("spawn in a pty");
    session.exp_eof().expect("the command ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workloads_escape_sequences_are_shown_escaped_on_a_terminal_and_raw_with_raw() {
    let harness = Harness::start().await;
    let deployment = harness
        .client
        .create_deployment(
            slipway_sdk::DeploymentBuilder::new("colourful")
                .command([
                    "sh",
                    "-c",
                    r"printf '\033[31mred\033[0m and\ta bell\007\n'; exec sleep 60",
                ])
                .build(),
        )
        .await
        .expect("deployment");
    let workload_id = harness
        .client
        .create_workload(&deployment.id)
        .await
        .expect("workload")
        .id;
    harness
        .client
        .start_workload(&workload_id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("running");
    let client = harness.client.clone();
    let id = workload_id.clone();
    cli_support::eventually("the line is stored", || {
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .all_logs(&id)
                .await
                .is_ok_and(|lines| lines.iter().any(|line| line.message.contains("bell")))
        }
    })
    .await;

    let url = harness.url();
    let token_file = harness.token_file.clone();
    let id = workload_id.clone();
    let (escaped, raw) = tokio::task::spawn_blocking(move || {
        (
            in_a_terminal(&url, &token_file, &["logs", &id]),
            in_a_terminal(&url, &token_file, &["logs", "--raw", &id]),
        )
    })
    .await
    .expect("the sessions ran");
    assert!(
        escaped.contains("^[[31mred^[[0m and\ta bell^G"),
        "{escaped:?}"
    );
    assert!(!escaped.contains('\x1b'), "{escaped:?}");
    assert!(
        raw.contains("\x1b[31mred\x1b[0m and\ta bell\x07"),
        "{raw:?}"
    );

    // To a pipe the bytes pass as they are, unless asked.
    let piped = harness.cli_ok(&["logs", &workload_id]).await;
    assert!(piped.contains("\x1b[31mred\x1b[0m"), "{piped:?}");
    let asked = harness.cli_ok(&["logs", "--escape", &workload_id]).await;
    assert!(asked.contains("^[[31mred^[[0m"), "{asked:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_the_foreground_shows_escape_sequences_escaped() {
    let harness = Harness::start().await;
    let url = harness.url();
    let token_file = harness.token_file.clone();
    let shown = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(SLIPWAY);
        command
            .env("SLIPWAY_TOKEN_FILE", &token_file)
            .args(["--server", &url, "run", "--name", "escapes", "--"])
            .args([
                "sh",
                "-c",
                r"printf '\033]0;title\007\033[2Jcleared\n'; while :; do sleep 1; done",
            ])
            .env("NO_COLOR", "1");
        let timeout_ms = u64::try_from(PATIENCE.as_millis()).expect("timeout");
        let mut session =
            rexpect::session::spawn_command(command, Some(timeout_ms)).expect("spawn in a pty");
        let shown = session.exp_string("cleared").expect("the line shown");
        session.send_control('c').expect("Ctrl-C");
        session.exp_eof().expect("the command ends");
        shown
    })
    .await
    .expect("the session ran");
    assert!(shown.contains("^[]0;title^G^[[2J"), "{shown:?}");
    harness.stop().await;
}
