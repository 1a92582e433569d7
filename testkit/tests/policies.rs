//! Restart policies, liveness checks, secrets and the shutdown choice.

use std::time::Duration;

use futures::StreamExt;
use slipway_sdk::{
    DeploymentBuilder,
    proto::{
        Action, EventType, Health, HealthCheck, HttpProbe, RestartPolicy, Stage,
        WatchEventsRequest, Workload, health_check::Probe, restart_policy::Mode,
    },
};
use slipway_testkit::{PATIENCE, TestServer, eventually};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

/// Workload snapshots from the watch, from revision `since`, until `done` holds
/// for one (which is included).
async fn snapshots_until(
    server: &TestServer,
    workload_id: &str,
    since: u64,
    done: impl Fn(&Workload) -> bool,
) -> Vec<(slipway_sdk::prost_types::Timestamp, Workload)> {
    let mut events = Box::pin(
        server
            .client
            .watch_events(WatchEventsRequest {
                since_revision: since,
                workload_id: workload_id.to_owned(),
                ..WatchEventsRequest::default()
            })
            .await
            .expect("watch"),
    );
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            let event = event.expect("event");
            if event.r#type() == EventType::Bookmark {
                continue;
            }
            let Some(workload) = event.workload else {
                continue;
            };
            let finished = done(&workload);
            seen.push((event.timestamp.expect("time"), workload));
            if finished {
                return;
            }
        }
    })
    .await
    .expect("the awaited state in time");
    seen
}

fn millis_between(
    from: &slipway_sdk::prost_types::Timestamp,
    to: &slipway_sdk::prost_types::Timestamp,
) -> i64 {
    (to.seconds - from.seconds) * 1000 + i64::from(to.nanos - from.nanos) / 1_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_with_growing_delays_then_gives_up_after_the_maximum() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("crashy")
                .command(["sh", "-c", "echo trying; sleep 0.2; exit 1"])
                // Started as soon as spawned: the crash comes while it runs.
                .min_ready_ms(0)
                .restart_policy(RestartPolicy {
                    mode: Mode::OnFailure.into(),
                    max_restarts: 3,
                    window_seconds: Some(60),
                    initial_backoff_ms: Some(200),
                    backoff_factor: Some(2.0),
                    max_backoff_ms: Some(10_000),
                    jitter_percent: Some(0),
                    stable_after_seconds: Some(60),
                }),
        )
        .await;
    let created = workload.revision;
    server.start_workload(&workload.id).await;
    let seen = snapshots_until(&server, &workload.id, created, |workload| {
        workload.error.contains("gave up")
    })
    .await;
    // Each wait is announced with its time; the delays grow.
    let mut delays = Vec::new();
    let mut counts = Vec::new();
    for (at, snapshot) in &seen {
        if let Some(next) = &snapshot.next_restart_at {
            assert_eq!(snapshot.stage(), Stage::Failed, "it waits in FAILED");
            counts.push(snapshot.restart_count);
            delays.push(millis_between(at, next));
        }
    }
    assert_eq!(counts, [1, 2, 3]);
    assert!(
        delays.windows(2).all(|pair| pair[1] > pair[0]) && (150..=250).contains(&delays[0]),
        "growing delays from 200 ms: {delays:?}"
    );
    let (_, last) = seen.last().expect("snapshots");
    assert_eq!(last.stage(), Stage::Failed);
    assert_eq!(last.generation, 4, "the first run and three restarts");
    assert!(last.next_restart_at.is_none());
    assert_eq!(last.exit_code, Some(1));
    let messages = server.log_messages(&workload.id).await;
    assert_eq!(messages.iter().filter(|line| *line == "trying").count(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_restarts_clean_exits_and_a_stable_run_resets_the_count() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("batch")
                .command(["sh", "-c", "sleep 0.5; echo done"])
                .restart_policy(RestartPolicy {
                    mode: Mode::Always.into(),
                    max_restarts: 2,
                    initial_backoff_ms: Some(100),
                    jitter_percent: Some(0),
                    // Every run (0.5 s) counts as stable: the streak never grows.
                    stable_after_seconds: Some(0),
                    ..RestartPolicy::default()
                }),
        )
        .await;
    let created = workload.revision;
    server.start_workload(&workload.id).await;
    let seen = snapshots_until(&server, &workload.id, created, |workload| {
        workload.generation >= 4
    })
    .await;
    let counts: Vec<u32> = seen
        .iter()
        .filter(|(_, snapshot)| snapshot.next_restart_at.is_some())
        .map(|(_, snapshot)| snapshot.restart_count)
        .collect();
    assert!(
        counts.len() >= 3 && counts.iter().all(|count| *count == 1),
        "{counts:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, snapshot)| !snapshot.error.contains("gave up")),
        "more restarts than max_restarts, since each run was stable"
    );
    // A stop during a run or during the wait ends it for good.
    let stopped = server.stop_workload(&workload.id).await;
    assert!(stopped.stage() == Stage::Stopped || stopped.next_restart_at.is_none());
    let settled = server.client.get_workload(&workload.id).await.expect("get");
    assert!(settled.next_restart_at.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_liveness_check_makes_the_workload_unhealthy_and_triggers_the_policy() {
    let server = TestServer::start().await;
    let dir = server.service_dir("sickly");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("sickly")
                .service_path("sickly")
                .command([SAMPLE, "http"])
                .listen()
                .liveness(HealthCheck {
                    probe: Some(Probe::Http(HttpProbe {
                        path: "/health".into(),
                    })),
                    interval_ms: Some(200),
                    timeout_ms: Some(500),
                    failure_threshold: Some(3),
                })
                .restart_policy(RestartPolicy {
                    mode: Mode::OnFailure.into(),
                    initial_backoff_ms: Some(100),
                    ..RestartPolicy::default()
                })
                .stop_grace_period_seconds(2),
        )
        .await;
    let running = server.start_workload(&workload.id).await;
    let healthy = snapshots_until(&server, &workload.id, running.revision, |workload| {
        workload.health() == Health::Healthy
    })
    .await;
    let since = healthy.last().expect("healthy").1.revision;

    std::fs::write(dir.join("unhealthy"), b"").expect("make it sick");
    let began = std::time::Instant::now();
    let seen = snapshots_until(&server, &workload.id, since, |workload| {
        workload.generation == 2
    })
    .await;
    let (_, unhealthy) = seen
        .iter()
        .find(|(_, snapshot)| snapshot.health() == Health::Unhealthy)
        .expect("an unhealthy snapshot");
    assert_eq!(unhealthy.generation, 1);
    let failed = seen
        .iter()
        .map(|(_, snapshot)| snapshot)
        .find(|snapshot| snapshot.stage() == Stage::Failed)
        .expect("the run failed");
    assert!(
        failed.error.contains("liveness check failed"),
        "{}",
        failed.error
    );
    // Threshold × interval, plus one interval and the probe timeouts of slack.
    assert!(began.elapsed() < Duration::from_millis(3 * 200 + 200 + 3 * 500 + 2000 + 1000));

    std::fs::remove_file(dir.join("unhealthy")).expect("make it well");
    let recovered = server
        .wait_for(&workload.id, Stage::Running)
        .await
        .expect("running again");
    assert_eq!(recovered.generation, 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_the_workload_but_no_response_log_event_or_error() {
    const SENTINEL: &str = "sentinel-7f3c9a1e-secret";
    let server = TestServer::start().await;
    let dir = server.service_dir("vault");
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("vault")
                .service_path("vault")
                .command([
                    "sh",
                    "-c",
                    "printf %s \"$API_TOKEN\" > seen; echo \"token is $API_TOKEN\"; sleep 300",
                ])
                .secret_env("API_TOKEN", SENTINEL)
                .stop_grace_period_seconds(1),
        )
        .await;
    let progress = server
        .client
        .start_workload(&workload.id)
        .await
        .expect("start")
        .collect_all()
        .await
        .expect("progress");
    eventually("the workload wrote what it saw", || {
        dir.join("seen").exists()
    })
    .await;
    server
        .follow_until(&workload.id, |line| line.starts_with("token is"))
        .await;
    assert_eq!(
        std::fs::read_to_string(dir.join("seen")).expect("seen"),
        SENTINEL,
        "the workload sees it"
    );

    let mut everything = format!("{deployment:?}{progress:?}");
    everything += &format!(
        "{:?}",
        server
            .client
            .get_deployment(&deployment.id)
            .await
            .expect("get")
    );
    everything += &format!("{:?}", server.client.all_deployments().await.expect("list"));
    everything += &format!(
        "{:?}",
        server.client.get_workload(&workload.id).await.expect("get")
    );
    let logs = server.client.all_logs(&workload.id).await.expect("logs");
    assert!(
        logs.iter()
            .any(|entry| entry.message == "token is ********"),
        "masked in the log"
    );
    everything += &format!("{logs:?}");
    let mut events = Box::pin(
        server
            .client
            .watch_events(WatchEventsRequest {
                bookmark_interval_seconds: Some(1),
                ..WatchEventsRequest::default()
            })
            .await
            .expect("watch"),
    );
    while let Some(event) = events.next().await {
        let event = event.expect("event");
        if event.r#type() == EventType::Bookmark {
            break;
        }
        everything += &format!("{event:?}");
    }
    let refused = server
        .client
        .create_deployment(
            DeploymentBuilder::new("vault")
                .command(Vec::<String>::new())
                .secret_env("API_TOKEN", SENTINEL)
                .env("API_TOKEN", SENTINEL)
                .build(),
        )
        .await
        .expect_err("invalid");
    everything += &format!("{refused:?}{refused}");
    assert!(!everything.contains(SENTINEL), "the secret leaked");
    assert!(everything.contains("********"), "shown masked");
    server.stop_workload(&workload.id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_liveness_check_runs_in_the_service_directory() {
    let server = TestServer::start().await;
    let dir = server.service_dir("probed");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("probed")
                .service_path("probed")
                .command(["sleep", "300"])
                .liveness(HealthCheck {
                    probe: Some(Probe::Exec(slipway_sdk::proto::ExecProbe {
                        command: vec!["sh".into(), "-c".into(), "test ! -f unhealthy".into()],
                    })),
                    interval_ms: Some(150),
                    timeout_ms: Some(2000),
                    failure_threshold: Some(2),
                })
                .stop_grace_period_seconds(1),
        )
        .await;
    let running = server.start_workload(&workload.id).await;
    snapshots_until(&server, &workload.id, running.revision, |workload| {
        workload.health() == Health::Healthy
    })
    .await;
    std::fs::write(dir.join("unhealthy"), b"").expect("make it sick");
    let failed = server
        .wait_for(&workload.id, Stage::Failed)
        .await
        .expect("failed");
    assert!(
        failed.error.contains("liveness check failed"),
        "{}",
        failed.error
    );
    assert_eq!(failed.failed_stage(), Stage::Running);
    server.stop().await;
}

/// A crash loop waiting for its next restart offers Stop in `allowed_actions`,
/// and the stop ends the loop for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_in_back_off_offers_stop_and_a_stop_ends_the_crash_loop() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("looping")
                .command(["sh", "-c", "echo crashing; exit 1"])
                .restart_policy(RestartPolicy {
                    mode: Mode::Always.into(),
                    initial_backoff_ms: Some(600_000),
                    max_backoff_ms: Some(600_000),
                    jitter_percent: Some(0),
                    ..RestartPolicy::default()
                }),
        )
        .await;
    let (_, _) = server.start_expecting_failure(&workload.id).await;
    let seen = snapshots_until(&server, &workload.id, workload.revision, |workload| {
        workload.next_restart_at.is_some()
    })
    .await;
    let waiting = &seen.last().expect("a waiting snapshot").1;
    assert_eq!(waiting.stage(), Stage::Failed);
    let allowed: Vec<Action> = waiting.allowed_actions().collect();
    assert!(allowed.contains(&Action::Stop), "{allowed:?}");
    let stopped = server.stop_workload(&workload.id).await;
    assert_eq!(stopped.stage(), Stage::Failed);
    assert!(stopped.next_restart_at.is_none());
    assert!(
        !stopped
            .allowed_actions()
            .any(|action| action == Action::Stop)
    );
    let after = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(after.generation, 1, "the pending restart was called off");
    server.stop().await;
}
