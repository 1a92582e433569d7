//! The store suite: `Store` used directly, on SQLite by default and on a fresh
//! PostgreSQL database when `SLIPWAY_TEST_POSTGRES_URL` is set (CI runs both).
//! Foreign keys, the cascade of log lines, secrets kept out of the spec column,
//! conditional revisions, typed ids, and the create/delete race through a real server.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use sea_orm::{ConnectionTrait, Database, Statement};
use slipway_sdk::DeploymentBuilder;
use slipway_server::{
    domain::{
        Deployment, DeploymentId, DeploymentRevision, DeploymentSpec, Event, EventKind, LogLevel,
        LogLine, LogStream, Secret, Stage, Workload, WorkloadId, now,
    },
    store::{EventFilter, StateWrite, Store, StoreError, WorkloadFilter},
};
use slipway_testkit::{TestDatabase, TestServer};
use tonic::Code;

const SECRET_VALUE: &str = "sentinel-4b1d-store-secret";

/// A store on a new database, and the next event revision to commit with.
struct Fixture {
    store: Store,
    database: TestDatabase,
    revision: AtomicU64,
}

impl Fixture {
    async fn new() -> Fixture {
        let database = TestDatabase::create().await;
        let store = Store::connect(&database.url).await.expect("connect");
        Fixture {
            store,
            database,
            revision: AtomicU64::new(0),
        }
    }

    /// Commits `write` with an event of the deployment it concerns.
    async fn commit(&self, mut write: StateWrite) -> Result<(), StoreError> {
        let deployment_id = match &write {
            StateWrite::CreateDeployment(deployment) => deployment.id.clone(),
            StateWrite::DeleteDeployment(id) => id.clone(),
            StateWrite::UpdateDeployment { deployment, .. } => deployment.id.clone(),
            StateWrite::CreateWorkload(workload)
            | StateWrite::UpdateWorkload(workload)
            | StateWrite::ReassignWorkload { workload, .. } => workload.deployment_id.clone(),
            // The event's deployment is not checked; any id does.
            StateWrite::DeleteWorkload(_) => DeploymentId::generate(),
        };
        let mut event = Event {
            revision: self.revision.fetch_add(1, Ordering::SeqCst) + 1,
            timestamp: now(),
            kind: EventKind::DeploymentCreated,
            deployment_id,
            workload_id: None,
            workload: None,
            message: "store test".to_owned(),
            actor: None,
        };
        self.store.commit(&mut write, &mut event).await.map(|_| ())
    }

    async fn deployment(&self, secrets: &[(&str, &str)]) -> Deployment {
        let mut spec = DeploymentSpec::process(vec!["true".to_owned()]);
        spec.env.insert("PLAIN".to_owned(), "visible".to_owned());
        spec.secret_env = secrets
            .iter()
            .map(|(name, value)| (name.to_string(), Secret::new(*value)))
            .collect();
        let created_at = now();
        let deployment = Deployment {
            id: DeploymentId::generate(),
            name: format!("store-{}", &DeploymentId::generate().as_str()[..8]),
            project: "store".to_owned(),
            service_path: String::new(),
            spec,
            labels: BTreeMap::new(),
            created_at,
            updated_at: created_at,
            revision: 1,
        };
        self.commit(StateWrite::CreateDeployment(Box::new(deployment.clone())))
            .await
            .expect("create deployment");
        deployment
    }

    async fn workload(&self, deployment_id: &DeploymentId) -> Workload {
        let workload = Workload::new(deployment_id.clone());
        self.commit(StateWrite::CreateWorkload(workload.clone()))
            .await
            .expect("create workload");
        workload
    }

    /// Text cells of a raw query, read with a connection of its own.
    async fn raw_texts(&self, sql: &str) -> Vec<String> {
        let connection = Database::connect(&self.database.url)
            .await
            .expect("connect");
        let rows = connection
            .query_all_raw(Statement::from_string(
                connection.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .expect("raw query");
        let texts = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("a text cell"))
            .collect();
        connection.close().await.expect("close");
        texts
    }
}

fn line(workload_id: &WorkloadId, seq: u64) -> LogLine {
    LogLine {
        workload_id: workload_id.clone(),
        seq,
        generation: 1,
        timestamp: now(),
        stage: Stage::Running,
        level: LogLevel::Info,
        stream: LogStream::Stdout,
        message: format!("line {seq}"),
    }
}

#[tokio::test]
async fn typed_ids_round_trip() {
    let fixture = Fixture::new().await;
    let deployment = fixture.deployment(&[]).await;
    let workload = fixture.workload(&deployment.id).await;

    let read = fixture
        .store
        .get_deployment(&deployment.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read, deployment);
    let read = fixture
        .store
        .get_workload(&workload.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(read.id, workload.id);
    assert_eq!(read.deployment_id, deployment.id);

    let filter = WorkloadFilter {
        deployment_id: Some(deployment.id.clone()),
        stages: vec![Stage::Pending],
    };
    let page = fixture
        .store
        .list_workloads(&filter, None, 10)
        .await
        .expect("list");
    let ids: Vec<WorkloadId> = page.workloads.into_iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![workload.id.clone()]);
    assert!(
        fixture
            .store
            .get_workload(&WorkloadId::generate())
            .await
            .expect("read")
            .is_none()
    );
    let of_deployment = EventFilter {
        deployment_id: Some(deployment.id.clone()),
        ..EventFilter::default()
    };
    let events = fixture
        .store
        .read_events(0, &of_deployment, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|event| event.deployment_id == deployment.id)
    );
    fixture.store.close().await.expect("close");
}

#[tokio::test]
async fn a_workload_needs_its_deployment() {
    let fixture = Fixture::new().await;
    let missing = DeploymentId::generate();
    let orphan = Workload::new(missing.clone());
    let refused = fixture
        .commit(StateWrite::CreateWorkload(orphan.clone()))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::DeploymentNotFound { id }) if *id == missing),
        "{refused:?}"
    );
    assert!(
        fixture
            .store
            .get_workload(&orphan.id)
            .await
            .expect("read")
            .is_none()
    );
    // The refused commit left no event either.
    assert_eq!(fixture.store.last_revision().await.expect("revision"), 0);
    fixture.store.close().await.expect("close");
}

#[tokio::test]
async fn a_deployment_with_workloads_cannot_be_deleted() {
    let fixture = Fixture::new().await;
    let deployment = fixture.deployment(&[]).await;
    let workload = fixture.workload(&deployment.id).await;
    let refused = fixture
        .commit(StateWrite::DeleteDeployment(deployment.id.clone()))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::DeploymentHasWorkloads { id }) if *id == deployment.id),
        "{refused:?}"
    );
    assert!(
        fixture
            .store
            .get_deployment(&deployment.id)
            .await
            .expect("read")
            .is_some()
    );

    fixture
        .commit(StateWrite::DeleteWorkload(workload.id.clone()))
        .await
        .expect("delete workload");
    fixture
        .commit(StateWrite::DeleteDeployment(deployment.id.clone()))
        .await
        .expect("an empty deployment is deleted");
    assert!(
        fixture
            .store
            .get_deployment(&deployment.id)
            .await
            .expect("read")
            .is_none()
    );
    fixture.store.close().await.expect("close");
}

#[tokio::test]
async fn log_lines_go_with_their_workload() {
    let fixture = Fixture::new().await;
    let deployment = fixture.deployment(&[]).await;
    let doomed = fixture.workload(&deployment.id).await;
    let kept = fixture.workload(&deployment.id).await;
    let lines: Vec<LogLine> = (1..=3)
        .map(|seq| line(&doomed.id, seq))
        .chain((1..=2).map(|seq| line(&kept.id, seq)))
        .collect();
    fixture
        .store
        .append_log_lines(&lines)
        .await
        .expect("append");
    assert_eq!(
        fixture.store.last_log_seq(&doomed.id).await.expect("seq"),
        3
    );

    fixture
        .commit(StateWrite::DeleteWorkload(doomed.id.clone()))
        .await
        .expect("delete workload");
    let left = fixture
        .raw_texts(&format!(
            "SELECT message FROM log_lines WHERE workload_id = '{}'",
            doomed.id
        ))
        .await;
    assert_eq!(left, Vec::<String>::new(), "the lines are cascaded");
    assert_eq!(fixture.store.last_log_seq(&kept.id).await.expect("seq"), 2);

    // Lines that arrive after their workload is gone are dropped, and do not
    // keep the lines of other workloads from being stored.
    let late = [line(&doomed.id, 4), line(&kept.id, 3)];
    fixture.store.append_log_lines(&late).await.expect("append");
    assert_eq!(fixture.store.last_log_seq(&kept.id).await.expect("seq"), 3);
    assert_eq!(
        fixture.store.last_log_seq(&doomed.id).await.expect("seq"),
        0
    );
    fixture.store.close().await.expect("close");
}

#[tokio::test]
async fn secrets_are_kept_out_of_the_spec_column() {
    let fixture = Fixture::new().await;
    let deployment = fixture.deployment(&[("API_TOKEN", SECRET_VALUE)]).await;

    let specs = fixture
        .raw_texts(&format!(
            "SELECT spec FROM deployments WHERE id = '{}'",
            deployment.id
        ))
        .await;
    assert_eq!(specs.len(), 1);
    assert!(!specs[0].contains(SECRET_VALUE), "{}", specs[0]);
    assert!(!specs[0].contains("API_TOKEN"), "{}", specs[0]);
    assert!(
        specs[0].contains("visible"),
        "the rest is kept: {}",
        specs[0]
    );
    let stored = fixture
        .raw_texts(&format!(
            "SELECT value FROM deployment_secrets WHERE deployment_id = '{}'",
            deployment.id
        ))
        .await;
    assert_eq!(stored, vec![SECRET_VALUE.to_owned()]);

    let read = fixture
        .store
        .get_deployment(&deployment.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        read.spec.secret_env.get("API_TOKEN").map(Secret::expose),
        Some(SECRET_VALUE)
    );
    let listed = fixture
        .store
        .list_deployments(Some("store"), None, 10)
        .await
        .expect("list");
    assert_eq!(listed, vec![read.clone()]);
    let by_name = fixture
        .store
        .find_deployment_by_name(&deployment.name)
        .await
        .expect("find");
    assert_eq!(by_name.as_ref(), Some(&read));
    assert!(!format!("{read:?}").contains(SECRET_VALUE), "Debug leaks");

    fixture
        .commit(StateWrite::DeleteDeployment(deployment.id.clone()))
        .await
        .expect("delete");
    let left = fixture
        .raw_texts("SELECT name FROM deployment_secrets")
        .await;
    assert_eq!(left, Vec::<String>::new(), "secrets go with the deployment");
    fixture.store.close().await.expect("close");
}

/// A change is written only from the stored revision: of two from the same
/// one the second is refused with the current revision and changes nothing;
/// revision rows never hold a secret's value and go with their deployment.
#[tokio::test]
async fn a_deployment_changes_only_from_its_current_revision() {
    let fixture = Fixture::new().await;
    let first = fixture.deployment(&[("API_TOKEN", SECRET_VALUE)]).await;
    let change = |env: &str, secret: &str| {
        let mut next = first.clone();
        next.revision = 2;
        next.spec.env.insert(env.to_owned(), "1".to_owned());
        next.spec
            .secret_env
            .insert("API_TOKEN".to_owned(), Secret::new(secret));
        let revision = DeploymentRevision::of(&next.id, 2, &next.spec, &next.labels, vec![]);
        StateWrite::UpdateDeployment {
            deployment: Box::new(next),
            expected_revision: 1,
            revision: Box::new(revision),
        }
    };
    let second_value = "sentinel-second-store-secret";
    fixture
        .commit(change("WINNER", second_value))
        .await
        .expect("the first change from revision 1");
    let refused = fixture.commit(change("LOSER", "loser-secret")).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::RevisionConflict { current: 2, .. })
        ),
        "{refused:?}"
    );
    let stored = fixture
        .store
        .get_deployment(&first.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.revision, 2);
    assert!(stored.spec.env.contains_key("WINNER"));
    assert!(!stored.spec.env.contains_key("LOSER"));
    assert_eq!(
        stored.spec.secret_env.get("API_TOKEN").map(Secret::expose),
        Some(second_value)
    );
    let revisions = fixture.store.list_revisions(&first.id).await.expect("list");
    assert_eq!(
        revisions.iter().map(|r| r.revision).collect::<Vec<_>>(),
        [2, 1]
    );
    let rows = fixture
        .raw_texts("SELECT spec || COALESCE(secrets, '') FROM deployment_revisions")
        .await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for value in [SECRET_VALUE, second_value, "loser-secret"] {
            assert!(!row.contains(value), "a revision holds {value}: {row}");
        }
        assert!(
            row.contains("API_TOKEN"),
            "the secret's name is kept: {row}"
        );
    }
    fixture
        .commit(StateWrite::DeleteDeployment(first.id.clone()))
        .await
        .expect("delete");
    let left = fixture
        .raw_texts("SELECT spec FROM deployment_revisions")
        .await;
    assert!(
        left.is_empty(),
        "revisions go with the deployment: {left:?}"
    );
    fixture.store.close().await.expect("close");
}

/// Creating workloads while their deployment is deleted ends with no orphan and
/// no error other than NOT_FOUND / FAILED_PRECONDITION.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_racing_delete_leaves_no_orphan() {
    let server = TestServer::start().await;
    server.service_dir("race");
    for round in 0..5 {
        let deployment = server
            .client
            .create_deployment(
                DeploymentBuilder::new(format!("race-{round}"))
                    .service_path("race")
                    .command(["sh", "-c", "sleep 30"])
                    .build(),
            )
            .await
            .expect("create deployment");
        let creators = (0..4).map(|_| {
            let client = server.client.clone();
            let id = deployment.id.clone();
            tokio::spawn(async move {
                for _ in 0..15 {
                    match client.create_workload(&id).await {
                        Ok(_) => {}
                        Err(error) if error.code() == Some(Code::NotFound) => return,
                        Err(error) => panic!("create failed unexpectedly: {error:?}"),
                    }
                }
            })
        });
        let creators: Vec<_> = creators.collect();
        let deleted = server.client.delete_deployment(&deployment.id).await;
        for creator in creators {
            creator.await.expect("creator");
        }
        match deleted {
            Ok(_) => {}
            Err(error) if error.code() == Some(Code::FailedPrecondition) => {
                // Creates kept coming; now that they are over, the delete succeeds.
                server
                    .client
                    .delete_deployment(&deployment.id)
                    .await
                    .expect("delete once the creates are over");
            }
            Err(error) => panic!("delete failed unexpectedly: {error:?}"),
        }
        let after = server.client.create_workload(&deployment.id).await;
        assert_eq!(
            after.map(drop).map_err(|error| error.code()),
            Err(Some(Code::NotFound))
        );
    }

    let store = Store::connect(&server.database_url())
        .await
        .expect("connect");
    let orphans = store
        .list_workloads(&WorkloadFilter::default(), None, 1000)
        .await
        .expect("list")
        .workloads;
    assert_eq!(
        orphans.iter().map(|w| &w.id).collect::<Vec<_>>(),
        Vec::<&WorkloadId>::new(),
        "every workload went with its deployment"
    );
    store.close().await.expect("close");
    server.stop().await;
}
