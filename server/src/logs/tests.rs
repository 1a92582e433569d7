//! The writer facing a database that refuses a line: on PostgreSQL (text cannot
//! hold NUL) a line sent past the sink's NUL replacement is refused; the batch
//! is split, the line replaced by a marker, and the rest stored.

use std::{collections::BTreeMap, time::Duration};

use sea_orm::{ConnectionTrait, Database};

use super::{LogPipeline, LogRetention, Message};
use crate::{
    domain::{DeploymentSpec, LogStream, NewLogLine, Stage},
    orchestrator::{NewDeployment, Orchestrator, PortPool, Settings},
    runtime::fake::{FakeRuntime, Script},
    store::Store,
};

/// A store on a new PostgreSQL database, when `SLIPWAY_TEST_POSTGRES_URL` is set.
async fn postgres_store() -> Option<Store> {
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

#[tokio::test]
async fn a_line_the_database_refuses_becomes_a_marker_and_the_rest_is_stored() {
    let Some(store) = postgres_store().await else {
        eprintln!("skipped: SLIPWAY_TEST_POSTGRES_URL is not set (SQLite stores NUL)");
        return;
    };
    let root = tempfile::tempdir().expect("root");
    let settings = Settings {
        root: root.path().canonicalize().expect("root"),
        shutdown_grace: Duration::from_secs(1),
        leave_on_shutdown: false,
        log_retention: LogRetention::default(),
        log_max_line_bytes: super::DEFAULT_MAX_LINE_BYTES,
        event_retention: 1000,
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
