//! Deployments that change: updates by field mask with optimistic
//! concurrency, apply, rollback, revisions that never hold a secret, and the
//! rolling update of the running workloads, one down at a time (other
//! strategies: rollouts.rs).

use slipway_sdk::{
    ChangeOutcome, DeploymentBuilder, DeploymentUpdate, Error,
    proto::{ListAuditRequest, ListWorkloadsRequest, Stage},
};
use slipway_testkit::{Probe, TestServer};

/// A deployment that runs nothing yet.
async fn idle(server: &TestServer, name: &str) -> String {
    server.service_dir(name);
    server
        .client
        .create_deployment(
            DeploymentBuilder::new(name)
                .service_path(name)
                .command(["sleep", "600"])
                .env("A", "1")
                .build(),
        )
        .await
        .expect("create")
        .id
}

/// The lines the workload printed in `generation`.
async fn output_of(server: &TestServer, workload: &str, generation: u64) -> Vec<String> {
    server
        .client
        .all_logs(workload)
        .await
        .expect("logs")
        .into_iter()
        .filter(|line| line.generation == generation)
        .map(|line| line.message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_from_the_same_revision_cannot_both_win() {
    let server = TestServer::start().await;
    let id = idle(&server, "race").await;
    for round in 1..=8u64 {
        let left = DeploymentUpdate::new(&id)
            .env(format!("LEFT{round}"), "1")
            .expect_revision(round);
        let right = DeploymentUpdate::new(&id)
            .env(format!("RIGHT{round}"), "1")
            .expect_revision(round);
        let (a, b) = tokio::join!(
            server.client.update_deployment(left),
            server.client.update_deployment(right)
        );
        let (won, lost, loser_key) = match (a, b) {
            (Ok(won), Err(lost)) => (won, lost, format!("RIGHT{round}")),
            (Err(lost), Ok(won)) => (won, lost, format!("LEFT{round}")),
            other => panic!("round {round}: exactly one must win: {other:?}"),
        };
        assert_eq!(won.outcome, ChangeOutcome::Updated);
        assert_eq!(won.deployment.revision, round + 1);
        match lost {
            Error::RevisionConflict {
                current_revision, ..
            } => assert_eq!(current_revision, round + 1),
            other => panic!("the loser gets ABORTED with the revision: {other:?}"),
        }
        let now = server.client.get_deployment(&id).await.expect("get");
        assert_eq!(now.revision, round + 1);
        let env = now.spec.expect("spec").env;
        assert!(!env.contains_key(&loser_key), "the loser's change: {env:?}");
    }
    let revisions = server.client.list_revisions(&id).await.expect("revisions");
    assert_eq!(
        revisions.iter().map(|r| r.revision).collect::<Vec<_>>(),
        (1..=9).rev().collect::<Vec<u64>>()
    );
    assert_eq!(revisions[0].changed_fields, ["env"]);
    // A stale revision without a race is refused the same way.
    let stale = server
        .client
        .update_deployment(
            DeploymentUpdate::new("race")
                .env("X", "1")
                .expect_revision(3),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(Error::RevisionConflict {
                current_revision: 9,
                ..
            })
        ),
        "{stale:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_keeps_one_down_at_most_and_the_new_runs_lose_the_removed_variable() {
    let server = TestServer::start().await;
    let client = &server.client;
    let builder = server
        .environment_printing_web("roll")
        .env("OLD_FLAG", "remove-me")
        .env("KEEP", "kept");
    let workloads = server.start_many(builder, 3).await;
    let ids: Vec<String> = workloads.iter().map(|w| w.id.clone()).collect();
    for workload in &workloads {
        assert_eq!(workload.spec_revision, 1, "{workload:#?}");
        let before = output_of(&server, &workload.id, 1).await;
        assert!(before.iter().any(|line| line == "OLD_FLAG=remove-me"));
    }
    let probe = Probe::start(client.clone(), ids.clone());
    let change = client
        .update_deployment(
            DeploymentUpdate::new("roll")
                .env("NEW_FLAG", "fresh")
                .remove_env("OLD_FLAG")
                .expect_revision(1),
        )
        .await
        .expect("update");
    assert_eq!(change.outcome, ChangeOutcome::Updated);
    assert_eq!(change.deployment.revision, 2);
    assert_eq!(change.changed_fields, ["env"]);
    let operation = change.operation_id.expect("a rollout");
    let done = server.operation_succeeds(&operation).await;
    assert_eq!(done.total_items, 3);
    assert_eq!(done.parallel, 1);
    let most_down = probe.most_down().await;
    assert!(most_down <= 1, "{most_down} workloads were down at once");
    for id in &ids {
        let workload = client.get_workload(id).await.expect("workload");
        assert_eq!(workload.stage(), Stage::Running, "{workload:#?}");
        assert_eq!(workload.spec_revision, 2, "{workload:#?}");
        assert_eq!(workload.generation, 2, "{workload:#?}");
        let after = output_of(&server, id, 2).await;
        assert!(
            after.iter().any(|line| line == "NEW_FLAG=fresh"),
            "{after:?}"
        );
        assert!(after.iter().any(|line| line == "KEEP=kept"), "{after:?}");
        assert!(
            !after.iter().any(|line| line.starts_with("OLD_FLAG=")),
            "the removed variable is gone: {after:?}"
        );
    }
    // The update is an event, with who made it.
    let revision = client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list")
        .revision;
    let updated: Vec<_> = server
        .events_through(revision)
        .await
        .into_iter()
        .filter(|event| event.r#type() == slipway_sdk::proto::EventType::DeploymentUpdated)
        .collect();
    assert_eq!(updated.len(), 1, "{updated:#?}");
    assert_eq!(updated[0].actor, "admin");
    // The same change again is no change: no revision, no rollout.
    let again = client
        .update_deployment(DeploymentUpdate::new("roll").remove_env("OLD_FLAG"))
        .await
        .expect("update");
    assert_eq!(again.outcome, ChangeOutcome::Unchanged);
    assert_eq!(again.deployment.revision, 2);
    assert_eq!(again.operation_id, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_then_updates_and_rollback_restores_an_old_spec() {
    let server = TestServer::start().await;
    let client = &server.client;
    server.service_dir("applied");
    let spec = |value: &str| {
        DeploymentBuilder::new("applied")
            .service_path("applied")
            .command(["sleep", "600"])
            .env("VALUE", value)
            .label("tier", "batch")
    };
    let created = client.apply(spec("1")).await.expect("apply");
    assert_eq!(created.outcome, ChangeOutcome::Created);
    assert_eq!(created.deployment.revision, 1);
    let same = client.apply(spec("1")).await.expect("apply again");
    assert_eq!(same.outcome, ChangeOutcome::Unchanged);
    assert_eq!(same.deployment.revision, 1);
    assert_eq!(same.operation_id, None);
    let updated = client.apply(spec("2")).await.expect("apply a change");
    assert_eq!(updated.outcome, ChangeOutcome::Updated);
    assert_eq!(updated.deployment.revision, 2);
    assert_eq!(updated.changed_fields, ["env"]);
    // Nothing runs: nothing to roll out.
    assert_eq!(updated.operation_id, None);
    let undone = client.rollback("applied", None).await.expect("rollback");
    assert_eq!(undone.outcome, ChangeOutcome::Updated);
    assert_eq!(undone.deployment.revision, 3);
    let revisions = client.list_revisions("applied").await.expect("revisions");
    assert_eq!(revisions.len(), 3);
    assert_eq!(revisions[0].revision, 3);
    assert_eq!(revisions[0].rolled_back_from, 1);
    assert_eq!(
        revisions[0].spec, revisions[2].spec,
        "revision 3 is revision 1's spec"
    );
    assert_eq!(revisions[0].labels, revisions[2].labels);
    let now = client
        .get_deployment(&created.deployment.id)
        .await
        .expect("get");
    assert_eq!(now.spec.expect("spec").env["VALUE"], "1");
    // Rolling back to what it already is changes nothing.
    let noop = client.rollback("applied", Some(1)).await.expect("rollback");
    assert_eq!(noop.outcome, ChangeOutcome::Unchanged);
    assert_eq!(noop.deployment.revision, 3);
    // A project cannot change by apply.
    let moved = client.apply(spec("1").project("elsewhere")).await;
    assert!(
        matches!(&moved, Err(Error::InvalidArgument { violations, .. })
            if violations.iter().any(|v| v.field == "deployment.project")),
        "{moved:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_changes_nothing() {
    let server = TestServer::start().await;
    let client = &server.client;
    let id = idle(&server, "strict").await;
    let mut unknown = DeploymentUpdate::new("strict").env("B", "2").build();
    if let Some(mask) = unknown.update_mask.as_mut() {
        mask.paths.push("colour".to_owned());
    }
    let refused = client.update_deployment(unknown).await;
    match refused {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!(violations[0].field, "update_mask");
            assert!(
                violations[0].description.contains("\"colour\""),
                "{violations:?}"
            );
        }
        other => panic!("an unknown path: {other:?}"),
    }
    let invalid = client
        .update_deployment(
            DeploymentUpdate::new("strict")
                .env("B", "2")
                .command(Vec::<String>::new()),
        )
        .await;
    assert!(
        matches!(&invalid, Err(Error::InvalidArgument { violations, .. })
            if violations.iter().any(|v| v.field.starts_with("spec.command"))),
        "{invalid:?}"
    );
    let bad_name = client
        .update_deployment(DeploymentUpdate::new("strict").env("1BAD", "x"))
        .await;
    assert!(
        matches!(&bad_name, Err(Error::InvalidArgument { violations, .. })
            if violations.iter().any(|v| v.field.contains("env"))),
        "{bad_name:?}"
    );
    let nowhere = client.rollback("strict", Some(7)).await;
    assert!(
        matches!(&nowhere, Err(Error::InvalidArgument { violations, .. })
            if violations.iter().any(|v| v.field == "to_revision")),
        "{nowhere:?}"
    );
    let first = client.rollback("strict", None).await;
    assert!(
        matches!(first, Err(Error::InvalidArgument { .. })),
        "{first:?}"
    );
    let missing = client
        .update_deployment(DeploymentUpdate::new("no-such").env("A", "2"))
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    // Nothing of it stored.
    let now = client.get_deployment(&id).await.expect("get");
    assert_eq!(now.revision, 1);
    let spec = now.spec.expect("spec");
    assert_eq!(spec.command, ["sleep", "600"]);
    assert_eq!(spec.env.keys().collect::<Vec<_>>(), ["A"]);
    assert_eq!(
        client.list_revisions(&id).await.expect("revisions").len(),
        1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_events_and_audit_never_show_a_secret() {
    let server = TestServer::start().await;
    let client = &server.client;
    server.service_dir("secretive");
    client
        .create_deployment(
            DeploymentBuilder::new("secretive")
                .service_path("secretive")
                .command(["sleep", "600"])
                .secret_env("TOKEN", "first-s3cr3t-value")
                .build(),
        )
        .await
        .expect("create");
    let changed = client
        .update_deployment(
            DeploymentUpdate::new("secretive").secret_env("TOKEN", "second-s3cr3t-value"),
        )
        .await
        .expect("a new secret value");
    assert_eq!(changed.outcome, ChangeOutcome::Updated);
    assert_eq!(changed.changed_fields, ["secret_env"]);
    // The value shown back (masked) keeps the secret: no change.
    let shown = client
        .get_deployment(&changed.deployment.id)
        .await
        .expect("get")
        .spec
        .expect("spec");
    let echoed = client
        .update_deployment(DeploymentUpdate::new("secretive").whole_spec(shown))
        .await
        .expect("the spec as shown");
    assert_eq!(echoed.outcome, ChangeOutcome::Unchanged, "{echoed:?}");
    let undone = client.rollback("secretive", None).await.expect("rollback");
    assert_eq!(
        undone.outcome,
        ChangeOutcome::Unchanged,
        "same spec, same secrets kept"
    );
    assert!(
        undone.notes.iter().any(|note| note.contains("TOKEN")),
        "the secret revision 1 had differs: {:?}",
        undone.notes
    );
    let revisions = client.list_revisions("secretive").await.expect("revisions");
    assert_eq!(revisions.len(), 2);
    for revision in &revisions {
        let secrets = &revision.spec.as_ref().expect("spec").secret_env;
        assert_eq!(secrets.get("TOKEN").map(String::as_str), Some("********"));
    }
    let revision = client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list")
        .revision;
    let audit = client
        .list_audit(ListAuditRequest::default())
        .await
        .expect("audit");
    let everything = format!(
        "{revisions:?} {changed:?} {:?} {audit:?}",
        server.events_through(revision).await
    );
    for value in ["first-s3cr3t-value", "second-s3cr3t-value"] {
        assert!(!everything.contains(value), "{value} shown: {everything}");
    }
    assert!(
        everything.contains("UpdateDeployment"),
        "audited: {audit:?}"
    );
    server.stop().await;
}
