//! Fleet operations across nodes on one PostgreSQL database: a drain moves
//! every workload to another node with its service reachable throughout, and
//! a rolling restart (or a deployment's rollout) whose node is killed is
//! carried on by another node without restarting anything twice. Skipped
//! without PostgreSQL.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use slipway_sdk::{
    Client, DeploymentBuilder,
    proto::{
        DrainNodeRequest, FleetOperation, ItemState, ListWorkloadsRequest, NodeScheduling,
        OperationState, RollingRestartRequest, Stage,
    },
};
use slipway_testkit::{
    PATIENCE,
    cluster::{self, Member},
    http_get, postgres_test_database, until,
};

const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");
const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

async fn nodes(names: &[(&str, &str)]) -> Option<Vec<Member>> {
    let Some(database_url) = postgres_test_database().await else {
        eprintln!("skipped: several nodes need PostgreSQL (set SLIPWAY_TEST_POSTGRES_URL)");
        return None;
    };
    let mut members = Vec::new();
    for (name, ports) in names {
        members.push(cluster::member(SERVER_PROCESS, &database_url, name, ports).await);
    }
    cluster::registered(&members[0], names.len()).await;
    Some(members)
}

/// An HTTP service with readiness, runnable from any node's root (the
/// sample service is an absolute path; the service directory is the root).
fn web(name: &str) -> DeploymentBuilder {
    DeploymentBuilder::new(name)
        .command([SAMPLE, "http"])
        .listen()
        .http_readiness("/health")
        .stop_grace_period_seconds(2)
}

/// A deployment of [`web`] named `name` with `count` workloads, each
/// started and running (wherever placement puts them); their ids.
async fn running(client: &Client, name: &str, count: usize) -> Vec<String> {
    let deployment = client
        .create_deployment(web(name).build())
        .await
        .expect("deployment");
    let mut ids = Vec::new();
    for _ in 0..count {
        let workload = client
            .create_workload(&deployment.id)
            .await
            .expect("workload");
        client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("running");
        ids.push(workload.id);
    }
    ids
}

fn answers(port: u32) -> bool {
    u16::try_from(port)
        .ok()
        .is_some_and(|port| matches!(http_get(port, "/"), Ok((200, _))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_moves_every_workload_once_and_keeps_each_service_reachable() {
    let Some(members) = nodes(&[("node-a", "3800-3819"), ("node-b", "3820-3839")]).await else {
        return;
    };
    let (a, b) = (&members[0], &members[1]);
    let client = &a.server.client;
    // Six services, all placed on node B (A takes no work meanwhile).
    client
        .pause_node("node-a", false, "")
        .await
        .expect("pause A");
    let mut deployments = HashMap::new();
    for index in 0..6 {
        let deployment = client
            .create_deployment(web(&format!("svc-{index}")).build())
            .await
            .expect("deployment");
        let workload = client
            .create_workload(&deployment.id)
            .await
            .expect("workload");
        let running = client
            .start_workload(&workload.id)
            .await
            .expect("start")
            .finish()
            .await
            .expect("running");
        deployments.insert(deployment.id.clone(), running);
    }
    let node_b = client.get_node("node-b").await.expect("node B");
    assert!(deployments.values().all(|w| w.node_id == node_b.id));
    client.resume_node("node-a").await.expect("resume A");

    // A probe of every service every 50 ms: up when any of its workloads
    // runs and answers.
    let probe_client = client.clone();
    let ids: Vec<String> = deployments.keys().cloned().collect();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(async move {
        let mut unreachable: Vec<String> = Vec::new();
        let mut ticks = 0;
        loop {
            let listed = probe_client
                .list_workloads(ListWorkloadsRequest {
                    page_size: 1000,
                    ..ListWorkloadsRequest::default()
                })
                .await
                .expect("list");
            let ports: Vec<(String, Vec<u32>)> = ids
                .iter()
                .map(|deployment| {
                    let ports = listed
                        .workloads
                        .iter()
                        .filter(|w| &w.deployment_id == deployment && w.stage() == Stage::Running)
                        .map(|w| w.port)
                        .collect();
                    (deployment.clone(), ports)
                })
                .collect();
            let down = tokio::task::spawn_blocking(move || {
                ports
                    .into_iter()
                    .filter(|(_, ports)| !ports.iter().any(|port| answers(*port)))
                    .map(|(deployment, _)| deployment)
                    .collect::<Vec<_>>()
            })
            .await
            .expect("probe");
            unreachable.extend(down);
            ticks += 1;
            tokio::select! {
                _ = stopped.changed() => return (ticks, unreachable),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });

    let drain = b
        .server
        .client
        .drain_node(DrainNodeRequest {
            node: "node-b".to_owned(),
            parallel: 2,
            min_healthy_seconds: Some(1),
            ..DrainNodeRequest::default()
        })
        .await
        .expect("drain");
    assert_eq!(drain.total_items, 6, "{drain:#?}");
    let draining = client.get_node("node-b").await.expect("node B");
    assert_eq!(draining.scheduling(), NodeScheduling::Draining);
    assert_eq!(draining.operation_id, drain.id);
    // Watched from node A: never more than two moving at once.
    let mut watch = Box::pin(client.watch_operation(&drain.id).await.expect("watch"));
    let mut last: Option<FleetOperation> = None;
    while let Some(next) = tokio::time::timeout(PATIENCE * 4, watch.next())
        .await
        .expect("the drain goes on")
    {
        let next = next.expect("operation");
        let moving = next
            .items
            .iter()
            .filter(|item| item.state() == ItemState::Active)
            .count();
        assert!(moving <= 2, "{moving} moving at once: {next:#?}");
        last = Some(next);
    }
    stop.send(true).expect("stop the probe");
    let (ticks, unreachable) = probe.await.expect("probe");
    let drained = last.expect("the drain");
    assert_eq!(drained.state(), OperationState::Succeeded, "{drained:#?}");
    assert!(ticks > 10, "the probe ran throughout ({ticks} rounds)");
    assert!(
        unreachable.is_empty(),
        "services unreachable during the drain: {unreachable:?}"
    );

    // Node B is drained; each service runs exactly once, on node A, and
    // each old workload is stopped.
    let node_b = client.get_node("node-b").await.expect("node B");
    assert_eq!(node_b.scheduling(), NodeScheduling::Drained);
    assert_eq!(node_b.active_workloads, 0);
    let node_a = client.get_node("node-a").await.expect("node A");
    for (deployment_id, old) in &deployments {
        let listed = client
            .list_workloads(ListWorkloadsRequest {
                deployment_id: deployment_id.clone(),
                ..ListWorkloadsRequest::default()
            })
            .await
            .expect("list");
        let live: Vec<_> = listed
            .workloads
            .iter()
            .filter(|w| w.stage() == Stage::Running)
            .collect();
        assert_eq!(live.len(), 1, "{:#?}", listed.workloads);
        assert_eq!(live[0].node_id, node_a.id);
        assert_eq!(live[0].generation, 1, "started once: {:#?}", live[0]);
        let old = client.get_workload(&old.id).await.expect("old");
        assert_eq!(old.stage(), Stage::Stopped, "{old:#?}");
        let item = drained
            .items
            .iter()
            .find(|item| item.workload_id == old.id)
            .expect("an item per workload");
        assert_eq!(item.replacement_id, live[0].id);
    }
    // Resumed, it takes work again.
    let resumed = client.resume_node("node-b").await.expect("resume");
    assert_eq!(resumed.scheduling(), NodeScheduling::Eligible);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_whose_node_is_killed_goes_on_elsewhere_restarting_nothing_twice() {
    let Some(mut members) = nodes(&[
        ("node-a", "3840-3859"),
        ("node-b", "3860-3879"),
        ("node-c", "3880-3899"),
    ])
    .await
    else {
        return;
    };
    let c = members.pop().expect("C");
    let b = members.pop().expect("B");
    let a = members.pop().expect("A");
    let client: &Client = &a.server.client;
    // Node B runs no workloads: it only carries the operation out.
    client
        .pause_node("node-b", false, "")
        .await
        .expect("pause B");
    // Two of three nodes out of placement is more than the 50 % allowed.
    let refused = client
        .drain_node(DrainNodeRequest {
            node: "node-c".to_owned(),
            ..DrainNodeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("more than the 50% allowed"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("--force --confirm node-c"),
        "{refused}"
    );
    let node_c = client.get_node("node-c").await.expect("node C");
    assert_eq!(node_c.scheduling(), NodeScheduling::Eligible);
    let ids = running(client, "rolling", 6).await;
    let operation = b
        .server
        .client
        .rolling_restart(RollingRestartRequest {
            deployment: "rolling".to_owned(),
            max_unavailable: "1".to_owned(),
            min_healthy_seconds: Some(2),
            ..RollingRestartRequest::default()
        })
        .await
        .expect("rolling restart");
    let node_b = client.get_node("node-b").await.expect("node B");
    assert_eq!(operation.node_id, node_b.id);

    // Killed once the second workload is under way.
    until("the second workload is being restarted", || async {
        let now = client.get_operation(&operation.id).await.ok()?;
        (now.items.get(1)?.state() == ItemState::Active).then_some(())
    })
    .await;
    b.server.kill9();

    // Another node takes it over and finishes it.
    let done = client
        .wait_for_operation(&operation.id, PATIENCE * 4)
        .await
        .expect("operation");
    assert_eq!(done.state(), OperationState::Succeeded, "{done:#?}");
    assert_ne!(done.node_id, node_b.id, "taken over by another node");
    assert!(
        done.items
            .iter()
            .all(|item| item.state() == ItemState::Done),
        "{done:#?}"
    );
    // Each workload restarted exactly once.
    for id in &ids {
        let workload = client.get_workload(id).await.expect("workload");
        assert_eq!(workload.stage(), Stage::Running, "{workload:#?}");
        assert_eq!(workload.generation, 2, "restarted once: {workload:#?}");
    }
    let records = client
        .list_audit(slipway_sdk::proto::ListAuditRequest {
            action: "RollingRestart".to_owned(),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].result, "OK");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_node_is_killed_goes_on_elsewhere_and_every_workload_ends_on_the_new_revision()
 {
    let Some(mut members) = nodes(&[
        ("node-a", "3900-3919"),
        ("node-b", "3920-3939"),
        ("node-c", "3940-3959"),
    ])
    .await
    else {
        return;
    };
    let c = members.pop().expect("C");
    let b = members.pop().expect("B");
    let a = members.pop().expect("A");
    let client: &Client = &a.server.client;
    // Node B runs no workloads: it only carries the rollout out.
    client
        .pause_node("node-b", false, "")
        .await
        .expect("pause B");
    let ids = running(client, "changing", 4).await;
    // The change is made through node B, which then carries its rollout out.
    let change = b
        .server
        .client
        .update_deployment(slipway_sdk::DeploymentUpdate::new("changing").env("VERSION", "2"))
        .await
        .expect("update");
    let operation = change.operation_id.expect("a rollout");
    let node_b = client.get_node("node-b").await.expect("node B");
    let begun = client.get_operation(&operation).await.expect("operation");
    assert_eq!(begun.node_id, node_b.id);
    until("the second workload is being rolled", || async {
        let now = client.get_operation(&operation).await.ok()?;
        (now.items.get(1)?.state() == ItemState::Active).then_some(())
    })
    .await;
    b.server.kill9();

    let done = client
        .wait_for_operation(&operation, PATIENCE * 4)
        .await
        .expect("operation");
    assert_eq!(done.state(), OperationState::Succeeded, "{done:#?}");
    assert_ne!(done.node_id, node_b.id, "taken over by another node");
    for id in &ids {
        let workload = client.get_workload(id).await.expect("workload");
        assert_eq!(workload.stage(), Stage::Running, "{workload:#?}");
        assert_eq!(workload.spec_revision, 2, "{workload:#?}");
        assert_eq!(workload.generation, 2, "restarted once: {workload:#?}");
    }
    drop(c);
}
