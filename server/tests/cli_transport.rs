//! The CLI on the server's Unix socket: named with `--server unix:///PATH`,
//! or found as `./.slipway/slipway.sock` when no server is named; no token is
//! needed there.

mod cli_support;

use std::process::Stdio;

use cli_support::{Harness, PATIENCE, SLIPWAY};

/// `slipway ARGUMENTS` in `dir`, with no server, token or TLS settings from
/// the environment.
async fn bare_cli(dir: &std::path::Path, arguments: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(SLIPWAY);
    command
        .args(arguments)
        .current_dir(dir)
        .env_remove("SLIPWAY_SERVER")
        .env_remove("SLIPWAY_TOKEN")
        .env_remove("SLIPWAY_TOKEN_FILE")
        .env_remove("SLIPWAY_TLS_CA")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("slipway ends in time")
        .expect("slipway runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uses_the_local_socket_without_a_token() {
    let harness = Harness::start().await;
    let socket = harness.data_dir().join("slipway.sock");
    let elsewhere = tempfile::TempDir::new().expect("dir");

    // Named explicitly: an admin-only command works without a token.
    let url = format!("unix://{}", socket.display());
    let named = bare_cli(elsewhere.path(), &["--server", &url, "token", "ls"]).await;
    assert!(named.status.success(), "{named:?}");
    assert!(
        String::from_utf8_lossy(&named.stdout).contains("admin"),
        "{named:?}"
    );

    // Not named, where ./.slipway is the server's data directory: its socket.
    std::os::unix::fs::symlink(harness.data_dir(), elsewhere.path().join(".slipway"))
        .expect("link .slipway");
    let found = bare_cli(elsewhere.path(), &["token", "ls"]).await;
    assert!(found.status.success(), "{found:?}");
    harness.stop().await;
}
