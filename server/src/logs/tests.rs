//! The writer facing a database that refuses a line: on PostgreSQL (text cannot
//! hold NUL) a line sent past the sink's NUL replacement is refused; the batch
//! is split, the line replaced by a marker, and the rest stored. A reader shows
//! lines that could not be stored as a `dropped` marker.

use std::{collections::BTreeMap, time::Duration};

use sea_orm::{ConnectionTrait, Database};

use super::{LogPipeline, LogRetention, Message};
use crate::{
    domain::{
        DeploymentSpec, LogFilter, LogItem, LogLevel, LogLine, LogStream, NewLogLine, Stage,
        Workload,
    },
    orchestrator::{NewDeployment, Orchestrator, PortPool, Settings},
    runtime::fake::{FakeRuntime, Script},
    store::Store,
};

/// A store on a new PostgreSQL database, when `SLIPWAY_TEST_POSTGRES_URL` is set.
pub(crate) async fn postgres_store() -> Option<Store> {
    let admin_url = std::env::var("SLIPWAY_TEST_POSTGRES_URL").ok()?;
    let name = format!("slipway_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.expect("connect");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    admin.close().await.expect("close");
    let (base, _) = admin_url.rsplit_once('/').expect("a database url");
    Some(
        Store::connect(&format!("{base}/{name}"))
            .await
            .expect("store"),
    )
}

/// A workload stored in `store` (with its deployment), and the orchestrator
/// holding them.
pub(crate) async fn workload_in(store: &Store) -> (Orchestrator, Workload, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("root");
    let settings = Settings {
        root: root.path().canonicalize().expect("root"),
        shutdown_grace: Duration::from_secs(1),
        leave_on_shutdown: false,
        log_retention: LogRetention::default(),
        log_max_line_bytes: super::DEFAULT_MAX_LINE_BYTES,
        event_retention: 1000,
        health_retention: crate::orchestrator::HealthRetention::default(),
        node_id: crate::domain::NodeId::generate(),
    };
    let orchestrator = Orchestrator::start(
        store.clone(),
        vec![FakeRuntime::new(Script::runs([]))],
        PortPool::new(41100..=41110),
        settings,
    )
    .await
    .expect("orchestrator");
    let deployment = orchestrator
        .create_deployment(NewDeployment {
            name: String::new(),
            project: String::new(),
            service_path: ".".to_owned(),
            spec: DeploymentSpec::process(vec!["fake".to_owned()]),
            labels: BTreeMap::new(),
        })
        .await
        .expect("deployment");
    let workload = orchestrator
        .create_workload(&deployment.id)
        .await
        .expect("workload");
    (orchestrator, workload, root)
}

#[tokio::test]
async fn lines_that_could_not_be_stored_show_as_a_dropped_marker() {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let (_orchestrator, workload, _root) = workload_in(&store).await;
    let line = |seq: u64| LogLine {
        workload_id: workload.id.clone(),
        seq,
        generation: 1,
        timestamp: crate::domain::now(),
        stage: Stage::Running,
        level: LogLevel::Info,
        stream: LogStream::Stdout,
        message: format!("line {seq}"),
    };
    // Seqs 3 and 4 were given to lines the writer had to give up.
    store
        .append_log_lines(&[line(1), line(2), line(5)])
        .await
        .expect("append");
    let (pipeline, _writer) = LogPipeline::start(store.clone(), LogRetention::default(), 1024);
    let mut reader = pipeline.reader(&workload.id, 0, false, true, LogFilter::default());
    let mut items = Vec::new();
    while let Some(item) = reader.next().await {
        items.push(item.expect("item"));
    }
    let seen: Vec<String> = items
        .iter()
        .map(|item| match item {
            LogItem::Line(line) => line.message.clone(),
            LogItem::Dropped { through, count } => format!("dropped {count} through {through}"),
        })
        .collect();
    assert_eq!(seen, ["line 1", "line 2", "dropped 2 through 4", "line 5"]);
}

#[tokio::test]
async fn a_line_the_database_refuses_becomes_a_marker_and_the_rest_is_stored() {
    let Some(store) = postgres_store().await else {
        eprintln!("skipped: SLIPWAY_TEST_POSTGRES_URL is not set (SQLite stores NUL)");
        return;
    };
    let (_orchestrator, workload, _root) = workload_in(&store).await;
    let (pipeline, _writer) = LogPipeline::start(store.clone(), LogRetention::default(), 1024);
    for text in ["one", "a\0b", "three"] {
        // Straight to the writer: the sink would have replaced the NUL.
        pipeline
            .messages
            .send(Message::Line {
                workload_id: workload.id.clone(),
                generation: 1,
                stage: Stage::Running,
                line: NewLogLine::output(LogStream::Stdout, text.to_owned()),
            })
            .await
            .expect("send");
    }
    tokio::time::timeout(Duration::from_secs(20), pipeline.flush())
        .await
        .expect("the writer is not wedged");
    let lines = store
        .read_log_lines(&workload.id, 0, 10)
        .await
        .expect("read");
    let seqs: Vec<u64> = lines.iter().map(|line| line.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(lines[0].message, "one");
    assert_eq!(lines[1].stream, LogStream::System);
    assert!(
        lines[1].message.contains("could not be stored"),
        "{}",
        lines[1].message
    );
    assert_eq!(lines[2].message, "three");
}
