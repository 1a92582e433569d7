//! Fleet operations on one node: rolling restarts keep at most
//! `max_unavailable` workloads down, pause or abort on a workload that does
//! not come back ready and say which; draining the only node needs force and
//! its name; every fleet call is in the audit trail. (Draining onto other
//! nodes, and taking an operation over from a killed node: fleet_nodes.rs.)

use std::collections::HashSet;

use slipway_sdk::{
    Client, DeploymentBuilder,
    proto::{
        DrainNodeRequest, FailurePolicy, FleetOperation, ItemState, ListAuditRequest,
        ListWorkloadsRequest, NodeScheduling, OperationState, RollingRestartRequest, Stage,
    },
};
use slipway_testkit::{PATIENCE, Probe, TestServer};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

/// An HTTP service whose readiness is `GET /health`, in its own directory.
fn web(server: &TestServer, name: &str) -> DeploymentBuilder {
    server.service_dir(name);
    DeploymentBuilder::new(name)
        .service_path(name)
        .command([SAMPLE, "http"])
        .listen()
        .http_readiness("/health")
        .stop_grace_period_seconds(2)
}

async fn until_over(client: &Client, id: &str) -> FleetOperation {
    client
        .wait_for_operation(id, PATIENCE * 4)
        .await
        .expect("the operation")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_keeps_at_most_max_unavailable_down_and_restarts_each_once() {
    let server = TestServer::start().await;
    let client = &server.client;
    let workloads = server
        .start_many(web(&server, "web").label("tier", "web"), 10)
        .await;
    let ids: Vec<String> = workloads
        .iter()
        .map(|workload| workload.id.clone())
        .collect();
    let probe = Probe::start(client.clone(), ids.clone());
    let operation = client
        .rolling_restart(RollingRestartRequest {
            selector: [("tier".to_owned(), "web".to_owned())].into(),
            max_unavailable: "2".to_owned(),
            min_healthy_seconds: Some(1),
            ..RollingRestartRequest::default()
        })
        .await
        .expect("rolling restart");
    assert_eq!(operation.total_items, 10);
    assert_eq!(operation.parallel, 2);
    // Followed to its end: never more than two items under way at once.
    let mut stream = Box::pin(client.watch_operation(&operation.id).await.expect("watch"));
    let mut last = operation.clone();
    while let Some(next) = futures::StreamExt::next(&mut stream).await {
        let next = next.expect("operation");
        let active = next
            .items
            .iter()
            .filter(|item| item.state() == ItemState::Active)
            .count();
        assert!(active <= 2, "{active} under way at once: {next:#?}");
        last = next;
    }
    let most_down = probe.most_down().await;
    assert_eq!(last.state(), OperationState::Succeeded, "{last:#?}");
    assert!(most_down <= 2, "{most_down} workloads were down at once");
    assert_eq!(last.finished_items, 10);
    // Each restarted exactly once, and running again.
    for id in &ids {
        let workload = client.get_workload(id).await.expect("workload");
        assert_eq!(workload.stage(), Stage::Running, "{workload:#?}");
        assert_eq!(workload.generation, 2, "restarted once: {workload:#?}");
    }
    let listed = client
        .list_operations(Default::default())
        .await
        .expect("list");
    assert_eq!(
        listed.first().map(|op| op.id.as_str()),
        Some(last.id.as_str())
    );
    // The restarts' events name who asked, through the operation.
    let revision = client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list")
        .revision;
    let by = format!("admin (operation {})", last.id);
    let restarted: Vec<_> = server
        .events_through(revision)
        .await
        .into_iter()
        .filter(|event| {
            event
                .workload
                .as_ref()
                .is_some_and(|w| w.generation == 2 && w.stage() == Stage::Running)
        })
        .collect();
    assert_eq!(restarted.len(), 10, "{restarted:#?}");
    assert!(
        restarted.iter().all(|event| event.actor == by),
        "{restarted:#?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_that_does_not_come_back_ready_pauses_or_aborts_the_rollout_and_is_named() {
    let server = TestServer::start().await;
    let client = &server.client;
    let fine = server
        .start_many(web(&server, "fine").label("tier", "mixed"), 2)
        .await;
    let sick = server
        .start_many(
            web(&server, "sick")
                .label("tier", "mixed")
                .startup_timeout_seconds(2),
            1,
        )
        .await;
    let sick_id = sick[0].id.clone();
    // From now on its readiness check fails.
    std::fs::write(server.service_dir("sick").join("unhealthy"), b"").expect("make it sick");

    let operation = client
        .rolling_restart(RollingRestartRequest {
            selector: [("tier".to_owned(), "mixed".to_owned())].into(),
            min_healthy_seconds: Some(0),
            healthy_deadline_seconds: 20,
            on_failure: FailurePolicy::Pause as i32,
            ..RollingRestartRequest::default()
        })
        .await
        .expect("rolling restart");
    let paused = until_over(client, &operation.id).await;
    assert_eq!(paused.state(), OperationState::Paused, "{paused:#?}");
    assert!(
        paused.message.contains(&sick_id),
        "names the workload: {}",
        paused.message
    );
    let failed: Vec<_> = paused
        .items
        .iter()
        .filter(|item| item.state() == ItemState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{paused:#?}");
    assert_eq!(failed[0].workload_id, sick_id);
    for workload in &fine {
        let now = client.get_workload(&workload.id).await.expect("workload");
        assert_eq!(now.generation, 2, "{now:#?}");
        assert_eq!(now.stage(), Stage::Running);
    }
    // Cancelled, it ends; the failed workload is reported.
    let cancelled = client
        .cancel_operation(&operation.id)
        .await
        .expect("cancel");
    assert_eq!(cancelled.id, operation.id);
    let ended = until_over(client, &operation.id).await;
    assert_eq!(ended.state(), OperationState::Cancelled, "{ended:#?}");

    // With abort, the operation fails at once, naming it too. (The sick one
    // is not running now: start it again, healthy, then make it sick.)
    std::fs::remove_file(server.service_dir("sick").join("unhealthy")).expect("heal");
    client
        .restart_workload(&sick_id)
        .await
        .expect("restart")
        .finish()
        .await
        .expect("running");
    std::fs::write(server.service_dir("sick").join("unhealthy"), b"").expect("make it sick");
    let aborting = client
        .rolling_restart(RollingRestartRequest {
            deployment: "sick".to_owned(),
            min_healthy_seconds: Some(0),
            healthy_deadline_seconds: 20,
            on_failure: FailurePolicy::Abort as i32,
            ..RollingRestartRequest::default()
        })
        .await
        .expect("rolling restart");
    let aborted = until_over(client, &aborting.id).await;
    assert_eq!(aborted.state(), OperationState::Failed, "{aborted:#?}");
    assert!(aborted.message.contains("aborted"), "{}", aborted.message);
    assert!(aborted.message.contains(&sick_id), "{}", aborted.message);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_the_only_node_needs_force_and_its_name_and_every_fleet_call_is_audited() {
    let server = TestServer::start_with(|config| {
        config.node.node_name = Some("solo".to_owned());
    })
    .await;
    let client = &server.client;
    let running = server
        .start_many(DeploymentBuilder::new("stays").command(["sleep", "600"]), 2)
        .await;

    // Refused, saying why and how to override; nothing changes.
    let refused = client
        .drain_node(DrainNodeRequest {
            node: "solo".to_owned(),
            ..DrainNodeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    assert!(refused.to_string().contains("last node"), "{refused}");
    assert!(
        refused.to_string().contains("--force --confirm solo"),
        "{refused}"
    );
    let wrong = client
        .drain_node(DrainNodeRequest {
            node: "solo".to_owned(),
            force: true,
            confirm: "other".to_owned(),
            ..DrainNodeRequest::default()
        })
        .await
        .unwrap_err();
    assert!(
        wrong.to_string().contains("confirmation must be"),
        "{wrong}"
    );
    let node = client.get_node("solo").await.expect("node");
    assert_eq!(node.scheduling(), NodeScheduling::Eligible);
    for workload in &running {
        let now = client.get_workload(&workload.id).await.expect("workload");
        assert_eq!(now.stage(), Stage::Running);
    }

    // Forced with its name: nothing can move, so what is left stops, and the
    // node ends drained.
    let drain = client
        .drain_node(DrainNodeRequest {
            node: "solo".to_owned(),
            force: true,
            confirm: "solo".to_owned(),
            ..DrainNodeRequest::default()
        })
        .await
        .expect("drain");
    let drained = until_over(client, &drain.id).await;
    assert_eq!(drained.state(), OperationState::Succeeded, "{drained:#?}");
    assert!(
        drained.message.contains("could not move (force)"),
        "{}",
        drained.message
    );
    let node = client.get_node("solo").await.expect("node");
    assert_eq!(node.scheduling(), NodeScheduling::Drained);
    assert!(node.operation_id.is_empty(), "no operation acts on it now");
    for workload in &running {
        let now = client.get_workload(&workload.id).await.expect("workload");
        assert_eq!(now.stage(), Stage::Stopped, "{now:#?}");
    }
    // No replacement was left behind.
    let listed = client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.workloads.len(), 2, "{:#?}", listed.workloads);
    client.resume_node("solo").await.expect("resume");

    // A rolling restart that would take a deployment below its minimum.
    let again: HashSet<String> = running.iter().map(|w| w.id.clone()).collect();
    for id in &again {
        client
            .restart_workload(id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("running");
    }
    let below = client
        .rolling_restart(RollingRestartRequest {
            deployment: "stays".to_owned(),
            max_unavailable: "100%".to_owned(),
            min_available: 1,
            ..RollingRestartRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        below.code(),
        Some(tonic::Code::FailedPrecondition),
        "{below}"
    );
    assert!(
        below.to_string().contains("below the minimum of 1"),
        "{below}"
    );
    let forced = client
        .rolling_restart(RollingRestartRequest {
            deployment: "stays".to_owned(),
            max_unavailable: "100%".to_owned(),
            min_available: 1,
            min_healthy_seconds: Some(0),
            force: true,
            confirm: "stays".to_owned(),
            ..RollingRestartRequest::default()
        })
        .await
        .expect("forced");
    let restarted = until_over(client, &forced.id).await;
    assert_eq!(
        restarted.state(),
        OperationState::Succeeded,
        "{restarted:#?}"
    );

    // Bad input names the field.
    let bad = client
        .rolling_restart(RollingRestartRequest {
            deployment: "stays".to_owned(),
            max_unavailable: "lots".to_owned(),
            ..RollingRestartRequest::default()
        })
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("max_unavailable"), "{bad}");

    // Every fleet call is in the audit trail: who, what, the result, how long.
    for (action, results) in [
        ("DrainNode", vec!["FAILED_PRECONDITION", "OK"]),
        (
            "RollingRestart",
            vec!["FAILED_PRECONDITION", "OK", "INVALID_ARGUMENT"],
        ),
        ("ResumeNode", vec!["OK"]),
    ] {
        let records = client
            .list_audit(ListAuditRequest {
                action: action.to_owned(),
                ..ListAuditRequest::default()
            })
            .await
            .expect("audit");
        for result in results {
            let record = records
                .iter()
                .find(|record| record.result == result)
                .unwrap_or_else(|| panic!("{action} {result} in {records:#?}"));
            assert_eq!(record.actor, "admin", "{record:#?}");
            assert!(!record.target.is_empty(), "{record:#?}");
            assert!(record.duration_micros > 0, "{record:#?}");
        }
    }
    server.stop().await;
}
