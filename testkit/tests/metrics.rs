//! `GET /metrics`, parsed by a Prometheus text-format parser: the counters
//! move as workloads start and fail, streams are counted while open.

use prometheus_parse::{Scrape, Value};
use slipway_sdk::{DeploymentBuilder, Error, proto::StreamLogsRequest};
use slipway_testkit::{TestServer, until};

async fn scrape(server: &TestServer) -> Scrape {
    let (status, content_type, text) = server.rest().text("/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert!(content_type.contains("openmetrics-text"), "{content_type}");
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("a valid scrape")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .find(|sample| {
            labels
                .iter()
                .all(|(key, wanted)| sample.labels.get(key) == Some(*wanted))
        })
        .and_then(|sample| match sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => Some(value),
            _ => None,
        })
}

/// Scrapes until the sample has `wanted`, and fails the test if it never does.
async fn until_value(server: &TestServer, name: &str, labels: &[(&str, &str)], wanted: f64) {
    let what = format!("{name}{labels:?} = {wanted}");
    until(&what, || async {
        (value(&scrape(server).await, name, labels) == Some(wanted)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_as_workloads_start_and_fail() {
    let server = TestServer::start().await;
    let before = scrape(&server).await;
    let started = [("operation", "start"), ("result", "succeeded")];
    assert_eq!(value(&before, "slipway_operations_total", &started), None);
    assert_eq!(
        value(&before, "slipway_workloads", &[("stage", "running")]),
        Some(0.0)
    );

    let (_, good) = server
        .deploy(DeploymentBuilder::new("good").command(["sleep", "300"]))
        .await;
    server.start_workload(&good.id).await;
    let after = scrape(&server).await;
    assert_eq!(
        value(&after, "slipway_operations_total", &started),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "slipway_rpc_requests_total",
            &[
                ("method", "slipway.v1.WorkloadService/StartWorkload"),
                ("code", "OK")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "slipway_workloads", &[("stage", "running")]),
        Some(1.0)
    );
    let memory = value(
        &after,
        "slipway_workload_memory_bytes",
        &[("workload_id", good.id.as_str()), ("runtime", "process")],
    );
    assert!(memory.is_some_and(|bytes| bytes > 0.0), "{memory:?}");
    assert!(
        value(
            &after,
            "slipway_workload_cpu_seconds",
            &[("workload_id", good.id.as_str())]
        )
        .is_some()
    );
    until_value(
        &server,
        "slipway_workload_start_duration_seconds_count",
        &[],
        1.0,
    )
    .await;
    // REST calls count as the gRPC method they stand for.
    let rest = server.rest();
    let status = format!("/api/workloads/{}/status", good.id);
    assert_eq!(rest.get(&status).await.0, 200);
    let anonymous = slipway_testkit::rest::Rest::new(server.address, None);
    assert_eq!(anonymous.get(&status).await.0, 401);
    let after = scrape(&server).await;
    let get_workload = ("method", "slipway.v1.WorkloadService/GetWorkload");
    assert_eq!(
        value(
            &after,
            "slipway_rpc_requests_total",
            &[get_workload, ("protocol", "rest"), ("code", "OK")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "slipway_rpc_requests_total",
            &[
                get_workload,
                ("protocol", "rest"),
                ("code", "UNAUTHENTICATED")
            ]
        ),
        Some(1.0)
    );
    until("log lines counted", || async {
        value(
            &scrape(&server).await,
            "slipway_log_lines_ingested_total",
            &[],
        )
        .filter(|lines| *lines > 0.0)
    })
    .await;

    // A start that fails in deploy with an exit code.
    let (_, bad) = server
        .deploy(DeploymentBuilder::new("bad").command(["sh", "-c", "echo boom; exit 3"]))
        .await;
    let (failed, _) = server.start_expecting_failure(&bad.id).await;
    assert_eq!(failed.exit_code, Some(3));
    let after = scrape(&server).await;
    assert_eq!(
        value(
            &after,
            "slipway_operations_total",
            &[
                ("operation", "start"),
                ("result", "failed"),
                ("stage", "deploy")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "slipway_rpc_requests_total",
            &[
                ("method", "slipway.v1.WorkloadService/StartWorkload"),
                ("code", "ABORTED")
            ]
        ),
        Some(1.0)
    );
    until_value(
        &server,
        "slipway_workload_failures_total",
        &[("stage", "deploy"), ("error_type", "exited")],
        1.0,
    )
    .await;
    assert_eq!(
        value(
            &scrape(&server).await,
            "slipway_workloads",
            &[("stage", "failed")]
        ),
        Some(1.0)
    );

    // A refused stop: counted by its code, on both counters.
    let refused = server.client.stop_workload(&bad.id, None).await;
    let refused = match refused {
        Err(error) => error,
        Ok(progress) => progress
            .finish()
            .await
            .expect_err("a stop of a failed workload"),
    };
    assert!(matches!(refused, Error::InvalidState { .. }), "{refused:?}");
    let after = scrape(&server).await;
    assert_eq!(
        value(
            &after,
            "slipway_operations_total",
            &[
                ("operation", "stop"),
                ("result", "refused"),
                ("code", "FAILED_PRECONDITION")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "slipway_rpc_requests_total",
            &[
                ("method", "slipway.v1.WorkloadService/StopWorkload"),
                ("code", "FAILED_PRECONDITION")
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_counted_while_open() {
    let server = TestServer::start().await;
    let (_, workload) = server
        .deploy(DeploymentBuilder::new("quiet").command(["sh", "-c", "echo hi; exec sleep 300"]))
        .await;
    server.start_workload(&workload.id).await;
    let sse = [("stream", "logs"), ("protocol", "sse")];
    let grpc = [("stream", "logs"), ("protocol", "grpc")];

    let mut stream = server
        .rest()
        .sse(&format!("/api/workloads/{}/logs/stream", workload.id), None)
        .await;
    assert_eq!(stream.status, 200);
    stream.next().await.expect("a first line");
    until_value(&server, "slipway_stream_subscribers", &sse, 1.0).await;
    drop(stream);
    until_value(&server, "slipway_stream_subscribers", &sse, 0.0).await;

    let request = StreamLogsRequest {
        workload_id: workload.id.clone(),
        follow: true,
        ..StreamLogsRequest::default()
    };
    let lines = server
        .client
        .stream_logs(request)
        .await
        .expect("stream logs");
    until_value(&server, "slipway_stream_subscribers", &grpc, 1.0).await;
    drop(lines);
    until_value(&server, "slipway_stream_subscribers", &grpc, 0.0).await;
}

mod needs_docker {
    use slipway_sdk::DeploymentBuilder;
    use slipway_testkit::{
        TestServer,
        docker::{Cleanup, test_image, unique_name},
        require_docker, until,
    };

    use super::{scrape, value};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_containers_cpu_and_memory_come_from_the_engines_stats() {
        require_docker!();
        let image = test_image();
        let server = TestServer::start().await;
        let mut cleanup = Cleanup::new();
        let (deployment, workload) = server
            .deploy(
                DeploymentBuilder::new(unique_name("metered"))
                    .image(image)
                    .command(["sh", "-c", "echo up; while :; do sleep 1; done"])
                    .stop_grace_period_seconds(5),
            )
            .await;
        cleanup.track(&deployment.id);
        server.start_workload(&workload.id).await;
        let labels = [("workload_id", workload.id.as_str()), ("runtime", "docker")];
        let memory = until("the container's memory in /metrics", || async {
            value(
                &scrape(&server).await,
                "slipway_workload_memory_bytes",
                &labels,
            )
            .filter(|bytes| *bytes > 0.0)
        })
        .await;
        assert!(memory > 0.0);
        let after = scrape(&server).await;
        assert!(value(&after, "slipway_workload_cpu_seconds", &labels).is_some());
        server.stop_workload(&workload.id).await;
        let stopped = scrape(&server).await;
        assert_eq!(
            value(&stopped, "slipway_workload_memory_bytes", &labels),
            None,
            "a stopped workload has no usage"
        );
    }
}
