//! The audit trail: every mutating call, with its actor, target, result and
//! duration, and never a secret value; and the bootstrap admin token.

use std::time::Duration;

use slipway_sdk::{DeploymentBuilder, proto::ListAuditRequest};
use slipway_testkit::{TestServer, read_when_written};

const SECRET: &str = "s3cr3t-value-that-must-not-leak";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_are_audited_without_secrets() {
    let server = TestServer::start().await;
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("audited")
                .service_path(".")
                .command(["sleep", "30"])
                .secret_env("API_KEY", SECRET),
        )
        .await;
    server.start_workload(&workload.id).await;
    server.stop_workload(&workload.id).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let records = loop {
        let records = server
            .client
            .list_audit(ListAuditRequest::default())
            .await
            .expect("audit");
        let actions: Vec<&str> = records
            .iter()
            .map(|record| record.action.as_str())
            .collect();
        if [
            "CreateDeployment",
            "CreateWorkload",
            "StartWorkload",
            "StopWorkload",
        ]
        .iter()
        .all(|action| actions.contains(action))
        {
            break records;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not audited: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |action: &str| {
        records
            .iter()
            .find(|record| record.action == action)
            .unwrap_or_else(|| panic!("{action} audited"))
    };
    let created = find("CreateDeployment");
    assert_eq!(created.actor, "admin");
    assert!(!created.actor_id.is_empty());
    assert_eq!(created.target, deployment.id);
    assert_eq!(created.result, "OK");
    assert!(
        created.parameters.contains("API_KEY"),
        "{}",
        created.parameters
    );
    let started = find("StartWorkload");
    assert_eq!(started.target, workload.id);
    assert_eq!(started.result, "OK");
    assert!(started.duration_micros > 0);
    let everything = format!("{records:?}");
    assert!(
        !everything.contains(SECRET),
        "a secret leaked into the audit trail"
    );
    assert!(
        !everything.contains(server.admin_token()),
        "the token leaked"
    );

    // Filters.
    let only_start = server
        .client
        .list_audit(ListAuditRequest {
            action: "StartWorkload".to_owned(),
            target: workload.id.clone(),
            actor: "admin".to_owned(),
            ..ListAuditRequest::default()
        })
        .await
        .expect("filtered");
    assert_eq!(only_start.len(), 1, "{only_start:?}");
    // Reads are not audited.
    assert!(records.iter().all(|record| record.action != "GetWorkload"));
    server.stop().await;
}

/// The first start without --admin-token-file writes an admin token to
/// DATA_DIR/admin.token, 0600, and never logs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_writes_a_private_admin_token() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start_with(|config| config.admin_token_file = None).await;
    let path = server.data_dir().join("admin.token");
    let token = read_when_written(&path).await;
    assert!(token.starts_with("slw_"), "{token}");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // On a shared database each node also has its own token, for the calls
    // it sends other nodes (named node:<id>): not an administrator's.
    let people = |tokens: Vec<slipway_sdk::proto::TokenInfo>| -> Vec<_> {
        tokens
            .into_iter()
            .filter(|token| !token.name.starts_with("node:"))
            .collect()
    };
    let tokens = people(
        server
            .client
            .list_tokens()
            .await
            .expect("the admin token works"),
    );
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].role, "admin");
    // A restart keeps it and makes no other.
    let server = server.restart().await;
    let listed = server.client.list_tokens().await.expect("list");
    assert_eq!(people(listed.clone()).len(), 1);
    assert!(
        listed.len() <= 2,
        "a restart makes no other token: {listed:?}"
    );
    server.stop().await;
}

/// The events a call causes name its caller (the token's name); what Slipway
/// does by itself (a restart by the policy) names nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_name_who_caused_them() {
    use slipway_sdk::{
        NewToken,
        proto::{RestartPolicy, Stage, restart_policy::Mode},
    };
    let server = TestServer::start().await;
    let (_, bot_token) = server
        .client
        .create_token(NewToken {
            name: "deploy-bot".to_owned(),
            role: "operator".to_owned(),
            ..NewToken::default()
        })
        .await
        .expect("token");
    let bot = server.client_with_token(&bot_token).await;
    let deployment = bot
        .create_deployment(
            DeploymentBuilder::new("caused")
                .service_path(".")
                .command(["sh", "-c", "sleep 0.3; exit 1"])
                .restart_policy(RestartPolicy {
                    mode: Mode::OnFailure.into(),
                    max_restarts: 1,
                    initial_backoff_ms: Some(50),
                    ..RestartPolicy::default()
                })
                .build(),
        )
        .await
        .expect("deployment");
    let workload = bot.create_workload(&deployment.id).await.expect("workload");
    bot.start_workload(&workload.id)
        .await
        .expect("start")
        .finish()
        .await
        .expect("running");
    // It fails, the policy runs it again once, and it fails for good.
    let failed = slipway_testkit::until("the second run failed", || async {
        let now = server.client.get_workload(&workload.id).await.ok()?;
        (now.generation == 2 && now.stage() == Stage::Failed && now.next_restart_at.is_none())
            .then_some(now)
    })
    .await;
    let events = server.events_through(failed.revision).await;
    let of_workload: Vec<_> = events
        .iter()
        .filter(|event| event.workload_id == workload.id)
        .collect();
    let created = events
        .iter()
        .find(|event| event.deployment_id == deployment.id && event.workload_id.is_empty())
        .expect("the deployment's creation");
    assert_eq!(created.actor, "deploy-bot");
    // The first run, up to RUNNING, is the bot's start.
    let first_running = of_workload
        .iter()
        .find(|event| {
            event
                .workload
                .as_ref()
                .is_some_and(|w| w.generation == 1 && w.stage() == Stage::Running)
        })
        .expect("the first run ran");
    assert_eq!(first_running.actor, "deploy-bot", "{first_running:#?}");
    // The second run is the policy's: nobody asked for it.
    let second = of_workload
        .iter()
        .filter(|event| event.workload.as_ref().is_some_and(|w| w.generation == 2))
        .collect::<Vec<_>>();
    assert!(!second.is_empty());
    assert!(
        second.iter().all(|event| event.actor.is_empty()),
        "{second:#?}"
    );
    server.stop().await;
}
