//! Health history through the real server: every liveness check is kept with
//! its time, result, response time and reason; uptime over a window; and the
//! health summary of a deployment from its workloads.

use slipway_sdk::{
    DeploymentBuilder,
    proto::{
        DeploymentHealthState, ExecProbe, GetHealthHistoryRequest, Health, HealthCheck,
        HealthHistory, RestartPolicy, Stage, health_check::Probe, restart_policy::Mode,
    },
};
use slipway_testkit::{TestServer, until};

/// An exec check that passes and fails by turns: it passes when `flag` is
/// absent (and creates it), fails when it is there (and removes it).
fn alternating_check(flag: &std::path::Path) -> HealthCheck {
    let flag = flag.display();
    HealthCheck {
        probe: Some(Probe::Exec(ExecProbe {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "if [ -e {flag} ]; then rm {flag}; echo down >&2; exit 1; fi; touch {flag}"
                ),
            ],
        })),
        interval_ms: Some(100),
        timeout_ms: Some(5000),
        // Never two failures in a row: the workload keeps running.
        failure_threshold: Some(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_check_failing_half_the_time_shows_in_the_history_and_uptime() {
    let server = TestServer::start().await;
    let scratch = tempfile::tempdir().expect("scratch");
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("flaky")
                .service_path(".")
                .command(["sleep", "600"])
                .liveness(alternating_check(&scratch.path().join("passed-last")))
                .stop_grace_period_seconds(1),
        )
        .await;
    let running = server.start_workload(&workload.id).await;
    assert_eq!(running.stage(), Stage::Running, "{}", running.error);

    let history: HealthHistory = until("at least 12 checks in the history", || async {
        let history = server
            .client
            .health_history_with(GetHealthHistoryRequest {
                workload_id: workload.id.clone(),
                window_seconds: 600,
                limit: 1000,
            })
            .await
            .expect("history");
        (history.total_checks >= 12).then_some(history)
    })
    .await;

    // Every check of the window is listed (the limit is above their number),
    // newest first, passing and failing by turns.
    assert_eq!(history.checks.len() as u64, history.total_checks);
    for pair in history.checks.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        let (newer_at, older_at) = (
            newer.checked_at.expect("time"),
            older.checked_at.expect("time"),
        );
        assert!(
            (newer_at.seconds, newer_at.nanos) > (older_at.seconds, older_at.nanos),
            "newest first: {history:?}"
        );
        assert_ne!(newer.passed, older.passed, "by turns: {history:?}");
    }
    for check in &history.checks {
        assert_eq!(check.generation, 1);
        assert!(check.response_time_us > 0, "{check:?}");
        if check.passed {
            assert!(check.reason.is_empty(), "{check:?}");
        } else {
            assert!(check.reason.contains("failed"), "{check:?}");
        }
    }
    // The oldest check passed (the flag was absent).
    assert!(history.checks.last().expect("checks").passed);
    let passed = history.checks.iter().filter(|check| check.passed).count() as u64;
    assert_eq!(history.passed_checks, passed);
    let uptime = history.uptime.expect("an uptime with checks");
    assert_eq!(uptime, passed as f64 / history.total_checks as f64);
    assert!((0.45..=0.55).contains(&uptime), "uptime {uptime}");
    assert!(history.mean_response_time_us > 0);

    // The workload runs on: its failures never came twice in a row.
    let now = server
        .client
        .get_workload(&workload.id)
        .await
        .expect("workload");
    assert_eq!(now.stage(), Stage::Running);
    assert_eq!(now.health(), Health::Healthy);
    assert_eq!(history.health(), Health::Healthy);
    let summary = server
        .client
        .get_deployment(&deployment.id)
        .await
        .expect("deployment")
        .health
        .expect("a health summary");
    assert_eq!(
        summary.state(),
        DeploymentHealthState::Healthy,
        "{summary:?}"
    );
    assert_eq!((summary.up, summary.wanted), (1, 1));

    // The same through REST, and the deployment's summary with it.
    let rest = server.rest();
    let (status, body) = rest
        .get(&format!(
            "/api/workloads/{}/health?windowSeconds=600&limit=4",
            workload.id
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"].as_array().map(Vec::len), Some(4), "{body}");
    assert!(
        body["totalChecks"].as_u64() >= Some(history.total_checks),
        "{body}"
    );
    assert!(body["uptime"].as_f64().is_some(), "{body}");
    let (status, body) = rest
        .get(&format!("/api/deployments/{}", deployment.id))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"]["state"], "healthy", "{body}");

    // A short window holds fewer checks; a bad window names its field.
    let recent = server
        .client
        .health_history_with(GetHealthHistoryRequest {
            workload_id: workload.id.clone(),
            window_seconds: 1,
            limit: 3,
        })
        .await
        .expect("recent history");
    assert!(recent.checks.len() <= 3);
    assert!(recent.total_checks < history.total_checks + 20);
    let refused = server
        .client
        .health_history_with(GetHealthHistoryRequest {
            workload_id: workload.id.clone(),
            window_seconds: 31 * 24 * 3600,
            limit: 0,
        })
        .await
        .expect_err("a window above 30 days");
    assert!(refused.to_string().contains("window_seconds"), "{refused}");

    server.stop_workload(&workload.id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_healthy_degraded_or_unavailable_from_its_workloads() {
    let server = TestServer::start().await;
    let scratch = tempfile::tempdir().expect("scratch");
    let allowed = scratch.path().join("may-run");
    std::fs::write(&allowed, "").expect("flag");
    // Runs while the flag is there; else exits 3, and its restart policy
    // waits a long time before it runs it again.
    let (deployment, first) = server
        .deploy(
            DeploymentBuilder::new("mixed")
                .service_path(".")
                .command([
                    "sh".to_owned(),
                    "-c".to_owned(),
                    format!("test -e {} || exit 3; exec sleep 600", allowed.display()),
                ])
                .restart_policy(RestartPolicy {
                    mode: Mode::OnFailure as i32,
                    initial_backoff_ms: Some(600_000),
                    max_backoff_ms: Some(600_000),
                    jitter_percent: Some(0),
                    ..RestartPolicy::default()
                })
                .stop_grace_period_seconds(1),
        )
        .await;
    let summary = || async {
        server
            .client
            .get_deployment(&deployment.id)
            .await
            .expect("deployment")
            .health
            .expect("a health summary")
    };
    // Created, not started: wanted and not up yet.
    let pending = summary().await;
    assert_eq!(pending.state(), DeploymentHealthState::Unavailable);
    assert_eq!((pending.up, pending.wanted), (0, 1));

    server.start_workload(&first.id).await;
    let healthy = summary().await;
    assert_eq!(
        healthy.state(),
        DeploymentHealthState::Healthy,
        "{healthy:?}"
    );
    assert_eq!((healthy.up, healthy.wanted), (1, 1));

    std::fs::remove_file(&allowed).expect("remove the flag");
    let second = server
        .client
        .create_workload(&deployment.id)
        .await
        .expect("second workload");
    server.start_expecting_failure(&second.id).await;
    // Its restart policy then schedules the next run.
    until("the failed workload waits to restart", || async {
        let workload = server.client.get_workload(&second.id).await.expect("get");
        workload.next_restart_at.map(|_| ())
    })
    .await;
    let degraded = summary().await;
    assert_eq!(
        degraded.state(),
        DeploymentHealthState::Degraded,
        "{degraded:?}"
    );
    assert_eq!((degraded.up, degraded.wanted), (1, 2));
    assert!(
        degraded.reason.contains("waits to restart"),
        "{}",
        degraded.reason
    );
    // ListDeployments carries the same summary.
    let listed = server
        .client
        .list_deployments(Default::default())
        .await
        .expect("list")
        .deployments
        .into_iter()
        .find(|listed| listed.id == deployment.id)
        .expect("listed");
    assert_eq!(listed.health, Some(degraded));

    server.stop_workload(&first.id).await;
    let unavailable = summary().await;
    assert_eq!(unavailable.state(), DeploymentHealthState::Unavailable);
    assert_eq!((unavailable.up, unavailable.wanted), (0, 1));

    server.stop_workload(&second.id).await;
    let stopped = summary().await;
    assert_eq!(stopped.state(), DeploymentHealthState::Unavailable);
    assert_eq!(stopped.wanted, 0);
    assert!(
        stopped.reason.contains("no workload should run"),
        "{stopped:?}"
    );
    server.stop().await;
}
