//! What a process workload gets from the server, and as whom it runs: only the
//! environment its spec gives it plus the allowed variables of the server's,
//! the user its spec (or the server) names, and its limits — applied, or
//! reported as not applied. And the same `user` reaching a container.

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder, Error,
    proto::{Stage, Stream, StreamLogsRequest},
};
use slipway_server::{domain::UserSpec, runtime::process::Cgroups};
use slipway_testkit::{Dirs, PATIENCE, ServerProcess, TestServer, port_range};

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// The workload's output lines (not Slipway's own), followed until one equals `marker`.
async fn output_until(client: &Client, workload_id: &str, marker: &str) -> Vec<String> {
    let request = StreamLogsRequest {
        workload_id: workload_id.to_owned(),
        follow: true,
        ..StreamLogsRequest::default()
    };
    let mut entries = Box::pin(client.stream_logs(request).await.expect("stream logs"));
    let mut lines = Vec::new();
    let reading = async {
        while let Some(entry) = entries.next().await {
            let entry = entry.expect("log entry");
            if entry.stream() == Stream::System {
                continue;
            }
            let message = entry.message;
            if message == marker {
                return;
            }
            lines.push(message);
        }
        panic!("the log ended before {marker:?}: {lines:?}");
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .unwrap_or_else(|_| panic!("{marker:?} not seen in time"));
    lines
}

/// Deploys `builder`, starts it (it must reach RUNNING) and returns its id and
/// its output up to the line `done`.
async fn run_until_done(client: &Client, builder: DeploymentBuilder) -> (String, Vec<String>) {
    let deployment = client
        .create_deployment(builder.build())
        .await
        .expect("create deployment");
    let workload = client
        .create_workload(&deployment.id)
        .await
        .expect("create workload");
    let started = tokio::time::timeout(
        PATIENCE,
        client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .finish(),
    )
    .await
    .expect("start ends in time")
    .expect("the workload starts");
    assert_eq!(started.stage(), Stage::Running);
    let lines = output_until(client, &workload.id, "done").await;
    (workload.id, lines)
}

/// Prints what the test looks at, then stays up (so the start succeeds).
const REPORT: &str = "echo \"user=$(id -un) uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME nofile=$(ulimit -n)\"; \
                      echo done; exec sleep 1000";

fn field_violations(error: Error) -> Vec<String> {
    match error {
        Error::InvalidArgument { violations, .. } => violations
            .into_iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_workload_gets_only_its_own_environment_and_the_allowed_variables() {
    let dirs = Dirs::new();
    let server = ServerProcess::start_with_env(
        SERVER_PROCESS,
        &dirs.data,
        &dirs.root,
        &format!("{}-{}", port_range().start(), port_range().end()),
        &["--process-env-allow", "PATH,SLIPWAY_TEST_ALLOWED"],
        &[
            ("SLIPWAY_TEST_SERVER_SECRET", "hunter2"),
            ("SLIPWAY_TEST_ALLOWED", "passed-on"),
        ],
    )
    .await;
    let (workload_id, lines) = run_until_done(
        &server.client,
        DeploymentBuilder::new("env-check")
            .command(["sh", "-c", "env | sort; echo done; exec sleep 1000"])
            .env("FROM_SPEC", "1")
            .secret_env("A_SECRET", "s3cret-value")
            .listen()
            .no_readiness(),
    )
    .await;
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(
        lines.contains(&"SLIPWAY_TEST_ALLOWED=passed-on".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"FROM_SPEC=1".to_owned()), "{lines:?}");
    // Masked in the log, but there.
    assert!(names.contains(&"A_SECRET"), "{lines:?}");
    assert!(names.contains(&"PORT"), "{lines:?}");
    assert!(names.contains(&"PATH"), "{lines:?}");
    assert!(
        lines.contains(&format!("SLIPWAY_WORKLOAD_ID={workload_id}")),
        "{lines:?}"
    );
    for kept in [
        "SLIPWAY_TEST_SERVER_SECRET",
        "RUST_LOG",
        "HOME",
        "CARGO_MANIFEST_DIR",
    ] {
        assert!(
            !names.contains(&kept),
            "{kept} of the server's environment reached the workload: {lines:?}"
        );
    }
    assert!(
        !lines.iter().any(|line| line.contains("hunter2")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_workload_runs_as_the_user_its_spec_names() {
    let server = TestServer::start().await;
    let builder = DeploymentBuilder::new("as-nobody")
        .command(["sh", "-c", REPORT])
        .user("nobody")
        .max_open_files(321);
    if !is_root() {
        let error = server
            .client
            .create_deployment(builder.build())
            .await
            .expect_err("a server that is not root cannot become nobody");
        let violations = field_violations(error);
        assert!(
            violations
                .iter()
                .any(|violation| violation.starts_with("spec.user: ")
                    && violation.contains("needs slipway to run as root")),
            "{violations:?}"
        );
        return;
    }
    let (_, lines) = run_until_done(&server.client, builder).await;
    assert_eq!(
        lines,
        ["user=nobody uid=65534 gid=65534 groups=65534 home=/nonexistent nofile=321"],
        "runs as nobody, with nobody's groups only (none of root's) and its home"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_process_user_applies_unless_the_spec_names_another() {
    if !is_root() {
        eprintln!("skipping: running workloads as another user needs the tests to run as root");
        return;
    }
    let server = TestServer::start_with(|config| {
        config.process_user = Some(UserSpec::parse("nobody").expect("user"));
    })
    .await;
    let (_, lines) = run_until_done(
        &server.client,
        DeploymentBuilder::new("default-user").command(["sh", "-c", REPORT]),
    )
    .await;
    assert!(
        lines[0].starts_with("user=nobody uid=65534 gid=65534 groups=65534 "),
        "{lines:?}"
    );
    let (_, lines) = run_until_done(
        &server.client,
        DeploymentBuilder::new("spec-user")
            .command(["sh", "-c", REPORT])
            .user("0:0"),
    )
    .await;
    assert!(lines[0].starts_with("user=root uid=0 gid=0 "), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_and_bad_limits_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let error = server
        .client
        .create_deployment(
            DeploymentBuilder::new("unknown-user")
                .command(["true"])
                .user("no-such-user-slipway")
                .build(),
        )
        .await
        .expect_err("an unknown user is refused");
    assert_eq!(
        field_violations(error),
        ["spec.user: no user named no-such-user-slipway on this server"]
    );
    let error = server
        .client
        .create_deployment(
            DeploymentBuilder::new("bad-limits")
                .command(["true"])
                .user("a b")
                .max_open_files(2_000_000)
                .resources(1024, 0)
                .build(),
        )
        .await
        .expect_err("bad limits are refused");
    let fields: Vec<String> = field_violations(error)
        .into_iter()
        .map(|violation| violation.split(':').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.user",
            "spec.max_open_files",
            "spec.resources.memory_bytes"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_is_applied_through_the_cgroup_or_reported() {
    let server = TestServer::start().await;
    let (workload_id, lines) = run_until_done(
        &server.client,
        DeploymentBuilder::new("limited")
            .command([
                "sh",
                "-c",
                "cat /proc/self/cgroup; echo done; exec sleep 1000",
            ])
            .resources(64 * 1024 * 1024, 500),
    )
    .await;
    let workload = server.client.get_workload(&workload_id).await.expect("get");
    let cgroups = Cgroups::detect();
    let controllers = cgroups
        .as_ref()
        .map(Cgroups::limit_controllers)
        .unwrap_or_default();
    let memory_warning = workload
        .warnings
        .iter()
        .find(|warning| warning.starts_with("memory limit (67108864 bytes) not applied: "));
    match &cgroups {
        Ok(cgroups) if controllers.iter().any(|name| name == "memory") => {
            assert!(
                lines
                    .iter()
                    .any(|line| line.ends_with(&format!("/slipway/workload-{workload_id}"))),
                "the workload runs in its cgroup: {lines:?}"
            );
            let memory_max = std::fs::read_to_string(
                cgroups
                    .base()
                    .join(format!("workload-{workload_id}"))
                    .join("memory.max"),
            )
            .expect("memory.max");
            assert_eq!(memory_max.trim(), "67108864");
            assert_eq!(memory_warning, None, "{:?}", workload.warnings);
        }
        _ => {
            eprintln!(
                "the memory controller is not available to the workloads' cgroups here \
                 (controllers: {controllers:?}, cgroups: {:?}): checking the report",
                cgroups.as_ref().map(|cgroups| cgroups.base().to_owned())
            );
            assert!(memory_warning.is_some(), "{:?}", workload.warnings);
        }
    }
    let log = server.log_messages(&workload_id).await;
    for warning in &workload.warnings {
        assert!(log.contains(warning), "the log says it too: {log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_limits_are_reported_as_not_applied() {
    let server = TestServer::start_with(|config| config.process_cgroups = "off".to_owned()).await;
    let (workload_id, _) = run_until_done(
        &server.client,
        DeploymentBuilder::new("unlimited")
            .command(["sh", "-c", "echo done; exec sleep 1000"])
            .resources(64 * 1024 * 1024, 500),
    )
    .await;
    let workload = server.client.get_workload(&workload_id).await.expect("get");
    let because = "not applied: process workloads do not run in cgroups here (turned off (--process-cgroups off))";
    assert_eq!(
        workload.warnings,
        [
            format!("memory limit (67108864 bytes) {because}"),
            format!("cpu limit (500 millicpus) {because}"),
        ]
    );
    // A restart is a new run: the report is made again, not kept from the last.
    let stopped = server.stop_workload(&workload_id).await;
    assert_eq!(stopped.warnings.len(), 2, "kept while the run is shown");
    let restarted = tokio::time::timeout(
        PATIENCE,
        server
            .client
            .restart_workload(&workload_id)
            .await
            .expect("restart")
            .finish(),
    )
    .await
    .expect("restart in time")
    .expect("restarted");
    assert_eq!(restarted.generation, 2);
    assert_eq!(restarted.warnings.len(), 2, "{:?}", restarted.warnings);
}

mod needs_docker {
    use slipway_sdk::{DeploymentBuilder, Error};
    use slipway_testkit::{
        TestServer,
        docker::{Cleanup, inspect, test_image, unique_name as unique},
        require_docker,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_user_and_the_open_files_limit_reach_the_container() {
        require_docker!();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("as-user"))
                    .image(test_image())
                    .command([
                        "sh",
                        "-c",
                        "echo \"uid=$(id -u) nofile=$(ulimit -n)\"; exec sleep 1000",
                    ])
                    .user("65534:65534")
                    .max_open_files(512)
                    .stop_grace_period_seconds(1),
            )
            .await;
        cleanup.track(&deployment.id);
        let running = server.start_workload(&workload.id).await;
        let container = running.runtime_id.clone();
        assert_eq!(inspect(&container, "{{.Config.User}}"), "65534:65534");
        assert_eq!(
            inspect(
                &container,
                "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}"
            ),
            "nofile=512:512"
        );
        let lines = server
            .follow_until(&workload.id, |line| line.starts_with("uid="))
            .await;
        assert_eq!(
            lines.last().map(String::as_str),
            Some("uid=65534 nofile=512")
        );

        // A user the image does not know fails the start, saying so.
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique("unknown-user"))
                    .image(test_image())
                    .command(["sleep", "1000"])
                    .user("no-such-user-slipway"),
            )
            .await;
        cleanup.track(&deployment.id);
        let (_, error) = server.start_expecting_failure(&workload.id).await;
        let Error::OperationFailed(failure) = error else {
            panic!("expected a failed start");
        };
        assert!(
            failure.reason.contains("no-such-user-slipway"),
            "the reason names the user: {failure:?}"
        );
    }
}
