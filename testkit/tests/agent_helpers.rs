//! The SDK's helpers for agents against a real server: `run` to a running,
//! ready workload or a typed failure, lookups by name done by the server,
//! `ensure_running`, the service's own tail, `wait_for` a condition with a
//! timeout, and ids in their hyphenated UUID form.

use std::time::Duration;

use slipway_sdk::{
    Condition, DeploymentBuilder, Error, LogSource,
    proto::{ListWorkloadsRequest, Stage, Stream},
};
use slipway_testkit::{PATIENCE, TestServer, http_get};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");

fn web(name: &str) -> DeploymentBuilder {
    DeploymentBuilder::new(name)
        .command([SAMPLE, "http"])
        .env("GREETING_NAME", name)
        .listen()
        .http_readiness("/health")
        .stop_grace_period_seconds(5)
}

/// The hyphenated UUID form of a 32-digit id.
fn hyphenated(id: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_a_running_ready_workload_found_by_name() {
    let server = TestServer::start().await;
    let workload = server.client.run(web("web")).await.expect("run");
    assert_eq!(workload.stage(), Stage::Running);
    // Ready means it answers now, not later.
    let (status, body) = http_get(workload.port as u16, "/").expect("it serves");
    assert_eq!((status, body.as_str()), (200, "hello from web\n"));

    let deployment = server
        .client
        .get_deployment_by_name("web", None)
        .await
        .expect("by name");
    assert_eq!(deployment.id, workload.deployment_id);
    let workloads = server.client.workloads_of("web").await.expect("by name");
    let ids: Vec<&str> = workloads.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, [workload.id.as_str()]);

    // One way of naming the deployment at a time.
    let both = server
        .client
        .list_workloads(ListWorkloadsRequest {
            deployment_id: deployment.id.clone(),
            deployment_name: "web".to_owned(),
            ..ListWorkloadsRequest::default()
        })
        .await;
    match both {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert_eq!(violations[0].field, "deployment_name");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    // Within a project: a deployment of no project is not found in "shop".
    match server
        .client
        .get_deployment_by_name("web", Some("shop"))
        .await
    {
        Err(Error::NotFound { message }) => assert!(message.contains("shop"), "{message}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let cart = server
        .client
        .create_deployment(
            DeploymentBuilder::new("cart")
                .project("shop")
                .command(["true"])
                .build(),
        )
        .await
        .expect("a deployment in shop");
    let found = server
        .client
        .get_deployment_by_name("cart", Some("shop"))
        .await
        .expect("found in its project");
    assert_eq!(found.id, cart.id);
    match server.client.workloads_of("nothing-here").await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    match server
        .client
        .get_deployment_by_name("bad name!", None)
        .await
    {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert_eq!(violations[0].field, "name");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    // Ids in their hyphenated UUID form name the same things.
    let by_uuid = server
        .client
        .get_workload(&hyphenated(&workload.id))
        .await
        .expect("hyphenated workload id");
    assert_eq!(by_uuid.id, workload.id);
    let by_uuid = server
        .client
        .get_deployment(&hyphenated(&deployment.id).to_uppercase())
        .await
        .expect("hyphenated deployment id");
    assert_eq!(by_uuid.id, deployment.id);

    server.delete_deployment(&deployment.id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_says_where_and_why_and_the_tail_shows_the_service_lines() {
    let server = TestServer::start().await;
    let failing = DeploymentBuilder::new("broken").command([
        "sh",
        "-c",
        "echo starting up; echo 'config.toml: no such file' >&2; exit 3",
    ]);
    let failure = match server.client.run(failing).await {
        Err(Error::OperationFailed(failure)) => failure,
        other => panic!("expected OperationFailed, got {other:?}"),
    };
    assert_eq!(failure.current_stage, Stage::Failed);
    assert_eq!(failure.stage, Stage::Deploy);
    assert_eq!(failure.exit_code, Some(3));
    assert!(!failure.reason.is_empty());

    // The service's own lines, not Slipway's.
    let tail = server
        .client
        .logs_tail(&failure.workload_id, 10)
        .await
        .expect("tail");
    // (Two pipes: the order between stdout and stderr lines is not kept.)
    let mut messages: Vec<&str> = tail.iter().map(|line| line.message.as_str()).collect();
    messages.sort_unstable();
    assert_eq!(messages, ["config.toml: no such file", "starting up"]);
    // With the system lines, Slipway's account of the run is there too.
    let everything = server
        .client
        .logs_tail_from(&failure.workload_id, 100, LogSource::All)
        .await
        .expect("tail with system lines");
    assert!(
        everything
            .iter()
            .any(|line| line.stream() == Stream::System),
        "{everything:?}"
    );
    assert!(everything.len() > tail.len());

    // The name is still taken (the failed deployment is kept for inspection).
    match server
        .client
        .run(DeploymentBuilder::new("broken").command(["true"]))
        .await
    {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // A refused spec names the field and creates nothing.
    match server.client.run(DeploymentBuilder::new("empty")).await {
        Err(Error::InvalidArgument { violations, .. }) => {
            assert!(
                violations.iter().any(|v| v.field.starts_with("spec")),
                "{violations:?}"
            );
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert!(matches!(
        server.client.get_deployment_by_name("empty", None).await,
        Err(Error::NotFound { .. })
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_running_reuses_a_running_workload_or_starts_one() {
    let server = TestServer::start().await;
    let first = server.client.run(web("api")).await.expect("run");

    // Running: the same workload, nothing new.
    let again = server.client.ensure_running("api").await.expect("ensure");
    assert_eq!(again.id, first.id);
    assert_eq!(
        server.client.workloads_of("api").await.expect("list").len(),
        1
    );

    // Stopped: a new workload is started.
    server.stop_workload(&first.id).await;
    let second = server.client.ensure_running("api").await.expect("ensure");
    assert_ne!(second.id, first.id);
    assert_eq!(second.stage(), Stage::Running);
    let (status, _) = http_get(second.port as u16, "/health").expect("it serves");
    assert_eq!(status, 200);

    // A pending workload is started rather than another one made.
    server.stop_workload(&second.id).await;
    let pending = server
        .client
        .create_workload(&second.deployment_id)
        .await
        .expect("pending");
    let third = server.client.ensure_running("api").await.expect("ensure");
    assert_eq!(third.id, pending.id);
    assert_eq!(
        server.client.workloads_of("api").await.expect("list").len(),
        3
    );

    match server.client.ensure_running("no-such-deployment").await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    server.delete_deployment(&third.deployment_id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_condition_within_a_timeout() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(
            DeploymentBuilder::new("short")
                .command(["sleep", "300"])
                .no_readiness()
                .min_ready_ms(0),
        )
        .await;

    // Not started: waiting for RUNNING times out, and says so.
    match server
        .client
        .wait_for(&workload.id, Stage::Running, Duration::from_millis(300))
        .await
    {
        Err(error @ Error::TimedOut { .. }) => assert!(error.is_retryable()),
        other => panic!("expected TimedOut, got {other:?}"),
    }

    let client = server.client.clone();
    let id = workload.id.clone();
    let settled =
        tokio::spawn(async move { client.wait_for(&id, Condition::Settled, PATIENCE).await });
    server.start_workload(&workload.id).await;
    let settled = settled.await.expect("task").expect("settled");
    assert_eq!(settled.stage(), Stage::Running);

    let client = server.client.clone();
    let id = workload.id.clone();
    let over =
        tokio::spawn(async move { client.wait_for(&id, Condition::Terminal, PATIENCE).await });
    server.stop_workload(&workload.id).await;
    let over = over.await.expect("task").expect("terminal");
    assert_eq!(over.stage(), Stage::Stopped);

    // Stopped: RUNNING can no longer come without another operation.
    match server
        .client
        .wait_for(&workload.id, Condition::Healthy, PATIENCE)
        .await
    {
        Err(Error::UnexpectedStage { workload, wanted }) => {
            assert_eq!(workload.stage(), Stage::Stopped);
            assert_eq!(wanted, Stage::Running);
        }
        other => panic!("expected UnexpectedStage, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_keeps_its_cause_and_is_retryable() {
    // A port nobody listens on: bound, then released.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let error = slipway_sdk::Client::connect(format!("http://{address}"))
        .await
        .expect_err("nobody listens");
    assert!(error.is_retryable(), "{error}");
    let message = error.to_string().to_lowercase();
    assert!(message.contains("connection refused"), "{message}");
    assert!(std::error::Error::source(&error).is_some());
}
