//! Pausing and resuming nodes: a paused node takes no new workloads, what runs
//! there keeps running; pausing the last node that takes work needs force and
//! the node's name; every control is audited.

use slipway_sdk::{
    DeploymentBuilder, NewToken,
    proto::{ListAuditRequest, NodeScheduling, Stage},
};
use slipway_testkit::TestServer;

#[tokio::test]
async fn the_last_node_is_paused_only_with_force_and_its_name_and_resuming_starts_what_waited() {
    let server = TestServer::start_with(|config| {
        config.node.node_name = Some("solo".to_owned());
    })
    .await;
    let client = &server.client;
    let (_, running) = server
        .deploy(DeploymentBuilder::new("keeps-running").command(["sleep", "600"]))
        .await;
    let running = server.start_workload(&running.id).await;

    // Refused: it is the only node that takes work; nothing changes.
    let refused = client.pause_node("solo", false, "").await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    assert!(refused.to_string().contains("last node"), "{refused}");
    assert!(refused.to_string().contains("--confirm solo"), "{refused}");
    let wrong = client.pause_node("solo", true, "other").await.unwrap_err();
    assert_eq!(
        wrong.code(),
        Some(tonic::Code::FailedPrecondition),
        "{wrong}"
    );
    let node = client.get_node("solo").await.expect("node");
    assert_eq!(node.scheduling(), NodeScheduling::Eligible);

    // Forced, with its name: paused. What runs keeps running…
    let paused = client
        .pause_node("solo", true, "solo")
        .await
        .expect("pause");
    assert_eq!(paused.scheduling(), NodeScheduling::Paused);
    let still = client.get_workload(&running.id).await.expect("workload");
    assert_eq!(still.stage(), Stage::Running);

    // …and a new start waits, PENDING with the reason.
    let (_, waiting) = server
        .deploy(DeploymentBuilder::new("waits").command(["sleep", "600"]))
        .await;
    let refused = client
        .start_workload(&waiting.id)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    let pending = client.get_workload(&waiting.id).await.expect("workload");
    assert_eq!(pending.stage(), Stage::Pending);
    assert!(pending.pending_reason.contains("is paused"), "{pending:#?}");

    // Resumed: the waiting workload starts by itself.
    let resumed = client.resume_node("solo").await.expect("resume");
    assert_eq!(resumed.scheduling(), NodeScheduling::Eligible);
    let started = client
        .wait_for(&waiting.id, Stage::Running, slipway_testkit::PATIENCE)
        .await
        .expect("running");
    assert!(started.pending_reason.is_empty(), "{started:#?}");

    // Every control is in the audit trail, refusals included.
    let audit = client
        .list_audit(ListAuditRequest {
            action: "PauseNode".to_owned(),
            ..ListAuditRequest::default()
        })
        .await
        .expect("audit");
    assert_eq!(audit.len(), 3, "{audit:#?}");
    assert!(
        audit.iter().all(|record| record.target == "solo"),
        "{audit:#?}"
    );
    assert_eq!(
        audit
            .iter()
            .filter(|record| record.result == "FAILED_PRECONDITION")
            .count(),
        2,
        "{audit:#?}"
    );
    let resumes = client
        .list_audit(ListAuditRequest {
            action: "ResumeNode".to_owned(),
            ..ListAuditRequest::default()
        })
        .await
        .expect("audit");
    assert_eq!(resumes.len(), 1, "{resumes:#?}");
    server.stop_workload(&running.id).await;
    server.stop_workload(&waiting.id).await;
}

#[tokio::test]
async fn only_an_admin_pauses_a_node() {
    let server = TestServer::start().await;
    let admin = &server.client;
    let node = admin.list_nodes(false).await.expect("nodes").remove(0);
    let (_, operator_token) = admin
        .create_token(NewToken {
            name: "ops".to_owned(),
            role: "operator".to_owned(),
            ..NewToken::default()
        })
        .await
        .expect("token");
    let operator = server.client_with_token(&operator_token).await;
    let denied = operator
        .pause_node(&node.name, true, &node.name)
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Some(tonic::Code::PermissionDenied),
        "{denied}"
    );
    let node = admin.get_node(&node.id).await.expect("node");
    assert_eq!(node.scheduling(), NodeScheduling::Eligible);
}
