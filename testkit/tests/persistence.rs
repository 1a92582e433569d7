//! State survives a restart of the server on the same data directory.

use slipway_sdk::{DeploymentBuilder, proto::Stage};
use slipway_testkit::{TestServer, http_get};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_workloads_and_logs_survive_a_restart_of_the_server() {
    let server = TestServer::start().await;
    server.service_dir("web");
    server.service_dir("batch");
    let (web, running) = server
        .deploy(
            DeploymentBuilder::new("web")
                .service_path("web")
                .command([SAMPLE, "http"])
                .listen()
                .label("team", "edge"),
        )
        .await;
    let (_, done) = server
        .deploy(
            DeploymentBuilder::new("batch")
                .service_path("batch")
                .command([SAMPLE, "lines", "50"])
                .min_ready_ms(0),
        )
        .await;
    let pending = server
        .client
        .create_workload(&web.id)
        .await
        .expect("pending");
    server.start_workload(&running.id).await;
    server.start_workload(&done.id).await;
    let done_before = server
        .wait_for(&done.id, Stage::Stopped)
        .await
        .expect("batch completes");
    let done_logs = server.client.all_logs(&done.id).await.expect("logs");
    assert!(done_logs.iter().any(|entry| entry.message == "line 50"));
    let running_logs = server.client.all_logs(&running.id).await.expect("logs");

    let server = server.restart().await;

    let deployments = server.client.all_deployments().await.expect("deployments");
    let names: Vec<_> = deployments
        .iter()
        .map(|deployment| deployment.name.as_str())
        .collect();
    assert_eq!(names, ["web", "batch"]);
    assert_eq!(
        deployments[0].labels.get("team").map(String::as_str),
        Some("edge")
    );
    assert_eq!(
        server
            .client
            .get_workload(&pending.id)
            .await
            .expect("pending")
            .stage(),
        Stage::Pending
    );
    let done_after = server.client.get_workload(&done.id).await.expect("done");
    assert_eq!(done_after, done_before);
    assert_eq!(
        server.client.all_logs(&done.id).await.expect("logs"),
        done_logs
    );
    // The running one was stopped cleanly at shutdown; its lines are all kept.
    let was_running = server
        .client
        .get_workload(&running.id)
        .await
        .expect("was running");
    assert_eq!(was_running.stage(), Stage::Stopped);
    let after = server.client.all_logs(&running.id).await.expect("logs");
    assert_eq!(&after[..running_logs.len()], &running_logs[..]);

    // And it can run again: the next generation, with its log continuing.
    let restarted = server
        .client
        .restart_workload(&running.id)
        .await
        .expect("restart")
        .finish()
        .await
        .expect("progress");
    assert_eq!(
        (restarted.stage(), restarted.generation),
        (Stage::Running, 2)
    );
    assert_eq!(http_get(restarted.port as u16, "/").expect("http").0, 200);
    let continued = server.client.all_logs(&running.id).await.expect("logs");
    assert!(
        continued
            .windows(2)
            .all(|pair| pair[1].seq == pair[0].seq + 1)
    );
    server.stop().await;
}
