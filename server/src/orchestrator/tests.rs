//! The supervisor, the restart policy and reconcile on a scripted runtime: no
//! server, no process, an in-memory store.

use std::{collections::BTreeMap, sync::Arc, sync::atomic::Ordering, time::Duration};

use super::{NewDeployment, Orchestrator, PortPool, Progress, Settings};
use crate::{
    domain::{
        Action, Condition, DeploymentSpec, EventKind, NewEvent, Operation, RestartMode,
        RestartPolicy, Stage, Workload, WorkloadId, allowed_actions,
    },
    events::EventLog,
    logs::{LogRetention, OperationFailure},
    runtime::{
        Reclaimed,
        fake::{Build, FakeRuntime, Run, Script, Stop},
    },
    store::{StateWrite, Store},
};

/// Long enough for anything here; a test that waits this long has failed.
const PATIENCE: Duration = Duration::from_secs(20);

struct Harness {
    orchestrator: Orchestrator,
    runtime: Arc<FakeRuntime>,
    _root: tempfile::TempDir,
}

fn spec() -> DeploymentSpec {
    let mut spec = DeploymentSpec::process(vec!["fake".to_owned()]);
    // Stored in whole seconds.
    spec.stop_grace_period = Duration::from_secs(1);
    spec.startup_timeout = Duration::from_secs(5);
    spec.min_ready = Some(Duration::from_millis(50));
    spec
}

fn policy(mode: RestartMode, max_restarts: u32, initial_backoff: Duration) -> RestartPolicy {
    RestartPolicy {
        mode,
        max_restarts,
        initial_backoff,
        max_backoff: initial_backoff * 4,
        jitter_percent: 0,
        ..RestartPolicy::default()
    }
}

async fn harness_on(store: Store, script: Script) -> Harness {
    let root = tempfile::tempdir().expect("root");
    let runtime = FakeRuntime::new(script);
    let settings = Settings {
        root: root.path().canonicalize().expect("canonical root"),
        shutdown_grace: Duration::from_secs(1),
        leave_on_shutdown: false,
        log_retention: LogRetention::default(),
        log_max_line_bytes: crate::logs::DEFAULT_MAX_LINE_BYTES,
        event_retention: 10_000,
        health_retention: crate::orchestrator::HealthRetention::default(),
        node_id: crate::domain::NodeId::generate(),
    };
    let orchestrator = Orchestrator::start(
        store.clone(),
        vec![runtime.clone()],
        PortPool::new(41000..=41010),
        settings,
    )
    .await
    .expect("orchestrator");
    // The tests look at the outcome of start-up reconcile, which runs in the background.
    orchestrator.reconciled().await;
    Harness {
        orchestrator,
        runtime,
        _root: root,
    }
}

async fn harness(script: Script) -> Harness {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    harness_on(store, script).await
}

impl Harness {
    async fn workload(&self, spec: DeploymentSpec) -> Workload {
        let deployment = self
            .orchestrator
            .create_deployment(NewDeployment {
                name: String::new(),
                project: String::new(),
                service_path: ".".to_owned(),
                spec,
                labels: BTreeMap::new(),
            })
            .await
            .expect("deployment");
        self.orchestrator
            .create_workload(&deployment.id)
            .await
            .expect("workload")
    }

    /// Runs an operation to its end: every snapshot's stage, and the outcome.
    async fn operate(
        &self,
        id: &WorkloadId,
        operation: Operation,
    ) -> (Vec<Stage>, Result<Workload, OperationFailure>) {
        let mut progress = self
            .orchestrator
            .operate(id, None, operation, None)
            .await
            .expect("accepted");
        let mut stages = Vec::new();
        let ending = async {
            while let Some(message) = progress.recv().await {
                match message {
                    Progress::Workload(workload) => stages.push(workload.stage),
                    Progress::Done(outcome) => return outcome.map(|workload| *workload),
                    Progress::Log(_) | Progress::Skipped { .. } => {}
                }
            }
            panic!("the progress ended without an outcome")
        };
        let outcome = tokio::time::timeout(PATIENCE, ending)
            .await
            .expect("the operation ends in time");
        (stages, outcome)
    }

    /// Waits until the stored workload satisfies `wanted`.
    async fn until(&self, id: &WorkloadId, wanted: impl Fn(&Workload) -> bool) -> Workload {
        let waiting = async {
            loop {
                let workload = self.orchestrator.get_workload(id).await.expect("get");
                if wanted(&workload) {
                    return workload;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .expect("reached in time")
    }
}

#[tokio::test]
async fn a_crash_loop_is_restarted_with_back_off_then_given_up() {
    let harness = harness(Script::runs([Run::ExitAfter(
        Duration::from_millis(80),
        1,
        "crashing",
    )]))
    .await;
    let mut spec = spec();
    spec.restart_policy = policy(RestartMode::OnFailure, 3, Duration::from_millis(10));
    let workload = harness.workload(spec).await;
    let (_, outcome) = harness.operate(&workload.id, Operation::Start).await;
    assert_eq!(outcome.expect("running").stage, Stage::Running);
    let gave_up = harness
        .until(&workload.id, |workload| {
            workload
                .error
                .as_deref()
                .is_some_and(|error| error.contains("gave up"))
        })
        .await;
    assert_eq!(gave_up.stage, Stage::Failed);
    assert_eq!(gave_up.generation, 4, "the first run and three restarts");
    assert_eq!(gave_up.next_restart_at, None);
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 4);
    assert_eq!(
        allowed_actions(Condition::of(&gave_up)),
        [Action::Restart, Action::Delete]
    );
}

#[tokio::test]
async fn a_stop_during_back_off_cancels_the_restart() {
    let harness = harness(Script::runs([Run::ExitAfter(
        Duration::ZERO,
        3,
        "no config",
    )]))
    .await;
    let mut spec = spec();
    spec.restart_policy = policy(RestartMode::Always, 0, Duration::from_secs(600));
    let workload = harness.workload(spec).await;
    let (_, outcome) = harness.operate(&workload.id, Operation::Start).await;
    let failure = outcome.expect_err("the start fails");
    assert_eq!((failure.stage, failure.exit_code), (Stage::Deploy, Some(3)));
    assert_eq!(failure.last_lines, ["no config"]);
    let waiting = harness
        .until(&workload.id, |workload| workload.next_restart_at.is_some())
        .await;
    // The one control that ends a crash loop is offered.
    assert!(allowed_actions(Condition::of(&waiting)).contains(&Action::Stop));
    let (_, outcome) = harness.operate(&workload.id, Operation::Stop).await;
    let stopped = outcome.expect("the stop succeeds");
    assert_eq!(stopped.stage, Stage::Failed);
    assert_eq!(stopped.next_restart_at, None);
    assert!(!allowed_actions(Condition::of(&stopped)).contains(&Action::Stop));
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stop_during_a_hung_build_ends_the_start_and_stops_the_workload() {
    let mut script = Script::runs([Run::Forever]);
    script.build = Build::Hang;
    let harness = Arc::new(harness(script).await);
    let workload = harness.workload(spec()).await;
    let starting = {
        let harness = harness.clone();
        let id = workload.id.clone();
        tokio::spawn(async move { harness.operate(&id, Operation::Start).await })
    };
    harness
        .until(&workload.id, |workload| workload.stage == Stage::Build)
        .await;
    let (stages, outcome) = harness.operate(&workload.id, Operation::Stop).await;
    assert_eq!(outcome.expect("stopped").stage, Stage::Stopped);
    assert_eq!(stages.last(), Some(&Stage::Stopped));
    let (start_stages, start) = starting.await.expect("start task");
    let failure = start.expect_err("a stopped start did not succeed");
    assert_eq!(failure.workload.stage, Stage::Stopped);
    assert!(!start_stages.contains(&Stage::Running), "{start_stages:?}");
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_build_fails_the_start_with_its_output() {
    let mut script = Script::runs([Run::Forever]);
    script.build = Build::Fail("error: missing semicolon".to_owned());
    let harness = harness(script).await;
    let workload = harness.workload(spec()).await;
    let (stages, outcome) = harness.operate(&workload.id, Operation::Start).await;
    let failure = outcome.expect_err("the build fails");
    assert_eq!(failure.stage, Stage::Build);
    assert_eq!(failure.last_lines, ["error: missing semicolon"]);
    assert_eq!(
        stages,
        [Stage::Pending, Stage::Validate, Stage::Build, Stage::Failed]
    );
}

#[tokio::test]
async fn a_stop_of_a_service_that_ignores_sigterm_kills_it_after_the_grace_period() {
    let mut script = Script::runs([Run::Forever]);
    script.stop = Stop::Ignore;
    let harness = harness(script).await;
    let workload = harness.workload(spec()).await;
    let (_, started) = harness.operate(&workload.id, Operation::Start).await;
    assert_eq!(started.expect("running").stage, Stage::Running);
    let began = tokio::time::Instant::now();
    let (stages, stopped) = harness.operate(&workload.id, Operation::Stop).await;
    let stopped = stopped.expect("stopped");
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(stopped.stage, Stage::Stopped);
    assert_eq!(stopped.exit_code, Some(128 + 9));
    assert_eq!(stages, [Stage::Running, Stage::Stopping, Stage::Stopped]);
}

#[tokio::test]
async fn a_restart_overtaken_by_a_stop_ends_failed_and_the_workload_stays_stopped() {
    let mut script = Script::runs([Run::Forever]);
    script.stop = Stop::Ignore;
    let harness = Arc::new(harness(script).await);
    let workload = harness.workload(spec()).await;
    let (_, started) = harness.operate(&workload.id, Operation::Start).await;
    assert!(started.is_ok());
    let restarting = {
        let harness = harness.clone();
        let id = workload.id.clone();
        tokio::spawn(async move { harness.operate(&id, Operation::Restart).await })
    };
    harness
        .until(&workload.id, |workload| workload.stage == Stage::Stopping)
        .await;
    let (_, stopped) = harness.operate(&workload.id, Operation::Stop).await;
    assert_eq!(stopped.expect("stopped").stage, Stage::Stopped);
    let (_, restart) = restarting.await.expect("restart task");
    assert!(restart.is_err(), "{restart:?}");
    let after = harness
        .orchestrator
        .get_workload(&workload.id)
        .await
        .expect("get");
    assert_eq!((after.stage, after.generation), (Stage::Stopped, 1));
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 1);
}

/// What a killed Slipway left in the store: a deployment of `spec` and the
/// workloads in `left` (each already in its stage), written with no orchestrator.
async fn left_behind(store: &Store, spec: DeploymentSpec, left: Vec<Workload>) -> Vec<Workload> {
    let events = EventLog::start(store.clone(), 10_000)
        .await
        .expect("events");
    let deployment_id = left
        .first()
        .map(|workload| workload.deployment_id.clone())
        .expect("a workload");
    let deployment = crate::domain::Deployment {
        id: deployment_id.clone(),
        name: format!("left-{}", deployment_id.short()),
        project: String::new(),
        service_path: ".".to_owned(),
        spec,
        labels: BTreeMap::new(),
        created_at: crate::domain::now(),
        updated_at: crate::domain::now(),
        revision: 1,
    };
    let created = NewEvent {
        kind: EventKind::DeploymentCreated,
        deployment_id,
        workload_id: None,
        workload: None,
        message: "created".to_owned(),
        actor: None,
    };
    events
        .commit(StateWrite::CreateDeployment(Box::new(deployment)), created)
        .await
        .expect("deployment");
    for workload in &left {
        let event = NewEvent::workload(EventKind::WorkloadCreated, workload, "left behind");
        events
            .commit(StateWrite::CreateWorkload(workload.clone()), event)
            .await
            .expect("workload");
    }
    left
}

/// A workload left in each stage by a Slipway that was killed: after the next
/// start none is left in a transitional stage.
#[tokio::test]
async fn reconcile_leaves_no_workload_in_a_transitional_stage() {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let deployment_id = crate::domain::DeploymentId::generate();
    let stages = Stage::ALL.into_iter().map(|stage| {
        let mut workload = Workload::new(deployment_id.clone());
        workload.stage = stage;
        if matches!(stage, Stage::Deploy | Stage::Running | Stage::Stopping) {
            workload.runtime_id = Some("4242".to_owned());
            workload.process_start_time = Some(1);
        }
        workload
    });
    let left = left_behind(&store, spec(), stages.collect()).await;
    let mut script = Script::runs([Run::Forever]);
    script.reclaim = || Reclaimed::Stopped;
    let harness = harness_on(store, script).await;
    for before in left {
        let after = harness
            .orchestrator
            .get_workload(&before.id)
            .await
            .expect("get");
        match before.stage {
            Stage::Pending | Stage::Stopped | Stage::Failed => {
                assert_eq!(
                    after.stage, before.stage,
                    "{} is left as it was",
                    before.stage
                );
            }
            stage => {
                assert_eq!(after.stage, Stage::Failed, "{stage}");
                assert_eq!(after.failed_stage, Some(stage));
                let error = after.error.unwrap_or_default();
                assert!(error.contains("orchestrator restarted"), "{stage}: {error}");
            }
        }
    }
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 0);
}

/// With a restart policy, a run that reconcile found interrupted runs again, once.
#[tokio::test]
async fn reconcile_hands_an_interrupted_run_to_its_restart_policy() {
    let store = Store::connect("sqlite::memory:").await.expect("store");
    let mut spec = spec();
    spec.restart_policy = policy(RestartMode::Always, 0, Duration::from_millis(10));
    let mut workload = Workload::new(crate::domain::DeploymentId::generate());
    workload.stage = Stage::Running;
    workload.runtime_id = Some("4242".to_owned());
    let workload = left_behind(&store, spec, vec![workload]).await.remove(0);
    let harness = harness_on(store, Script::runs([Run::Forever])).await;
    let running = harness
        .until(&workload.id, |workload| workload.stage == Stage::Running)
        .await;
    assert_eq!(running.generation, 2);
    assert_eq!(harness.runtime.starts.load(Ordering::SeqCst), 1);
}
