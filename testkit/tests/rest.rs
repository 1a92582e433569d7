//! REST and SSE on the gRPC port, as the source documents describe them:
//! stop, restart, the `InvalidState` error of a second stop, the same tokens
//! and roles as gRPC, bad input naming the field, and SSE streams resumed
//! with `Last-Event-ID` with no gap and no duplicate.

use serde_json::{Value, json};
use slipway_sdk::{DeploymentBuilder, NewToken, proto::ListAuditRequest};
use slipway_testkit::{TestServer, rest::Rest, until};

fn actions(workload: &Value) -> Vec<&str> {
    workload["allowedActions"]
        .as_array()
        .map(|actions| actions.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_restart_and_a_second_stop_answer_as_the_source_documents_say() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let (deployment, workload) = server
        .deploy(
            DeploymentBuilder::new("web")
                .command(["sleep", "300"])
                .stop_grace_period_seconds(5),
        )
        .await;
    let id = &workload.id;

    let (status, body) = rest
        .post(&format!("/api/workloads/{id}/start"), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "running");
    let (status, body) = rest.get(&format!("/api/workloads/{id}/status")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["deploymentId"], json!(deployment.id));
    assert!(actions(&body).contains(&"stop"), "{body}");

    let scoped = format!("/api/deployments/{}/workloads/{id}", deployment.id);
    let (status, body) = rest.post(&format!("{scoped}/stop"), Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "stopped");
    assert!(actions(&body).contains(&"restart"), "{body}");
    assert!(!actions(&body).contains(&"stop"), "{body}");

    // A second stop: 409 with the documents' error body, exactly.
    let (status, body) = rest.post(&format!("{scoped}/stop"), Value::Null).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body,
        json!({
            "error": "InvalidState",
            "message": "Cannot stop workload: already stopped",
            "workloadId": id,
            "currentStage": "stopped",
        })
    );

    let (status, body) = rest.post(&format!("{scoped}/restart"), Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stage"], "running");
    assert_eq!(body["generation"], 2);
    // gRPC on the same port sees the same workload.
    let seen = server.client.get_workload(id).await.expect("get over gRPC");
    assert_eq!(seen.generation, 2);
    assert_eq!(seen.stage(), slipway_sdk::proto::Stage::Running);

    let (status, body) = rest.get(&format!("{scoped}/logs")).await;
    assert_eq!(status, 200, "{body}");
    let seqs: Vec<u64> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["seq"].as_u64().expect("seq"))
        .collect();
    assert!(!seqs.is_empty());
    assert!(
        seqs.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{seqs:?}"
    );
    assert_eq!(body["lastSeq"], json!(seqs.last()));

    // The workload under another deployment's path is not found there.
    let (other, _) = server
        .deploy(DeploymentBuilder::new("other").command(["sleep", "300"]))
        .await;
    let elsewhere = format!("/api/deployments/{}/workloads/{id}", other.id);
    let (status, body) = rest.post(&format!("{elsewhere}/stop"), Value::Null).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "NotFound");
    let (status, _) = rest.get(&format!("{elsewhere}/logs")).await;
    assert_eq!(status, 404);
    let (status, body) = rest.get(&format!("/api/workloads/{id}/status")).await;
    assert_eq!((status, &body["stage"]), (200, &json!("running")));

    // wait=false answers once the stop is accepted; it goes on server-side.
    let (status, body) = rest
        .post(&format!("/api/workloads/{id}/stop?wait=false"), Value::Null)
        .await;
    assert_eq!(status, 202, "{body}");
    server
        .wait_for(id, slipway_sdk::proto::Stage::Stopped)
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_and_workloads_are_created_and_listed() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let (status, deployment) = rest
        .post(
            "/api/deployments",
            json!({
                "name": "api",
                "project": "shop",
                "command": ["sleep", "300"],
                "env": {"MODE": "test"},
                "secretEnv": {"API_KEY": "hunter2-secret"},
                "restart": {"mode": "on-failure", "maxRestarts": 3},
            }),
        )
        .await;
    assert_eq!(status, 201, "{deployment}");
    assert_eq!(deployment["name"], "api");
    assert_eq!(deployment["project"], "shop");
    assert_eq!(deployment["spec"]["env"]["MODE"], "test");
    assert_eq!(deployment["spec"]["secretEnvNames"], json!(["API_KEY"]));
    assert_eq!(
        deployment["spec"]["restart"],
        json!({"mode": "on-failure", "maxRestarts": 3})
    );
    assert!(
        !deployment.to_string().contains("hunter2-secret"),
        "a secret in a response: {deployment}"
    );
    let deployment_id = deployment["id"].as_str().expect("id").to_owned();

    let (status, workload) = rest
        .post(
            &format!("/api/deployments/{deployment_id}/workloads"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 201, "{workload}");
    assert_eq!(workload["stage"], "pending");
    let (status, second) = rest
        .post("/api/workloads", json!({"deploymentId": deployment_id}))
        .await;
    assert_eq!(status, 201, "{second}");

    let (status, listed) = rest.get("/api/deployments?project=shop").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deployments"].as_array().map(Vec::len), Some(1));
    let (status, listed) = rest
        .get(&format!("/api/deployments/{deployment_id}/workloads"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let mut ids: Vec<&str> = listed["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter_map(|workload| workload["id"].as_str())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![
        workload["id"].as_str().expect("id"),
        second["id"].as_str().expect("id"),
    ];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let (status, fetched) = rest.get(&format!("/api/deployments/{deployment_id}")).await;
    assert_eq!((status, &fetched["name"]), (200, &json!("api")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_apply_as_on_grpc() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("web").command(["sleep", "300"]))
        .await;
    let id = &workload.id;

    let anonymous = Rest::new(server.address, None);
    let (status, body) = anonymous.get(&format!("/api/workloads/{id}/status")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "Unauthenticated");
    let (status, _) = anonymous.get("/metrics").await;
    assert_eq!(status, 401);
    let forged = Rest::new(server.address, Some("slw_not_a_token"));
    let (status, body) = forged.get(&format!("/api/workloads/{id}/status")).await;
    assert_eq!(status, 401, "{body}");

    let (_, viewer_token) = server
        .client
        .create_token(NewToken {
            name: "watcher".to_owned(),
            role: "viewer".to_owned(),
            projects: Vec::new(),
            expires_in: None,
        })
        .await
        .expect("a viewer token");
    let viewer = Rest::new(server.address, Some(&viewer_token));
    let (status, body) = viewer.get(&format!("/api/workloads/{id}/status")).await;
    assert_eq!((status, &body["stage"]), (200, &json!("pending")), "{body}");
    let (status, body) = viewer
        .post(&format!("/api/workloads/{id}/start"), Value::Null)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "PermissionDenied");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("operator")),
        "{body}"
    );
    assert!(!body.to_string().contains(&viewer_token));

    // The refusal is in the audit trail, as the gRPC method it stands for.
    let audit = until("the refused start in the audit trail", || async {
        let records = server
            .client
            .list_audit(ListAuditRequest::default())
            .await
            .expect("audit");
        records
            .into_iter()
            .find(|record| record.action == "StartWorkload" && record.actor == "watcher")
    })
    .await;
    assert_eq!(audit.result, "PERMISSION_DENIED");

    // A project-scoped token sees its project only.
    let (_, scoped_token) = server
        .client
        .create_token(NewToken {
            name: "shop-operator".to_owned(),
            role: "operator".to_owned(),
            projects: vec!["shop".to_owned()],
            expires_in: None,
        })
        .await
        .expect("a scoped token");
    let scoped = Rest::new(server.address, Some(&scoped_token));
    let (status, body) = scoped
        .post(&format!("/api/workloads/{id}/start"), Value::Null)
        .await;
    assert_eq!(status, 403, "{body}");
    let stream = scoped
        .sse("/api/projects/other/deployments/stream", None)
        .await;
    assert_eq!(stream.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_field() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let (status, body) = rest.post("/api/workloads/nope/stop", Value::Null).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "InvalidArgument");
    assert_eq!(body["fields"][0]["field"], "workload_id");

    let (status, body) = rest
        .post("/api/deployments", json!({"command": "sleep 300"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["fields"][0]["field"], "command");
    let (status, body) = rest
        .post("/api/deployments", json!({"comand": ["sleep", "300"]}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("comand"))
    );

    // A malformed secret is named, never quoted.
    let (status, body) = rest
        .post("/api/deployments", json!({"secretEnv": "hunter2-secret"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["fields"][0]["field"], "secretEnv");
    assert!(!body.to_string().contains("hunter2"), "{body}");
    let (status, body) = rest
        .post(
            "/api/deployments",
            json!({"command": ["sleep", "1"], "restart": {"mode": "sometimes"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["fields"][0]["field"], "restart.mode");

    let stream = rest
        .sse("/api/projects/-/deployments/stream", Some("yesterday"))
        .await;
    assert_eq!(stream.status, 400);
    let (status, body) = rest.get("/api/nothing/here").await;
    assert_eq!((status, &body["error"]), (404, &json!("NotFound")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_stream_resumed_with_last_event_id_has_no_gap_and_no_duplicate() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("talker")
                .command([
                    "sh",
                    "-c",
                    "for i in $(seq 1 40); do echo line $i; done; exec sleep 300",
                ])
                .stop_grace_period_seconds(5),
        )
        .await;
    let id = &workload.id;
    server.start_workload(id).await;
    let path = format!("/api/workloads/{id}/logs/stream");

    let mut seen: Vec<(u64, String)> = Vec::new();
    let mut stream = rest.sse(&path, None).await;
    assert_eq!(stream.status, 200);
    while seen.len() < 10 {
        let event = stream.next().await.expect("a log event");
        assert_eq!(event.event, "log", "{event:?}");
        seen.push((
            event.number(),
            event.json()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    drop(stream);

    // Resumed after the last id read: the rest of the log, then the lines of
    // the stop, then the end of the run.
    let last = seen.last().map(|(seq, _)| seq.to_string());
    let mut stream = rest.sse(&path, last.as_deref()).await;
    assert_eq!(stream.status, 200);
    let mut stopped = false;
    loop {
        let event = stream.next().await.expect("an event before the end");
        match event.event.as_str() {
            "log" => {
                let message = event.json()["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if message == "line 40" && !stopped {
                    let (status, body) = rest
                        .post(&format!("/api/workloads/{id}/stop"), Value::Null)
                        .await;
                    assert_eq!(status, 200, "{body}");
                    stopped = true;
                }
                seen.push((event.number(), message));
            }
            "end" => break,
            other => panic!("unexpected event {other}: {event:?}"),
        }
    }
    assert!(stopped, "line 40 was streamed");
    let seqs: Vec<u64> = seen.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq once, in order");
    let messages: Vec<String> = seen.into_iter().map(|(_, message)| message).collect();
    assert_eq!(messages, server.log_messages(id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployments_stream_sends_a_snapshot_then_updates_and_resumes_after_a_disconnect() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let (shop, workload) = server
        .deploy(
            DeploymentBuilder::new("shop-web")
                .project("shop")
                .command(["sleep", "300"])
                .stop_grace_period_seconds(5),
        )
        .await;
    let (_, elsewhere) = server
        .deploy(
            DeploymentBuilder::new("other-web")
                .project("other")
                .command(["sleep", "300"]),
        )
        .await;
    let path = "/api/projects/shop/deployments/stream";

    let mut stream = rest.sse(path, None).await;
    assert_eq!(stream.status, 200);
    let init = stream.next().await.expect("the init event");
    assert_eq!(init.event, "init");
    let revision = init.number();
    let snapshot = init.json();
    assert_eq!(snapshot["revision"], revision);
    let deployments = snapshot["deployments"].as_array().expect("deployments");
    assert_eq!(deployments.len(), 1, "{snapshot}");
    assert_eq!(deployments[0]["id"], json!(shop.id));
    assert_eq!(deployments[0]["workloads"][0]["id"], json!(workload.id));
    assert_eq!(deployments[0]["workloads"][0]["stage"], "pending");
    drop(stream);

    // While no one listens: the shop's workload starts and stops, another
    // project's starts.
    let (status, body) = rest
        .post(
            &format!("/api/workloads/{}/start", workload.id),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.start_workload(&elsewhere.id).await;
    let (status, body) = rest
        .post(&format!("/api/workloads/{}/stop", workload.id), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    let last_revision = body["revision"].as_u64().expect("revision");

    // Resumed: no new snapshot, every shop event after the init's revision.
    let mut stream = rest.sse(path, Some(&revision.to_string())).await;
    assert_eq!(stream.status, 200);
    let mut revisions = Vec::new();
    loop {
        let event = stream.next().await.expect("an update");
        match event.event.as_str() {
            "workload-update" => {
                let update = event.json();
                assert_eq!(update["deploymentId"], json!(shop.id), "{update}");
                assert_eq!(update["revision"], event.number());
                revisions.push(event.number());
                if event.number() >= last_revision {
                    assert_eq!(update["workload"]["stage"], "stopped");
                    break;
                }
            }
            "ping" => {}
            other => panic!("unexpected event {other}: {event:?}"),
        }
    }
    let expected: Vec<u64> = server
        .events_through(last_revision)
        .await
        .into_iter()
        .filter(|event| event.deployment_id == shop.id && event.revision > revision)
        .map(|event| event.revision)
        .collect();
    assert_eq!(revisions, expected, "no gap, no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_holds_one_of_the_clients_streams() {
    let server = TestServer::start_with(|config| config.limits.max_streams_per_client = 1).await;
    let rest = server.rest();
    let path = "/api/projects/-/deployments/stream";
    let mut first = rest.sse(path, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.next().await.expect("init").event, "init");
    let second = rest.sse(path, None).await;
    assert_eq!(second.status, 429);
    drop(first);
    let again = until("the stream slot given back", || async {
        let stream = rest.sse(path, None).await;
        (stream.status == 200).then_some(stream)
    })
    .await;
    assert_eq!(again.status, 200);
}
