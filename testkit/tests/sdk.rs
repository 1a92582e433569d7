//! The SDK's one-call helpers against a real server: the last lines of a
//! service, waiting on a condition with a timeout, and errors that say why.

use std::time::Duration;

use slipway_sdk::{Client, DeploymentBuilder, Error, proto::Stage};
use slipway_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_returns_the_services_own_last_lines() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("talker").command([
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo out $i; done; sleep 0.2; echo err 6 >&2; exec sleep 300",
        ]))
        .await;
    server.start_workload(&workload.id).await;
    // The stderr line comes after the stdout ones, on its own pipe.
    let waiting = async {
        while !server
            .log_messages(&workload.id)
            .await
            .contains(&"err 6".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the last line is stored");
    let tail = server
        .client
        .logs_tail(&workload.id, 3)
        .await
        .expect("tail");
    let messages: Vec<&str> = tail.iter().map(|entry| entry.message.as_str()).collect();
    assert_eq!(messages, ["out 4", "out 5", "err 6"]);
    server.stop_workload(&workload.id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_sees_a_condition_or_times_out() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("napper").command(["sleep", "300"]))
        .await;
    let client = server.client.clone();
    let id = workload.id.clone();
    let waiting = tokio::spawn(async move {
        client
            .wait_until(
                &id,
                |workload| workload.stage() == Stage::Running,
                Duration::from_secs(30),
            )
            .await
    });
    server.start_workload(&workload.id).await;
    let running = waiting.await.expect("task").expect("running seen");
    assert_eq!(running.stage(), Stage::Running);
    let never = server
        .client
        .wait_until(
            &workload.id,
            |workload| workload.generation > 5,
            Duration::from_millis(200),
        )
        .await;
    match never {
        Err(error @ Error::TimedOut { .. }) => assert!(error.is_retryable()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    server.stop_workload(&workload.id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_names_its_cause_and_is_retryable() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let error = Client::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect_err("nothing listens there");
    let message = error.to_string();
    assert!(
        message.to_lowercase().contains("refused"),
        "the cause is named: {message}"
    );
    assert!(error.is_retryable());
}
