//! The `slipway` command line, run as a real binary against a real server.

mod cli_support;

use std::collections::HashMap;

use cli_support::{Harness, PATIENCE, counting_service, eventually};
use slipway_sdk::proto::{Stage, Stream};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `slipway run -d` and returns the printed workload id.
async fn run_detached(harness: &Harness, name: &str, script: &str) -> String {
    let stdout = harness
        .cli_ok(&["run", "-d", "--name", name, "--", "sh", "-c", script])
        .await;
    let id = stdout.trim().to_owned();
    assert_eq!(id.len(), 32, "run -d prints the full id: {stdout:?}");
    id
}

/// Waits until the workload's stored log has a line equal to `message`.
async fn wait_for_line(harness: &Harness, id: &str, message: &str) {
    eventually(&format!("{id} logs {message:?}"), || async {
        harness
            .client
            .all_logs(id)
            .await
            .map(|entries| entries.iter().any(|entry| entry.message == message))
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_detached_then_ps_logs_tail_and_inspect_by_prefix() {
    let harness = Harness::start().await;
    let id = run_detached(&harness, "counter", &counting_service("line", 5)).await;
    assert_eq!(harness.workload(&id).await.stage(), Stage::Running);
    let short = &id[..12];

    let table = harness.cli_ok(&["ps"]).await;
    let header = table.lines().next().unwrap_or_default();
    for column in ["ID", "NAME", "STAGE", "HEALTH", "PORT", "GENERATION", "AGE"] {
        assert!(header.contains(column), "{table}");
    }
    let row = table
        .lines()
        .find(|line| line.starts_with(short))
        .unwrap_or_else(|| panic!("ps lists {short}: {table}"));
    assert!(row.contains("counter") && row.contains("running"), "{row}");

    let listed: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["ps", "-o", "json"]).await).expect("ps json");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["stage"], "running");
    assert_eq!(listed[0]["deployment_name"], "counter");

    // The last two lines, as the CLI prints them, by a 6-digit prefix.
    wait_for_line(&harness, &id, "line 5").await;
    let entries = harness.client.all_logs(&id).await.expect("logs");
    let expected: Vec<String> = entries[entries.len() - 2..]
        .iter()
        .map(|entry| match entry.stream() {
            Stream::System => format!("[slipway] {}", entry.message),
            _ => entry.message.clone(),
        })
        .collect();
    let tail = harness.cli_ok(&["logs", "--tail", "2", &id[..6]]).await;
    assert_eq!(tail.lines().collect::<Vec<_>>(), expected, "{tail}");
    let all = harness.cli_ok(&["logs", "counter"]).await;
    for number in 1..=5 {
        assert!(all.contains(&format!("line {number}\n")), "{all}");
    }
    let stamped = harness
        .cli_ok(&[
            "logs",
            "--since",
            "1h",
            "--timestamps",
            "--tail",
            "1",
            short,
        ])
        .await;
    assert!(stamped.starts_with("20"), "{stamped}");
    assert!(
        harness
            .cli_ok(&["logs", "--stderr-only", short])
            .await
            .is_empty()
    );

    let inspected: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["inspect", "-o", "json", short]).await)
            .expect("inspect json");
    assert_eq!(inspected["id"], id.as_str());
    assert_eq!(inspected["stage"], "running");
    assert_eq!(inspected["generation"], 1);
    assert_eq!(inspected["deployment"]["name"], "counter");
    assert_eq!(inspected["deployment"]["spec"]["command"][0], "sh");
    assert!(
        inspected["created_at"]
            .as_str()
            .is_some_and(|time| time.ends_with('Z'))
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_of_three_at_once_with_one_already_stopped_then_restart_and_rm() {
    let harness = Harness::start().await;
    let service = counting_service("up", 1);
    let first = run_detached(&harness, "one", &service).await;
    let second = run_detached(&harness, "two", &service).await;
    let third = run_detached(&harness, "three", &service).await;
    harness.cli_ok(&["stop", &third[..12]]).await;
    assert_eq!(harness.workload(&third).await.stage(), Stage::Stopped);

    let output = harness
        .cli(&["stop", &first[..12], "two", &third[..8]])
        .await;
    assert_eq!(output.code, 1, "one of three failed: {output:?}");
    assert_eq!(
        output
            .stdout
            .lines()
            .filter(|line| line.ends_with("stopped"))
            .count(),
        2,
        "{output:?}"
    );
    assert!(output.stderr.contains(&third[..12]), "{output:?}");
    assert!(output.stderr.contains("already stopped"), "{output:?}");
    assert!(output.stderr.contains("slipway restart"), "{output:?}");
    for id in [&first, &second, &third] {
        assert_eq!(harness.workload(id).await.stage(), Stage::Stopped);
    }

    let restarted = harness.cli_ok(&["restart", &third[..12]]).await;
    assert!(restarted.contains("restarted"), "{restarted}");
    let workload = harness.workload(&third).await;
    assert_eq!(workload.stage(), Stage::Running);
    assert_eq!(workload.generation, 2);

    // JSON results for scripts: one per workload.
    let output = harness.cli(&["stop", "-o", "json", "--all"]).await;
    assert_eq!(output.code, 0, "{output:?}");
    let results: serde_json::Value = serde_json::from_str(&output.stdout).expect("json");
    assert_eq!(results.as_array().map(Vec::len), Some(1), "{results}");
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[0]["stage"], "stopped");

    harness.cli_ok(&["rm", &first[..12], "two"]).await;
    let gone = harness.cli(&["inspect", &first[..12]]).await;
    assert_eq!(gone.code, 3, "not found: {gone:?}");
    let listed: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["ps", "-a", "-o", "json"]).await).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], third.as_str());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_ends_when_the_workload_stops() {
    let harness = Harness::start().await;
    let id = run_detached(&harness, "follow", &counting_service("hello", 3)).await;
    let mut child = harness
        .command(&["logs", "-f", &id[..12]])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("logs -f runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let reading = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            let done = line == "hello 3";
            seen.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("lines seen in time");
    assert_eq!(&seen[seen.len() - 3..], ["hello 1", "hello 2", "hello 3"]);

    harness
        .client
        .stop_workload(&id, None)
        .await
        .expect("stop")
        .finish()
        .await
        .expect("stopped");
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("logs -f ends once the workload stops")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_prefix_lists_the_candidates_and_unknown_ids_are_not_found() {
    let harness = Harness::start().await;
    let deployment = harness
        .client
        .create_deployment(
            slipway_sdk::DeploymentBuilder::new("many")
                .command(["sh", "-c", "true"])
                .build(),
        )
        .await
        .expect("deployment");
    // Seventeen ids over sixteen hex digits: two share a first digit.
    let mut by_first_digit: HashMap<char, Vec<String>> = HashMap::new();
    for _ in 0..17 {
        let workload = harness
            .client
            .create_workload(&deployment.id)
            .await
            .expect("workload");
        let first = workload.id.chars().next().expect("id");
        by_first_digit.entry(first).or_default().push(workload.id);
    }
    let (digit, ids) = by_first_digit
        .into_iter()
        .find(|(_, ids)| ids.len() > 1)
        .expect("a shared first digit");
    let output = harness.cli(&["inspect", &digit.to_string()]).await;
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("ambiguous"), "{output:?}");
    for id in &ids {
        assert!(output.stderr.contains(&id[..12]), "{output:?}");
    }
    let unique = harness.cli_ok(&["inspect", &ids[0]]).await;
    assert!(unique.contains(&ids[0]));

    let missing = harness.cli(&["stop", "ffffffffffff0000"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(missing.stderr.contains("ffffffffffff0000"), "{missing:?}");
    let usage = harness.cli(&["stop"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_from_the_example_spec_then_list_and_remove_the_deployment() {
    let harness = Harness::start().await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/deployment.toml");
    let id = harness.cli_ok(&["deploy", "-f", example]).await;
    let id = id.trim();
    assert_eq!(harness.workload(id).await.stage(), Stage::Running);

    let listed: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["deployments", "-o", "json"]).await).expect("json");
    assert_eq!(listed[0]["name"], "ticker");
    assert_eq!(listed[0]["labels"]["team"], "docs");
    assert_eq!(listed[0]["spec"]["env"]["GREETING"], "hello");
    let by_label = harness.cli_ok(&["ps", "-q", "-l", "team=docs"]).await;
    assert_eq!(by_label.trim(), &id[..12]);

    // The same file again is no change; an update is a revision, rolled out.
    let again = harness.cli_ok(&["deploy", "-f", example]).await;
    assert_eq!(again.trim(), "ticker unchanged (revision 1)");
    let updated = harness
        .cli_ok(&["update", "ticker", "-e", "GREETING=bonjour"])
        .await;
    assert!(
        updated.starts_with("ticker updated to revision 2 (env changed)"),
        "{updated}"
    );
    assert!(
        updated.contains("succeeded"),
        "the rollout is followed: {updated}"
    );
    assert_eq!(harness.workload(id).await.spec_revision, 2);
    let table = harness.cli_ok(&["ps"]).await;
    assert!(table.contains("REV"), "{table}");
    let on_restart = harness
        .cli_ok(&["update", "ticker", "-e", "B=1", "--strategy", "on-restart"])
        .await;
    assert!(
        !on_restart.contains("rollout"),
        "nothing rolled out: {on_restart}"
    );
    let behind = harness.cli_ok(&["ps"]).await;
    assert!(
        behind.contains("2* (3)"),
        "an older revision is marked: {behind}"
    );
    let history = harness.cli_ok(&["rollout", "history", "ticker"]).await;
    assert!(history.contains("3 (current)"), "{history}");
    assert!(history.contains("created"), "{history}");
    let undone = harness.cli_ok(&["rollout", "undo", "ticker", "-d"]).await;
    assert!(
        undone.starts_with("ticker updated to revision 4"),
        "{undone}"
    );
    let stale = harness
        .cli(&["update", "ticker", "-e", "C=1", "--expect-revision", "1"])
        .await;
    assert_eq!(stale.code, 1, "{stale:?}");
    assert!(stale.stderr.contains("revision 4"), "{stale:?}");

    let removed = harness.cli_ok(&["deployment", "rm", "ticker"]).await;
    assert!(removed.contains("ticker"), "{removed}");
    assert!(harness.client.get_workload(id).await.is_err());
    let again = harness.cli(&["deployment", "rm", "ticker"]).await;
    assert_eq!(again.code, 3, "{again:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_dockers_restart_policies_and_reports_an_image_that_cannot_be_had() {
    let harness = Harness::start().await;
    let policy = harness
        .cli(&["run", "--restart", "sometimes", "--", "sh", "-c", "true"])
        .await;
    assert_eq!(policy.code, 2, "{policy:?}");
    assert!(policy.stderr.contains("on-failure[:MAX]"), "{policy:?}");
    let detached = harness
        .cli(&[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            "--",
            "sh",
            "-c",
            "sleep 30",
        ])
        .await;
    assert_eq!(detached.code, 0, "{detached:?}");
    let id = detached.stdout.trim().to_owned();
    let inspected = harness.cli_ok(&["inspect", "-o", "json", &id]).await;
    assert!(
        inspected.contains("\"restart\": \"on_failure\""),
        "{inspected}"
    );
    assert!(inspected.contains("\"max_restarts\": 2"), "{inspected}");

    let docker = harness
        .cli(&["run", "-d", "--image", "nginx:1.27", "--port", "80"])
        .await;
    assert_eq!(docker.code, 1, "{docker:?}");
    // No registry here (or no engine on a laptop): either way the failure says why.
    assert!(
        docker.stderr.contains("could not be pulled") || docker.stderr.contains("Docker engine"),
        "{docker:?}"
    );

    let unreachable = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(cli_support::SLIPWAY)
            .args(["ps", "--server", "http://127.0.0.1:1"])
            .output(),
    )
    .await
    .expect("ends in time")
    .expect("runs");
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("slipway serve"), "{stderr}");
    // The cause is named, not only that the call failed.
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );

    // HOST:PORT without a scheme, as Docker's -H takes it.
    let address = harness.url().trim_start_matches("http://").to_owned();
    let listed = harness.cli_ok(&["ps", "-a", "--server", &address]).await;
    assert!(listed.contains("STAGE"), "{listed}");

    let completion = harness.cli_ok(&["completion", "bash"]).await;
    assert!(completion.contains("slipway"), "{completion}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_lists_this_server_as_the_one_active_node() {
    let harness = Harness::start().await;
    let table = harness.cli_ok(&["nodes"]).await;
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("NODE ID"), "{table}");
    assert!(table.contains("active"), "{table}");
    assert!(table.contains(&harness.address.to_string()), "{table}");

    let json = harness.cli_ok(&["nodes", "-o", "json"]).await;
    let nodes: serde_json::Value = serde_json::from_str(&json).expect("json");
    let nodes = nodes.as_array().expect("an array");
    assert_eq!(nodes.len(), 1, "{json}");
    assert_eq!(nodes[0]["state"], "active");
    assert_eq!(nodes[0]["answering"], true);
    let id = nodes[0]["id"].as_str().expect("id").to_owned();

    let inspected = harness.cli_ok(&["node", "inspect", &id]).await;
    let node: serde_json::Value = serde_json::from_str(&inspected).expect("json");
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["runtimes"], serde_json::json!(["process", "docker"]));

    let missing = harness.cli(&["node", "inspect", "nowhere"]).await;
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    harness.stop().await;
}

/// The server's own log, written to a file (not a terminal), is plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_log_has_no_colour_codes_off_a_terminal() {
    let data = tempfile::TempDir::new().expect("data dir");
    let log_path = data.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut server = tokio::process::Command::new(cli_support::SLIPWAY)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--port-range",
            "3990-3999",
        ])
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--root")
        .arg(data.path())
        .stderr(log)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve");
    cli_support::eventually("the server says it serves", || {
        let log_path = log_path.clone();
        async move {
            std::fs::read_to_string(&log_path).is_ok_and(|text| text.contains("slipway is serving"))
        }
    })
    .await;
    let text = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    server.kill().await.expect("kill");
}

/// `logs` filters as Docker users expect: `-n`, `--stdout-only`,
/// `--stderr-only`, `--no-system`, `--until`; `events --since`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_events_filter_by_stream_and_time() {
    let harness = Harness::start().await;
    let id = run_detached(
        &harness,
        "streams",
        "echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2; while :; do sleep 1; done",
    )
    .await;
    wait_for_line(&harness, &id, "out 2").await;
    wait_for_line(&harness, &id, "err 2").await;

    let lines = |text: String| text.lines().map(str::to_owned).collect::<Vec<_>>();
    let all = lines(harness.cli_ok(&["logs", &id]).await);
    assert!(
        all.iter().any(|line| line.starts_with("[slipway]")),
        "{all:?}"
    );
    // Two pipes: their lines interleave as they were read, each in its order.
    let mut own = lines(harness.cli_ok(&["logs", "--no-system", &id]).await);
    own.sort();
    assert_eq!(own, ["err 1", "err 2", "out 1", "out 2"]);
    assert_eq!(
        lines(harness.cli_ok(&["logs", "--stdout-only", &id]).await),
        ["out 1", "out 2"]
    );
    assert_eq!(
        lines(
            harness
                .cli_ok(&["logs", "--stderr-only", "-n", "1", &id])
                .await
        ),
        ["err 2"]
    );
    // Everything so far is newer than an hour ago.
    assert!(
        harness
            .cli_ok(&["logs", "--until", "1h", &id])
            .await
            .is_empty()
    );
    assert_eq!(
        lines(
            harness
                .cli_ok(&[
                    "logs",
                    "--no-system",
                    "--since",
                    "1h",
                    "--until",
                    "2099-01-01T00:00:00Z",
                    &id
                ])
                .await
        )
        .len(),
        4
    );
    let both = harness
        .cli(&["logs", "--stdout-only", "--stderr-only", &id])
        .await;
    assert_eq!(both.code, 2, "{both:?}");

    let recent = harness.cli_ok(&["events", "--since", "1h"]).await;
    assert!(recent.contains("workload_created"), "{recent}");
    let future = harness
        .cli_ok(&["events", "--since", "2099-01-01T00:00:00Z"])
        .await;
    assert_eq!(future.lines().count(), 1, "only the header: {future}");
    harness.stop().await;
}

/// `run` takes Docker's --env-file, --secret(-file), --stop-signal,
/// --stop-timeout, --readiness and --rm, and a foreground run exits with the
/// workload's own exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_dockers_env_secret_stop_and_rm_flags_and_exits_with_the_code() {
    let harness = Harness::start().await;
    let files = tempfile::TempDir::new().expect("files");
    let env_file = files.path().join("app.env");
    std::fs::write(&env_file, "# settings\nGREETING=hello\n\nTARGET=world\n").expect("env file");
    let secret_file = files.path().join("token");
    std::fs::write(&secret_file, "file-secret-value\n").expect("secret file");
    let env_file = env_file.display().to_string();
    let secret = format!("TOKEN={}", secret_file.display());
    let output = harness
        .cli(&[
            "run",
            "--name",
            "once",
            "--rm",
            "--env-file",
            &env_file,
            "-e",
            "TARGET=everyone",
            "--secret",
            "PASSWORD=flag-secret-value",
            "--secret-file",
            &secret,
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "3",
            "--readiness",
            "none",
            "--",
            "sh",
            "-c",
            "echo \"$GREETING $TARGET\"; echo \"p=$PASSWORD t=$TOKEN\"; sleep 0.5; exit 7",
        ])
        .await;
    assert_eq!(output.code, 7, "{output:?}");
    assert!(output.stdout.contains("hello everyone"), "{output:?}");
    assert!(
        output.stdout.contains("p=******** t=********"),
        "{output:?}"
    );
    for secret in ["flag-secret-value", "file-secret-value"] {
        assert!(
            !output.stdout.contains(secret) && !output.stderr.contains(secret),
            "{output:?}"
        );
    }
    // --rm: nothing is left.
    let deployments = harness.cli_ok(&["deployments"]).await;
    assert!(!deployments.contains("once"), "{deployments}");

    // The spec got the stop settings (kept without --rm).
    harness
        .cli_ok(&[
            "run",
            "-d",
            "--name",
            "kept",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "3",
            "--readiness",
            "none",
            "--",
            "sleep",
            "60",
        ])
        .await;
    let inspected: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["inspect", "kept"]).await).expect("json");
    let spec = &inspected["deployment"]["spec"];
    assert_eq!(spec["stop_signal"], "SIGINT", "{spec}");
    assert_eq!(spec["stop_grace_period_seconds"], 3, "{spec}");
    assert_eq!(spec["readiness"], "none", "{spec}");

    let bad = harness
        .cli(&["run", "--readiness", "maybe", "--", "true"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("--readiness"), "{bad:?}");
    let both = harness.cli(&["run", "-d", "--rm", "--", "true"]).await;
    assert_eq!(both.code, 2, "{both:?}");
    harness.stop().await;
}

/// As Docker: `rm NAME` frees the name (the deployment goes with its last
/// workload, `-f` accepted), `start NAME` with nothing to start runs a new
/// workload, and `run` without `--name` leaves nothing behind once removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_frees_the_name_and_start_of_a_stopped_name_runs_a_new_workload() {
    let harness = Harness::start().await;
    let first = run_detached(&harness, "web", "while :; do sleep 1; done").await;
    harness.cli_ok(&["stop", "web"]).await;
    let started = harness.cli_ok(&["start", "web"]).await;
    assert!(started.contains("started"), "{started}");
    let listed: serde_json::Value =
        serde_json::from_str(&harness.cli_ok(&["ps", "-a", "-o", "json"]).await).expect("json");
    let workloads = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(workloads.len(), 2, "{listed}");
    assert!(
        workloads
            .iter()
            .any(|workload| workload["id"] != first.as_str() && workload["stage"] == "running"),
        "{listed}"
    );

    let removed = harness.cli_ok(&["rm", "-f", "web"]).await;
    assert!(
        removed.contains("web  removed (its last workload was)"),
        "{removed}"
    );
    let deployments = harness.cli_ok(&["deployments", "-o", "json"]).await;
    assert_eq!(deployments.trim(), "[]", "{deployments}");
    // The name is free again.
    run_detached(&harness, "web", "while :; do sleep 1; done").await;
    harness.cli_ok(&["rm", "web"]).await;

    let unnamed = harness
        .cli_ok(&["run", "-d", "--", "sleep", "60"])
        .await
        .trim()
        .to_owned();
    harness.cli_ok(&["rm", &unnamed]).await;
    let deployments = harness.cli_ok(&["deployments", "-o", "json"]).await;
    assert_eq!(deployments.trim(), "[]", "{deployments}");
    harness.stop().await;
}
