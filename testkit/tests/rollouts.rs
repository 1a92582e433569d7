//! Rollouts: how a change of a deployment reaches its running workloads,
//! as its update strategy says (rolling with surge, recreate, on restart).
//! The in-place rolling update, one down at most: revisions.rs.

use std::time::Duration;

use slipway_sdk::{
    DeploymentUpdate, RolloutStrategy,
    proto::{ListWorkloadsRequest, Stage, Workload},
};
use slipway_testkit::TestServer;

async fn all_of(server: &TestServer, deployment: &str) -> Vec<Workload> {
    server
        .client
        .list_workloads(ListWorkloadsRequest {
            deployment_name: deployment.to_owned(),
            ..ListWorkloadsRequest::default()
        })
        .await
        .expect("list")
        .workloads
}

async fn running_of(server: &TestServer, deployment: &str) -> Vec<Workload> {
    all_of(server, deployment)
        .await
        .into_iter()
        .filter(|workload| workload.stage() == Stage::Running)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_surge_new_workloads_replace_the_old_ones_and_as_many_keep_running() {
    let server = TestServer::start().await;
    let client = &server.client;
    let builder =
        server
            .environment_printing_web("surge")
            .update_strategy(RolloutStrategy::Rolling {
                max_unavailable: 1,
                max_surge: 1,
            });
    let old = server.start_many(builder, 2).await;
    let change = client
        .update_deployment(DeploymentUpdate::new("surge").env("VERSION", "2"))
        .await
        .expect("update");
    let operation = change.operation_id.expect("a rollout");
    // Every 50 ms until the rollout ends: never fewer running than before.
    let mut fewest = usize::MAX;
    loop {
        let running = running_of(&server, "surge").await.len();
        fewest = fewest.min(running);
        let now = client.get_operation(&operation).await.expect("operation");
        if now.finished_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fewest >= 2, "{fewest} running at one point");
    server.operation_succeeds(&operation).await;
    let listed = all_of(&server, "surge").await;
    let running = running_of(&server, "surge").await;
    assert_eq!(running.len(), 2, "{listed:#?}");
    assert!(running.iter().all(|w| w.spec_revision == 2), "{listed:#?}");
    for workload in &old {
        assert!(
            !listed.iter().any(|w| w.id == workload.id),
            "the old workload is removed: {listed:#?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_restarts_all_at_once_and_on_restart_waits_for_the_next_run() {
    let server = TestServer::start().await;
    let client = &server.client;
    let builder = server
        .environment_printing_web("again")
        .update_strategy(RolloutStrategy::Recreate);
    let started = server.start_many(builder, 2).await;
    let change = client
        .update_deployment(DeploymentUpdate::new("again").env("VERSION", "2"))
        .await
        .expect("update");
    let done = server
        .operation_succeeds(&change.operation_id.expect("a rollout"))
        .await;
    assert_eq!(done.parallel, 2, "all at once: {done:#?}");
    for workload in &started {
        let now = client.get_workload(&workload.id).await.expect("get");
        assert_eq!((now.generation, now.spec_revision), (2, 2), "{now:#?}");
    }
    // On restart: nothing now, the new spec at the next run.
    let later = client
        .update_deployment(
            DeploymentUpdate::new("again")
                .env("VERSION", "3")
                .update_strategy(RolloutStrategy::OnRestart),
        )
        .await
        .expect("update");
    assert_eq!(later.deployment.revision, 3);
    assert_eq!(later.operation_id, None);
    let first = &started[0].id;
    assert_eq!(
        client.get_workload(first).await.expect("get").spec_revision,
        2
    );
    let restarted = client
        .restart_workload(first)
        .await
        .expect("restart")
        .finish()
        .await
        .expect("restarted");
    assert_eq!(restarted.spec_revision, 3, "{restarted:#?}");
    let untouched = client.get_workload(&started[1].id).await.expect("get");
    assert_eq!(untouched.spec_revision, 2, "{untouched:#?}");
    server.stop().await;
}
