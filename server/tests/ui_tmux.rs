//! `slipway ui` end to end: the real binary in a detached tmux session of
//! 80×24 against a real server; keys sent to stop the workload (with the
//! confirmation), the pane read until it shows the workload stopped, and the
//! server asked. Skipped (with the reason printed) when tmux is not installed,
//! unless `SLIPWAY_REQUIRE_TMUX=1` (CI), when it fails instead.

mod cli_support;

use std::process::Output;

use cli_support::{Harness, PATIENCE, SLIPWAY};
use slipway_sdk::proto::Stage;

/// A tmux server of the test's own (`tmux -L NAME`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    async fn run(&self, arguments: &[&str]) -> Output {
        tokio::process::Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(arguments)
            .output()
            .await
            .expect("run tmux")
    }

    /// The pane's text as it is now (empty when the session is gone).
    async fn pane(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", "ui"]).await;
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn send(&self, key: &str) {
        let output = self.run(&["send-keys", "-t", "ui", key]).await;
        assert!(output.status.success(), "send-keys {key}: {output:?}");
    }

    /// Reads the pane until `condition` holds for it; fails after `PATIENCE`.
    async fn until(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let pane = self.pane().await;
            if condition(&pane) {
                return pane;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting until {what}; the pane:\n{pane}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn tmux_installed() -> bool {
    std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Single-quotes `text` for sh.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_stops_a_workload_in_tmux() {
    if !tmux_installed() {
        assert!(
            std::env::var("SLIPWAY_REQUIRE_TMUX").as_deref() != Ok("1"),
            "tmux is required (SLIPWAY_REQUIRE_TMUX=1) but not installed"
        );
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let harness = Harness::start().await;
    let stdout = harness
        .cli_ok(&[
            "run",
            "-d",
            "--name",
            "tmux-target",
            "--",
            "sh",
            "-c",
            "while :; do sleep 1; done",
        ])
        .await;
    let id = stdout.trim().to_owned();
    let short_id = id[..12].to_owned();

    let tmux = Tmux {
        socket: format!("slipway-ui-test-{}", std::process::id()),
    };
    let command = format!(
        "env SLIPWAY_SERVER={} SLIPWAY_TOKEN_FILE={} NO_COLOR=1 TERM=xterm {} ui",
        quoted(&harness.url()),
        quoted(&harness.token_file.display().to_string()),
        quoted(SLIPWAY),
    );
    let started = tmux
        .run(&[
            "new-session",
            "-d",
            "-s",
            "ui",
            "-x",
            "80",
            "-y",
            "24",
            &command,
        ])
        .await;
    assert!(started.status.success(), "tmux new-session: {started:?}");

    let row = |pane: &str, word: &str| {
        pane.lines()
            .any(|line| line.contains(&short_id) && line.contains(word))
    };
    tmux.until("the workload is listed running", |pane| {
        row(pane, "running") && pane.contains("· connected")
    })
    .await;
    // The only workload is selected: stop it, and confirm.
    tmux.send("s").await;
    let confirmation = tmux
        .until("the confirmation shows", |pane| {
            pane.contains("Stop workload")
        })
        .await;
    assert!(
        confirmation.contains("grace period"),
        "the confirmation states the impact:\n{confirmation}"
    );
    tmux.send("y").await;
    let pane = tmux
        .until("the workload is shown stopped", |pane| row(pane, "stopped"))
        .await;
    assert!(
        !pane.contains("Stop workload"),
        "confirmation closed:\n{pane}"
    );

    let workload = harness.workload(&id).await;
    assert_eq!(workload.stage(), Stage::Stopped);

    // q leaves the UI (and the session ends with it).
    tmux.send("q").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tmux
        .run(&["has-session", "-t", "ui"])
        .await
        .status
        .success()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the UI did not quit on q:\n{}",
            tmux.pane().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    harness.stop().await;
}
