//! Input at the edges gets a typed error, never a wrapped number or a late
//! failure: log positions and revisions the store cannot hold, a watch from a
//! revision that does not exist yet, project names and argv/env sizes that the
//! database or `execve` would refuse. And the database is private to its user.

use std::os::unix::fs::PermissionsExt;

use futures::StreamExt;
use slipway_sdk::{
    DeploymentBuilder, Error,
    proto::{ListDeploymentsRequest, StreamLogsRequest, WatchEventsRequest},
};
use slipway_testkit::{PATIENCE, TestServer};

/// The first number the store cannot hold (2^63).
const TOO_BIG: u64 = 1 << 63;

fn violated_fields(error: Error) -> Vec<String> {
    match error {
        Error::InvalidArgument { violations, .. } => violations
            .into_iter()
            .map(|violation| violation.field)
            .collect(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

fn violation_text(error: &Error) -> String {
    match error {
        Error::InvalidArgument { violations, .. } => violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_past_what_the_store_holds_get_typed_errors() {
    let server = TestServer::start().await;
    server.service_dir("svc");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("counter")
                .service_path("svc")
                .command(["sh", "-c", "echo one; echo two; exec sleep 60"]),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .follow_until(&workload.id, |line| line == "two")
        .await;

    // GetLogs: the largest position is an empty page, one more is refused (it
    // used to wrap to a negative seq and replay the log from the first line).
    let page = server
        .client
        .get_logs(&workload.id, TOO_BIG - 1, 0)
        .await
        .expect("the largest after_seq");
    assert!(page.entries.is_empty(), "{page:?}");
    for after_seq in [TOO_BIG, u64::MAX] {
        let error = server
            .client
            .get_logs(&workload.id, after_seq, 0)
            .await
            .expect_err("after_seq past the store");
        assert_eq!(violated_fields(error), ["after_seq"]);
    }

    // StreamLogs: the same for from_seq.
    let error = server
        .client
        .stream_logs(StreamLogsRequest {
            workload_id: workload.id.clone(),
            from_seq: TOO_BIG,
            ..StreamLogsRequest::default()
        })
        .await
        .err()
        .expect("from_seq past the store");
    assert_eq!(violated_fields(error), ["from_seq"]);

    // WatchEvents: a revision ahead of the current one (up to 2^64-1, whose
    // successor does not exist) is OUT_OF_RANGE with the current revision.
    let current = server.client.get_workload(&workload.id).await.expect("get");
    let listed = server
        .client
        .list_workloads(Default::default())
        .await
        .expect("list")
        .revision;
    assert!(listed >= current.revision);
    for since_revision in [listed + 1, TOO_BIG, u64::MAX] {
        let error = server
            .client
            .watch_events(WatchEventsRequest {
                since_revision,
                ..WatchEventsRequest::default()
            })
            .await
            .err()
            .expect("a revision ahead");
        assert_eq!(error.code(), Some(tonic::Code::OutOfRange), "{error:?}");
        match error {
            Error::RevisionAhead {
                requested_revision,
                current_revision,
                ..
            } => {
                assert_eq!(requested_revision, since_revision);
                assert!(current_revision >= listed && current_revision < since_revision);
            }
            other => panic!("expected RevisionAhead, got {other:?}"),
        }
    }

    // A watch from the current revision still works and sees the next event.
    let mut events = Box::pin(
        server
            .client
            .watch_events(WatchEventsRequest {
                since_revision: listed,
                ..WatchEventsRequest::default()
            })
            .await
            .expect("a watch from the current revision"),
    );
    // A grace period longer than a spec may have is refused too.
    let error = server
        .client
        .stop_workload(&workload.id, Some(u32::MAX))
        .await
        .err()
        .expect("a grace period of 136 years");
    assert_eq!(violated_fields(error), ["grace_period_seconds"]);
    server.stop_workload(&workload.id).await;
    let next = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event in time")
        .expect("the watch goes on")
        .expect("an event");
    assert_eq!(next.revision, listed + 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_argv_and_env_and_bad_projects_are_refused_at_create() {
    let server = TestServer::start().await;
    server.service_dir("svc");
    let valid = || {
        DeploymentBuilder::new("svc")
            .service_path("svc")
            .command(["sleep", "1"])
    };
    // 3.9 MB of arguments, each one small enough: the whole is past ARG_MAX.
    let mut huge_argv = vec!["echo".to_owned()];
    huge_argv.extend(std::iter::repeat_n("x".repeat(130_000), 30));
    let cases = [
        ("3.9 MB of argv", valid().command(huge_argv), "spec.command"),
        (
            "one argument of 200 KB",
            valid().command(["echo".to_owned(), "x".repeat(200 * 1024)]),
            "spec.command[1]",
        ),
        (
            "an env value of 200 KB",
            valid().env("BIG", "x".repeat(200 * 1024)),
            "spec.env[BIG]",
        ),
        (
            "a secret of 200 KB",
            valid().secret_env("TOKEN", "x".repeat(200 * 1024)),
            "spec.secret_env[TOKEN]",
        ),
        (
            "a build step of 200 KB",
            valid().build_step(["echo".to_owned(), "x".repeat(200 * 1024)]),
            "spec.build[0].command[1]",
        ),
        ("a project with a NUL", valid().project("a\0b"), "project"),
        (
            "a project with a newline",
            valid().project("a\nb"),
            "project",
        ),
        (
            "a project of 100 KB",
            valid().project("a".repeat(100 * 1024)),
            "project",
        ),
        ("a project in capitals", valid().project("Shop"), "project"),
    ];
    for (what, builder, field) in cases {
        let error = server
            .client
            .create_deployment(builder.build())
            .await
            .expect_err(what);
        assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{what}");
        let text = violation_text(&error);
        assert_eq!(violated_fields(error), [field], "{what}");
        // The limit is in the message.
        assert!(
            text.contains("bytes") || text.contains("1-63"),
            "{what}: {text}"
        );
    }
    // Nothing was created, and a project filter is checked the same way.
    assert!(
        server
            .client
            .all_deployments()
            .await
            .expect("list")
            .is_empty()
    );
    let error = server
        .client
        .list_deployments(ListDeploymentsRequest {
            project: "a\0b".to_owned(),
            ..ListDeploymentsRequest::default()
        })
        .await
        .expect_err("a bad project filter");
    assert_eq!(violated_fields(error), ["project"]);

    // Just inside the limits is accepted, and starts.
    let (_, workload) = server
        .deploy(
            valid()
                .project("shop-2.eu_west")
                .command([
                    "sh".to_owned(),
                    "-c".to_owned(),
                    "echo ${#BIG}; exec sleep 60".to_owned(),
                ])
                .env("BIG", "x".repeat(128 * 1024 - "BIG=".len() - 1)),
        )
        .await;
    server.start_workload(&workload.id).await;
    server
        .follow_until(&workload.id, |line| line == "131067")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_database_files_are_private() {
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    // SQLite whatever the test backend: its files are the point.
    let server = TestServer::start_with(|config| config.database_url = None).await;
    server.service_dir("svc");
    server
        .deploy(
            DeploymentBuilder::new("private")
                .service_path("svc")
                .command(["sleep", "1"])
                .secret_env("TOKEN", "hunter2"),
        )
        .await;
    let data = server.data_dir().to_path_buf();
    assert_eq!(mode(&data), 0o700);
    for file in ["slipway.db", "slipway.db-wal", "slipway.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }

    // Files and a directory left open by an older version are tightened at start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let database = data.join("slipway.db");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let server = server.restart().await;
    server.client.all_deployments().await.expect("list");
    assert_eq!(mode(&data), 0o700);
    for file in ["slipway.db", "slipway.db-wal", "slipway.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    server.stop().await;
}
