//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text format
//! (`prometheus-client`): RPC counts and latencies (a tower layer, [`RpcMetricsLayer`]),
//! control operations and workload failures, start and build durations (from
//! the event log, [`watch_events`]), log lines ingested and dropped (the log
//! pipeline's counters), open streams, and at each scrape the workloads by
//! stage and the CPU and memory of this node's running workloads ([`usage`]).

mod layer;
mod usage;
mod watcher;

pub use layer::RpcMetricsLayer;
pub use watcher::watch_events;

use std::sync::{Arc, atomic::AtomicU64};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::{
    domain::{NodeId, Operation, Stage},
    logs::LogCounters,
    orchestrator::Orchestrator,
    store::WorkloadFilter,
};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
    /// `grpc`, or `rest` for a REST call (named as the gRPC method it stands for).
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    /// `succeeded`, `failed` (did not reach its goal) or `refused`.
    result: String,
    /// The stage a failed operation failed in (empty otherwise).
    stage: String,
    /// The code a refused operation was refused with (empty otherwise).
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    stage: String,
    error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    /// `logs` or `events`.
    stream: String,
    /// `grpc` or `sse`.
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    workload_id: String,
    deployment_id: String,
    runtime: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics. Cheap to clone; one set per server.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_seconds: HistogramFamily<MethodLabels>,
    workloads: Family<StageLabels, Gauge>,
    operations: Family<OperationLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    restarts: Counter,
    start_seconds: Histogram,
    build_seconds: Histogram,
    subscribers: Family<StreamLabels, Gauge>,
    cpu_seconds: Family<WorkloadLabels, Gauge<f64, AtomicU64>>,
    memory_bytes: Family<WorkloadLabels, Gauge>,
    usage: usage::UsageReader,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// A new set of metrics; `logs` are the log pipeline's counters.
    pub fn new(logs: &LogCounters) -> Metrics {
        let mut registry = Registry::with_prefix("slipway");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "Calls handled, by method, status code and protocol (REST calls by the gRPC method they stand for)",
            rpc_requests.clone(),
        );
        let rpc_seconds: HistogramFamily<MethodLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "rpc_duration_seconds",
            "Call durations (to the end of the response stream), by method and protocol",
            rpc_seconds.clone(),
        );
        let workloads = Family::<StageLabels, Gauge>::default();
        registry.register(
            "workloads",
            "Workloads by stage (every node of the cluster sees the same)",
            workloads.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operations",
            "Start, stop and restart operations asked of this node, by result",
            operations.clone(),
        );
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "workload_failures",
            "Runs of this node's workloads that failed, by the stage they failed in and the error type",
            failures.clone(),
        );
        let restarts = Counter::default();
        registry.register(
            "workload_policy_restarts",
            "Runs started again by a restart policy on this node",
            restarts.clone(),
        );
        let start_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "workload_start_duration_seconds",
            "From validate to running, for runs of this node",
            start_seconds.clone(),
        );
        let build_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "workload_build_duration_seconds",
            "Time spent in the build stage, for runs of this node",
            build_seconds.clone(),
        );
        registry.register(
            "log_lines_ingested",
            "Log lines stored by this node",
            logs.ingested.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines this node could not store or was not to store any more",
            logs.dropped.clone(),
        );
        let subscribers = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "stream_subscribers",
            "Log and event streams open now, by protocol",
            subscribers.clone(),
        );
        let cpu_seconds = Family::<WorkloadLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "workload_cpu_seconds",
            "CPU time used by the current run of this node's running workloads (cgroup, /proc or the engine's stats)",
            cpu_seconds.clone(),
        );
        let memory_bytes = Family::<WorkloadLabels, Gauge>::default();
        registry.register(
            "workload_memory_bytes",
            "Memory used by this node's running workloads (cgroup, /proc resident set or the engine's stats)",
            memory_bytes.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                rpc_requests,
                rpc_seconds,
                workloads,
                operations,
                failures,
                restarts,
                start_seconds,
                build_seconds,
                subscribers,
                cpu_seconds,
                memory_bytes,
                usage: usage::UsageReader::default(),
            }),
        }
    }

    /// Counts one call of `method` over `protocol` that ended with `code`
    /// after `seconds`.
    pub fn rpc_finished(&self, method: &str, protocol: &str, code: &str, seconds: f64) {
        self.inner
            .rpc_requests
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
                code: code.to_owned(),
                protocol: protocol.to_owned(),
            })
            .inc();
        self.inner
            .rpc_seconds
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
                protocol: protocol.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a control operation that reached its goal.
    pub fn operation_succeeded(&self, operation: Operation) {
        self.count_operation(operation, "succeeded", "", "");
    }

    /// Counts a control operation that failed in `stage`.
    pub fn operation_failed(&self, operation: Operation, stage: Stage) {
        self.count_operation(operation, "failed", stage.as_str(), "");
    }

    /// Counts a control operation refused with `code` (its canonical name).
    pub fn operation_refused(&self, operation: Operation, code: &str) {
        self.count_operation(operation, "refused", "", code);
    }

    fn count_operation(&self, operation: Operation, result: &str, stage: &str, code: &str) {
        self.inner
            .operations
            .get_or_create(&OperationLabels {
                operation: operation.as_str().to_owned(),
                result: result.to_owned(),
                stage: stage.to_owned(),
                code: code.to_owned(),
            })
            .inc();
    }

    /// One more open stream of kind `stream` (`logs` or `events`) over
    /// `protocol`; the count goes down when the guard is dropped.
    pub fn subscribe(&self, stream: &str, protocol: &str) -> SubscriberGuard {
        let gauge = self.inner.subscribers.get_or_create_owned(&StreamLabels {
            stream: stream.to_owned(),
            protocol: protocol.to_owned(),
        });
        gauge.inc();
        SubscriberGuard { gauge }
    }

    fn workload_failed(&self, stage: Stage, error_type: &str) {
        self.inner
            .failures
            .get_or_create(&FailureLabels {
                stage: stage.as_str().to_owned(),
                error_type: error_type.to_owned(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format, with the workloads by
    /// stage and the usage of this node's running workloads read now.
    pub async fn render(&self, orchestrator: &Orchestrator, node: &NodeId) -> String {
        self.refresh_workloads(orchestrator, node).await;
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
        {
            tracing::error!(%error, "could not encode the metrics");
        }
        text
    }

    async fn refresh_workloads(&self, orchestrator: &Orchestrator, node: &NodeId) {
        let mut counts = std::collections::HashMap::<Stage, i64>::new();
        let mut running = Vec::new();
        let mut cursor = None;
        let filter = WorkloadFilter::default();
        loop {
            let page = match orchestrator
                .list_workloads(&filter, cursor.as_ref(), 1000)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "metrics: could not list the workloads");
                    return;
                }
            };
            for workload in page.workloads {
                *counts.entry(workload.stage).or_default() += 1;
                if workload.stage == Stage::Running && workload.node_id.as_ref() == Some(node) {
                    running.push(workload);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        for stage in Stage::ALL {
            self.inner
                .workloads
                .get_or_create(&StageLabels {
                    stage: stage.as_str().to_owned(),
                })
                .set(counts.get(&stage).copied().unwrap_or(0));
        }
        self.inner.cpu_seconds.clear();
        self.inner.memory_bytes.clear();
        for workload in running {
            let Some(handle) = workload.runtime_id.as_deref() else {
                continue;
            };
            let Some(found) = self.inner.usage.read(handle).await else {
                continue;
            };
            let labels = WorkloadLabels {
                workload_id: workload.id.to_string(),
                deployment_id: workload.deployment_id.to_string(),
                runtime: found.runtime.to_owned(),
            };
            self.inner
                .cpu_seconds
                .get_or_create(&labels)
                .set(found.cpu_seconds);
            self.inner
                .memory_bytes
                .get_or_create(&labels)
                .set(i64::try_from(found.memory_bytes).unwrap_or(i64::MAX));
        }
    }
}

/// Holds one open stream in [`Metrics`]' count.
pub struct SubscriberGuard {
    gauge: Gauge,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
