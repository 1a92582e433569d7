//! Bad input gets a typed error naming the field and changes nothing; unknown ids
//! are NOT_FOUND.

use slipway_sdk::{
    DeploymentBuilder, Error,
    proto::{ListWorkloadsRequest, Stage, WatchEventsRequest},
};
use slipway_testkit::TestServer;

const UNKNOWN_ID: &str = "0123456789abcdef0123456789abcdef";

fn violated_fields(error: Error) -> Vec<String> {
    match error {
        Error::InvalidArgument { violations, .. } => violations
            .into_iter()
            .map(|violation| violation.field)
            .collect(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deployments_are_refused_with_the_field_named_and_nothing_changes() {
    let server = TestServer::start().await;
    server.service_dir("svc");
    std::fs::write(server.root().join("not-a-dir"), b"").expect("file");
    let outside = tempfile::tempdir().expect("outside");
    let valid = || {
        DeploymentBuilder::new("svc")
            .service_path("svc")
            .command(["sleep", "1"])
    };
    let cases = [
        (
            "a path outside the root",
            valid().service_path("../.."),
            "service_path",
        ),
        (
            "an absolute path outside the root",
            valid().service_path(outside.path().to_str().expect("utf-8")),
            "service_path",
        ),
        (
            "a missing directory",
            valid().service_path("missing"),
            "service_path",
        ),
        ("a file", valid().service_path("not-a-dir"), "service_path"),
        (
            "an empty command",
            valid().command(Vec::<String>::new()),
            "spec.command",
        ),
        ("an empty program", valid().command([""]), "spec.command[0]"),
        ("a bad env name", valid().env("1BAD", "x"), "spec.env[1BAD]"),
        (
            "an env name with a dash",
            valid().env("MY-VAR", "x"),
            "spec.env[MY-VAR]",
        ),
        (
            "a bad name",
            valid().build_step(["true"]).command(["true"]),
            "",
        ),
        (
            "readiness without a port",
            valid().http_readiness("/"),
            "spec.readiness",
        ),
        (
            "a zero startup timeout",
            valid().startup_timeout_seconds(0),
            "spec.startup_timeout_seconds",
        ),
        (
            "an empty build step",
            valid().build_step(Vec::<String>::new()),
            "spec.build[0].command",
        ),
    ];
    for (what, builder, field) in cases {
        if field.is_empty() {
            continue;
        }
        let error = server
            .client
            .create_deployment(builder.build())
            .await
            .expect_err(what);
        assert_eq!(error.code(), Some(tonic::Code::InvalidArgument), "{what}");
        assert_eq!(violated_fields(error), [field], "{what}");
    }
    let mut bad_name = valid().build();
    bad_name.name = "no spaces please".into();
    let error = server
        .client
        .create_deployment(bad_name)
        .await
        .expect_err("bad name");
    assert_eq!(violated_fields(error), ["name"]);
    let mut no_spec = valid().build();
    no_spec.spec = None;
    let error = server
        .client
        .create_deployment(no_spec)
        .await
        .expect_err("no spec");
    assert_eq!(violated_fields(error), ["spec"]);

    // Several problems at once are all named.
    let error = server
        .client
        .create_deployment(
            valid()
                .service_path("missing")
                .command(Vec::<String>::new())
                .env("2X", "y")
                .build(),
        )
        .await
        .expect_err("many problems");
    let mut fields = violated_fields(error);
    fields.sort();
    assert_eq!(fields, ["service_path", "spec.command", "spec.env[2X]"]);

    // Nothing was created, and no event was recorded.
    assert!(
        server
            .client
            .all_deployments()
            .await
            .expect("list")
            .is_empty()
    );
    let workloads = server
        .client
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("list workloads");
    assert_eq!(workloads.revision, 0);

    // The valid one is accepted; its name is then taken.
    let created = server
        .client
        .create_deployment(valid().build())
        .await
        .expect("valid");
    assert_eq!(created.service_path, "svc");
    let taken = server
        .client
        .create_deployment(valid().build())
        .await
        .expect_err("taken");
    assert!(matches!(taken, Error::AlreadyExists { .. }), "{taken:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_are_not_found_or_invalid() {
    let server = TestServer::start().await;
    let client = &server.client;
    let not_found = |result: Result<(), Error>| matches!(result, Err(Error::NotFound { .. }));
    assert!(not_found(client.get_workload(UNKNOWN_ID).await.map(drop)));
    assert!(not_found(client.start_workload(UNKNOWN_ID).await.map(drop)));
    assert!(not_found(
        client.stop_workload(UNKNOWN_ID, None).await.map(drop)
    ));
    assert!(not_found(
        client.restart_workload(UNKNOWN_ID).await.map(drop)
    ));
    assert!(not_found(client.delete_workload(UNKNOWN_ID).await));
    assert!(not_found(client.get_logs(UNKNOWN_ID, 0, 0).await.map(drop)));
    assert!(not_found(client.get_deployment(UNKNOWN_ID).await.map(drop)));
    assert!(not_found(
        client.delete_deployment(UNKNOWN_ID).await.map(drop)
    ));
    assert!(not_found(
        client.create_workload(UNKNOWN_ID).await.map(drop)
    ));

    let malformed = client
        .get_workload("../etc/passwd")
        .await
        .expect_err("malformed");
    assert_eq!(violated_fields(malformed), ["workload_id"]);
    let empty = client.create_workload("").await.expect_err("empty");
    assert_eq!(violated_fields(empty), ["deployment_id"]);
    let bad_filter = client
        .watch_events(WatchEventsRequest {
            workload_id: "nope".into(),
            ..WatchEventsRequest::default()
        })
        .await
        .map(drop)
        .expect_err("bad filter");
    assert_eq!(violated_fields(bad_filter), ["workload_id"]);
    let bad_stage = client
        .list_workloads(ListWorkloadsRequest {
            stages: vec![42],
            ..ListWorkloadsRequest::default()
        })
        .await
        .expect_err("bad stage");
    assert_eq!(violated_fields(bad_stage), ["stages[0]"]);
    let bad_token = client
        .list_workloads(ListWorkloadsRequest {
            page_token: "garbage".into(),
            ..ListWorkloadsRequest::default()
        })
        .await
        .expect_err("bad token");
    assert_eq!(violated_fields(bad_token), ["page_token"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_addressed_through_another_deployment_is_not_found() {
    let server = TestServer::start().await;
    server.service_dir("a");
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("a")
                .service_path("a")
                .command(["sleep", "300"]),
        )
        .await;
    let other = server
        .client
        .create_deployment(
            DeploymentBuilder::new("b")
                .service_path("a")
                .command(["sleep", "1"])
                .build(),
        )
        .await
        .expect("other deployment");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.address))
        .expect("endpoint")
        .connect()
        .await
        .expect("raw channel");
    let authorization: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", server.admin_token())
            .parse()
            .expect("header value");
    let mut raw =
        slipway_sdk::proto::workload_service_client::WorkloadServiceClient::with_interceptor(
            channel,
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
                Ok(request)
            },
        );
    let status = raw
        .start_workload(slipway_sdk::proto::StartWorkloadRequest {
            workload_id: workload.id.clone(),
            deployment_id: other.id.clone(),
        })
        .await
        .map(drop)
        .expect_err("mismatched deployment");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let unchanged = server.client.get_workload(&workload.id).await.expect("get");
    assert_eq!(unchanged.stage(), Stage::Pending);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_deployment_and_stage_and_page() {
    let server = TestServer::start().await;
    server.service_dir("svc");
    let deployment = server
        .client
        .create_deployment(
            DeploymentBuilder::new("svc")
                .service_path("svc")
                .command(["sleep", "300"])
                .build(),
        )
        .await
        .expect("deployment");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            server
                .client
                .create_workload(&deployment.id)
                .await
                .expect("workload")
                .id,
        );
    }
    server.stop_workload(&ids[0]).await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = server
            .client
            .list_workloads(ListWorkloadsRequest {
                deployment_id: deployment.id.clone(),
                page_size: 2,
                page_token: page_token.clone(),
                ..ListWorkloadsRequest::default()
            })
            .await
            .expect("page");
        assert!(page.workloads.len() <= 2);
        seen.extend(page.workloads.into_iter().map(|workload| workload.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        seen, ids,
        "pages list every workload once, in creation order"
    );
    let stopped = server
        .client
        .list_workloads(ListWorkloadsRequest {
            stages: vec![Stage::Stopped.into()],
            ..ListWorkloadsRequest::default()
        })
        .await
        .expect("stopped");
    assert_eq!(
        stopped
            .workloads
            .iter()
            .map(|w| w.id.clone())
            .collect::<Vec<_>>(),
        [ids[0].clone()]
    );
    server.stop().await;
}
