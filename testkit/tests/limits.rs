//! Limits on every RPC: the request rate per client and the open streams per
//! client, refused with RESOURCE_EXHAUSTED naming the limit while other
//! clients go on.

use std::time::Instant;

use futures::StreamExt;
use slipway_sdk::{
    Client, Error, NewToken,
    proto::{ListDeploymentsRequest, WatchEventsRequest},
};
use slipway_testkit::{PATIENCE, TestServer};
use tonic::Code;

async fn viewer(server: &TestServer, name: &str) -> Client {
    let token = server
        .client
        .create_token(NewToken {
            name: name.to_owned(),
            role: "viewer".to_owned(),
            ..NewToken::default()
        })
        .await
        .expect("create token")
        .1;
    server.client_with_token(&token).await
}

fn is_exhausted(error: &Error, flag: &str) -> bool {
    matches!(error, Error::Other { code: Code::ResourceExhausted, message } if message.contains(flag))
}

/// 10,000 calls from one token: the excess over the burst and the rate is
/// refused, while another token's calls, made meanwhile, all go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_client_is_refused_while_others_go_on() {
    const RATE: u32 = 100;
    const BURST: u32 = 200;
    let server = TestServer::start_with(|config| {
        config.limits.rate_limit = RATE;
        config.limits.rate_burst = BURST;
    })
    .await;
    let flooder = viewer(&server, "flooder").await;
    let other = viewer(&server, "other").await;
    let started = Instant::now();
    let flood = futures::stream::iter(0..10_000)
        .map(|_| {
            let flooder = flooder.clone();
            async move { flooder.list_nodes(false).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let others = async {
        for _ in 0..50 {
            other
                .list_deployments(ListDeploymentsRequest::default())
                .await
                .expect("another client's calls go on during the flood");
        }
    };
    let (results, ()) = tokio::time::timeout(PATIENCE * 4, async { tokio::join!(flood, others) })
        .await
        .expect("the flood ends in time");
    let elapsed = started.elapsed().as_secs_f64();
    let mut allowed = 0;
    let mut refused = 0;
    for result in results {
        match result {
            Ok(_) => allowed += 1,
            Err(error) if is_exhausted(&error, "--rate-limit") => refused += 1,
            Err(error) => panic!("a flooding call failed otherwise: {error:?}"),
        }
    }
    let most = f64::from(BURST) + f64::from(RATE) * elapsed + 1.0;
    assert!(
        allowed >= BURST as usize,
        "the burst goes through: {allowed}"
    );
    assert!(
        (allowed as f64) <= most,
        "{allowed} allowed in {elapsed:.1}s, at most {most:.0}"
    );
    assert_eq!(allowed + refused, 10_000);
    // The administrator's own bucket was never touched.
    server
        .client
        .list_tokens()
        .await
        .expect("the admin goes on too");
    server.stop().await;
}

/// A client may keep `--max-streams-per-client` streams open; one more is
/// refused until one of them ends. Other clients are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_capped_per_client() {
    let server = TestServer::start_with(|config| config.limits.max_streams_per_client = 2).await;
    let watcher = viewer(&server, "watcher").await;
    let first = watcher
        .watch_events(WatchEventsRequest::default())
        .await
        .expect("first stream");
    let _second = watcher
        .watch_events(WatchEventsRequest::default())
        .await
        .expect("second stream");
    match watcher.watch_events(WatchEventsRequest::default()).await {
        Err(error) if is_exhausted(&error, "--max-streams-per-client") => {}
        Err(other) => panic!("a third stream failed otherwise: {other:?}"),
        Ok(_) => panic!("a third stream was accepted"),
    }
    // Unary calls are not streams.
    watcher
        .list_deployments(ListDeploymentsRequest::default())
        .await
        .expect("a unary call");
    let _admins = server
        .client
        .watch_events(WatchEventsRequest::default())
        .await
        .expect("another client's stream");

    drop(first);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let _third = loop {
        match watcher.watch_events(WatchEventsRequest::default()).await {
            Ok(stream) => break stream,
            Err(error) if is_exhausted(&error, "--max-streams-per-client") => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the closed stream's place never came back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    };
    server.stop().await;
}

/// A request message over `--max-message-bytes` is refused, naming the limit;
/// smaller ones go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_size_limit_are_refused() {
    let server = TestServer::start_with(|config| config.limits.max_message_bytes = 4096).await;
    let deployment = |name: &str, value_bytes: usize| {
        slipway_sdk::DeploymentBuilder::new(name)
            .service_path(".")
            .command(["true"])
            .env("PADDING", "x".repeat(value_bytes))
            .build()
    };
    server
        .client
        .create_deployment(deployment("small", 1024))
        .await
        .expect("a message under the limit");
    match server
        .client
        .create_deployment(deployment("large", 8192))
        .await
    {
        Err(Error::Other {
            code: Code::OutOfRange,
            message,
        }) => assert!(message.contains("4096"), "{message}"),
        other => panic!("a message over the limit: {other:?}"),
    }
    server.stop().await;
}
