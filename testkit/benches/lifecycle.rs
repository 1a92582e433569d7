//! Control-path benchmarks, each next to a baseline measured in the same run on
//! the same machine:
//!
//! - start → RUNNING of a tiny listener (`sample-service http`) and of
//!   `python3 -m http.server`, both with TCP readiness, against spawning the same
//!   command and connecting until a connection is accepted;
//! - stop → STOPPED of the tiny listener against SIGTERM to it and reaping it;
//! - `GetWorkload` calls per second at 64 concurrent callers against
//!   `grpc.health.v1.Health/Check` on the same server;
//! - `ListWorkloads` of 1,000 workloads (p50).
//!
//! `cargo bench -p slipway-testkit --bench lifecycle [-- RUNS]` (default 7 runs;
//! medians and ranges are printed as a Markdown table for BENCHMARKS.md).
//! `cargo test -p slipway-testkit --bench lifecycle -- smoke` runs each row once,
//! briefly, to check that the benchmark works (CI does this; its figures mean
//! nothing in a debug build).

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use futures::future::join_all;
use slipway_sdk::{
    DeploymentBuilder,
    proto::{ListWorkloadsRequest, Stage},
};
use slipway_testkit::{Dirs, ServerProcess, port_range};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const SAMPLE: &str = env!("CARGO_BIN_EXE_sample-service");
const SERVER_PROCESS: &str = env!("CARGO_BIN_EXE_slipway-server-process");

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Spawns `argv` with `PORT` set and connects until a connection is accepted:
/// the time from spawn to the first accepted connection, and the child.
async fn raw_start(argv: &[&str]) -> (Duration, tokio::process::Child) {
    let port = free_port();
    let began = Instant::now();
    let child = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut delay = Duration::from_millis(1);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
    (began.elapsed(), child)
}

/// SIGTERM to a child and reaping it.
async fn raw_stop(mut child: tokio::process::Child) -> Duration {
    let pid = child.id().expect("pid") as i32;
    let began = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    child.wait().await.expect("reap");
    began.elapsed()
}

struct Server {
    process: ServerProcess,
    _dirs: Dirs,
}

async fn server() -> Server {
    let dirs = Dirs::new();
    let range = port_range();
    // The throughput rows drive one client as fast as it goes: the per-client
    // rate limit (1000/s by default) would measure the limit, not the server.
    let process = ServerProcess::start_with_args(
        SERVER_PROCESS,
        &dirs.data,
        &dirs.root,
        &format!("{}-{}", range.start(), range.end()),
        &["--rate-limit", "1000000", "--rate-burst", "1000000"],
    )
    .await;
    Server {
        process,
        _dirs: dirs,
    }
}

/// Start → RUNNING and stop → STOPPED through Slipway, of a TCP-ready command.
async fn served_start_stop(server: &Server, argv: &[&str]) -> (Duration, Duration) {
    let client = &server.process.client;
    let deployment = client
        .create_deployment(
            DeploymentBuilder::new(format!("bench-{}", uuid::Uuid::new_v4().simple()))
                .command(argv.iter().copied())
                .listen()
                .tcp_readiness()
                .stop_grace_period_seconds(10)
                .build(),
        )
        .await
        .expect("deployment");
    let workload = client
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    let began = Instant::now();
    let running = client
        .start_workload(&workload.id)
        .await
        .expect("start accepted")
        .finish()
        .await
        .expect("running");
    let start = began.elapsed();
    assert_eq!(running.stage(), Stage::Running);
    let began = Instant::now();
    client
        .stop_workload(&workload.id, None)
        .await
        .expect("stop accepted")
        .finish()
        .await
        .expect("stopped");
    let stop = began.elapsed();
    client
        .delete_deployment(&deployment.id)
        .await
        .expect("delete");
    (start, stop)
}

/// Calls per second of `call` at `callers` concurrent callers for `window`.
async fn rate<F, Fut>(callers: usize, window: Duration, call: F) -> f64
where
    F: Fn() -> Fut + Clone,
    Fut: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + window;
    let counts = join_all((0..callers).map(|_| {
        let call = call.clone();
        async move {
            let mut count = 0u64;
            while Instant::now() < deadline {
                call().await;
                count += 1;
            }
            count
        }
    }))
    .await;
    counts.iter().sum::<u64>() as f64 / window.as_secs_f64()
}

/// `calls` sequential `GetWorkload` calls: each one's latency in ms, sorted.
async fn latencies(client: &slipway_sdk::Client, id: &str, calls: usize) -> Vec<f64> {
    let mut all = Vec::with_capacity(calls);
    for _ in 0..calls {
        let began = Instant::now();
        client.get_workload(id).await.expect("get");
        all.push(ms(began.elapsed()));
    }
    all.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    all
}

/// The `percent`th percentile of sorted values.
fn percentile(sorted: &[f64], percent: usize) -> f64 {
    let index = (sorted.len() * percent / 100).min(sorted.len() - 1);
    sorted[index]
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> (T, T, T) {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    (
        values[0],
        values[values.len() / 2],
        values[values.len() - 1],
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with("--"))
        .collect();
    let smoke = arguments.iter().any(|argument| argument == "smoke");
    let runs: usize = if smoke {
        1
    } else {
        arguments
            .first()
            .and_then(|value| value.parse().ok())
            .unwrap_or(7)
    };
    let window = if smoke {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(3)
    };
    let server = server().await;
    let cases: [(&str, Vec<&str>); 2] = [
        ("a tiny listener", vec![SAMPLE, "http"]),
        (
            "python3 -m http.server",
            vec![
                "sh",
                "-c",
                "exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
            ],
        ),
    ];
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for (name, argv) in cases {
        let mut raw_starts = Vec::new();
        let mut raw_stops = Vec::new();
        let mut starts = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..runs {
            let (took, child) = raw_start(&argv).await;
            raw_starts.push(ms(took));
            raw_stops.push(ms(raw_stop(child).await));
            let (start, stop) = served_start_stop(&server, &argv).await;
            starts.push(ms(start));
            stops.push(ms(stop));
        }
        let (raw_low, raw_mid, raw_high) = median(raw_starts);
        let (low, mid, high) = median(starts);
        rows.push((
            format!("start → RUNNING, {name}"),
            format!("{mid:.1} ms ({low:.1}–{high:.1})"),
            format!(
                "raw spawn → first accepted connect {raw_mid:.1} ms ({raw_low:.1}–{raw_high:.1})"
            ),
            format!("{:.2}× (+{:.1} ms)", mid / raw_mid, mid - raw_mid),
        ));
        let (raw_low, raw_mid, raw_high) = median(raw_stops);
        let (low, mid, high) = median(stops);
        rows.push((
            format!("stop → STOPPED, {name}"),
            format!("{mid:.1} ms ({low:.1}–{high:.1})"),
            format!("SIGTERM + reap {raw_mid:.1} ms ({raw_low:.1}–{raw_high:.1})"),
            format!("+{:.1} ms", mid - raw_mid),
        ));
    }

    // Control calls against the health check, on the same server and connection.
    let client = server.process.client.clone();
    let deployment = client
        .create_deployment(
            DeploymentBuilder::new("bench-list")
                .command(["sleep", "1"])
                .build(),
        )
        .await
        .expect("deployment");
    let workloads = if smoke { 50 } else { 1000 };
    let mut first = None;
    for _ in 0..workloads {
        let workload = client
            .create_workload(&deployment.id)
            .await
            .expect("workload");
        first.get_or_insert(workload.id);
    }
    let first = first.expect("a workload");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.process.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("channel");
    let health = HealthClient::new(channel);
    let mut health_rates = Vec::new();
    let mut get_rates = Vec::new();
    for _ in 0..runs {
        health_rates.push(
            rate(64, window, || {
                let mut health = health.clone();
                async move {
                    health
                        .check(HealthCheckRequest::default())
                        .await
                        .expect("health");
                }
            })
            .await,
        );
        get_rates.push(
            rate(64, window, || {
                let client = client.clone();
                let id = first.clone();
                async move {
                    client.get_workload(&id).await.expect("get");
                }
            })
            .await,
        );
    }
    let (health_low, health_mid, health_high) = median(health_rates);
    let (get_low, get_mid, get_high) = median(get_rates);
    rows.push((
        "`GetWorkload`, 64 concurrent callers".to_owned(),
        format!("{get_mid:.0}/s ({get_low:.0}–{get_high:.0})"),
        format!("`Health/Check` {health_mid:.0}/s ({health_low:.0}–{health_high:.0})"),
        format!("{:.2}×", get_mid / health_mid),
    ));
    // GetWorkload latency, idle and while another workload floods its log.
    let calls = if smoke { 50 } else { 2000 };
    let idle = latencies(&client, &first, calls).await;
    let flood = client
        .create_deployment(
            DeploymentBuilder::new("bench-flood")
                .command(["yes", "flooding the log"])
                .build(),
        )
        .await
        .expect("flood deployment");
    let flooder = client.create_workload(&flood.id).await.expect("flooder");
    client
        .start_workload(&flooder.id)
        .await
        .expect("flood accepted")
        .finish()
        .await
        .expect("flooding");
    let flooded = latencies(&client, &first, calls).await;
    client
        .stop_workload(&flooder.id, None)
        .await
        .expect("stop accepted")
        .finish()
        .await
        .expect("flood stopped");
    let (idle_p50, idle_p99) = (percentile(&idle, 50), percentile(&idle, 99));
    let (flood_p50, flood_p99) = (percentile(&flooded, 50), percentile(&flooded, 99));
    rows.push((
        "`GetWorkload` during a `yes` flood of another workload".to_owned(),
        format!("p50 {flood_p50:.2} ms, p99 {flood_p99:.2} ms"),
        format!("idle p50 {idle_p50:.2} ms, p99 {idle_p99:.2} ms"),
        format!("p99 {:.2}×", flood_p99 / idle_p99),
    ));

    let mut lists = Vec::new();
    for _ in 0..runs.max(5) {
        let began = Instant::now();
        let page = client
            .list_workloads(ListWorkloadsRequest {
                page_size: workloads as u32,
                ..ListWorkloadsRequest::default()
            })
            .await
            .expect("list");
        lists.push(ms(began.elapsed()));
        assert_eq!(page.workloads.len(), workloads);
    }
    let (low, mid, high) = median(lists);
    rows.push((
        format!("`ListWorkloads` of {workloads}"),
        format!("{mid:.1} ms p50 ({low:.1}–{high:.1})"),
        "—".to_owned(),
        "—".to_owned(),
    ));
    let _ = server.process.terminate();

    println!("runs: {runs} (median, then min–max)\n");
    println!("| what | Slipway | baseline, same run | ratio |");
    println!("| --- | --- | --- | --- |");
    for (what, slipway, baseline, ratio) in rows {
        println!("| {what} | {slipway} | {baseline} | {ratio} |");
    }
}
