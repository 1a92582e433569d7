//! One run of a workload: validate, build, deploy, then watch it until it exits or
//! is asked to stop. The run task owns the instance and its port lease; it reports
//! to the workload's supervisor, which owns the workload's state.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, watch};

use super::{
    ports::{PortLease, PortPool},
    readiness,
};
use crate::{
    domain::{CheckRecord, Health, HealthCheck, LogLevel, Probe, Readiness, Stage, now},
    logs::LogSink,
    runtime::{ExitStatus, Instance, RunContext, Runtime, RuntimeError, RuntimeHandle},
};

/// What the run reports to the supervisor.
#[derive(Debug)]
pub enum RunEvent {
    /// The pipeline moved on to this stage (build or deploy).
    Stage(Stage),
    /// The instance started (still in deploy).
    Started {
        handle: RuntimeHandle,
        port: Option<u16>,
        /// What the runtime could not apply as the spec asks.
        warnings: Vec<String>,
    },
    /// The readiness check passed.
    Ready,
    /// The liveness check's verdict changed.
    Health(Health, String),
    /// A liveness check was made (for the health history).
    Checked(CheckRecord),
    /// The run is over; its port is released and its output read.
    Finished(RunOutcome),
}

#[derive(Debug)]
pub enum RunOutcome {
    /// Failed in `stage`.
    Failed {
        stage: Stage,
        reason: String,
        exit: Option<ExitStatus>,
    },
    /// The running instance exited by itself.
    Exited(ExitStatus),
    /// Stopped on request; the exit status when an instance had started.
    Stopped(Option<ExitStatus>),
}

pub struct RunInputs {
    pub context: RunContext,
    pub runtime: Arc<dyn Runtime>,
    pub ports: PortPool,
    pub logs: LogSink,
    /// The stage the run's log lines are tagged with.
    pub stage: Arc<watch::Sender<Stage>>,
    /// The grace period when the supervisor goes away without asking for a stop.
    pub default_grace: Duration,
}

/// Runs the pipeline and reports; `stop` carries the grace period once a stop is asked.
pub async fn run(
    inputs: RunInputs,
    events: mpsc::Sender<RunEvent>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let outcome = drive(inputs, &events, &mut stop).await;
    let _ = events.send(RunEvent::Finished(outcome)).await;
}

/// Resolves with the grace period once a stop is asked. A supervisor that went
/// away without asking (Slipway is shutting down and leaves the workload running,
/// to be found again at the next start) never asks.
async fn stop_requested(
    stop: &mut watch::Receiver<Option<Duration>>,
    default: Duration,
) -> Duration {
    let asked = stop
        .wait_for(Option::is_some)
        .await
        .map(|grace| grace.unwrap_or(default));
    match asked {
        Ok(grace) => grace,
        Err(_) => std::future::pending().await,
    }
}

async fn drive(
    mut inputs: RunInputs,
    events: &mpsc::Sender<RunEvent>,
    stop: &mut watch::Receiver<Option<Duration>>,
) -> RunOutcome {
    let runtime = inputs.runtime.clone();
    let logs = inputs.logs.clone();
    let default_grace = inputs.default_grace;
    let failed = |stage, reason: String| RunOutcome::Failed {
        stage,
        reason,
        exit: None,
    };

    // Validate and build can be cancelled at any point: dropping them cleans up.
    let validated = tokio::select! {
        result = runtime.validate(&inputs.context, &logs) => result,
        _ = stop_requested(stop, default_grace) => return RunOutcome::Stopped(None),
    };
    if let Err(error) = validated {
        return failed(Stage::Validate, error.to_string());
    }
    inputs.stage.send_replace(Stage::Build);
    let _ = events.send(RunEvent::Stage(Stage::Build)).await;
    let built = tokio::select! {
        result = runtime.build(&inputs.context, &logs) => result,
        _ = stop_requested(stop, default_grace) => return RunOutcome::Stopped(None),
    };
    if let Err(error) = built {
        return failed(Stage::Build, error.to_string());
    }
    inputs.stage.send_replace(Stage::Deploy);
    let _ = events.send(RunEvent::Stage(Stage::Deploy)).await;
    if stop.borrow().is_some() {
        return RunOutcome::Stopped(None);
    }

    let (instance, lease) = match start_with_port(&mut inputs, &logs).await {
        Ok(started) => started,
        Err(reason) => return failed(Stage::Deploy, reason),
    };
    let _ = events
        .send(RunEvent::Started {
            handle: instance.handle.clone(),
            port: inputs.context.port,
            warnings: instance.warnings().to_vec(),
        })
        .await;

    let spec = &inputs.context.spec;
    // Ready means alive and ready: the check passes, then the instance stays up
    // for the spec's minimum (without a check, a process that exits at once has
    // not started).
    let ready_and_settled = async {
        readiness::wait_instance_ready(
            runtime.as_ref(),
            &instance,
            &spec.readiness,
            spec.startup_timeout,
        )
        .await?;
        let min_ready = spec.min_ready();
        if !min_ready.is_zero() {
            tokio::time::sleep(min_ready).await;
        }
        Ok::<(), String>(())
    };
    let ready = tokio::select! {
        // Ready first: with no minimum, a start is trusted even if the instance
        // has exited by the time it is looked at (its exit is seen right after).
        biased;
        result = ready_and_settled => result,
        status = instance.exited() => {
            return RunOutcome::Failed {
                stage: Stage::Deploy,
                reason: format!("{} during deploy", status.describe()),
                exit: Some(status),
            };
        }
        grace = stop_requested(stop, default_grace) => {
            let status = stop_instance(runtime.as_ref(), &instance, spec.stop_signal(), grace, &logs).await;
            return RunOutcome::Stopped(status);
        }
    };
    if let Err(reason) = ready {
        logs.system(LogLevel::Error, format!("readiness: {reason}"))
            .await;
        let grace = spec.stop_grace_period;
        let status = stop_instance(
            runtime.as_ref(),
            &instance,
            spec.stop_signal(),
            grace,
            &logs,
        )
        .await;
        return RunOutcome::Failed {
            stage: Stage::Deploy,
            reason: format!("readiness check failed: {reason}"),
            exit: status,
        };
    }
    let _ = events.send(RunEvent::Ready).await;

    watch_instance(
        runtime.as_ref(),
        &inputs.context,
        &instance,
        lease,
        stop,
        default_grace,
        &logs,
        events,
    )
    .await
}

/// Claims a port (when the spec listens) and starts the instance; a host port
/// that turns out to be taken is traded for another one from the pool.
async fn start_with_port(
    inputs: &mut RunInputs,
    logs: &LogSink,
) -> Result<(Instance, Option<PortLease>), String> {
    const ATTEMPTS: usize = 5;
    // Ports found taken stay held until the start is over, so they are not handed out again.
    let mut taken = Vec::new();
    for _ in 0..ATTEMPTS {
        let lease = if inputs.context.spec.listen.is_some() {
            match inputs.ports.claim() {
                Some(lease) => Some(lease),
                None => {
                    let range = inputs.ports.range();
                    return Err(format!(
                        "no free port in the pool {}-{}",
                        range.start(),
                        range.end()
                    ));
                }
            }
        } else {
            None
        };
        inputs.context.port = lease.as_ref().map(PortLease::port);
        if let Some(port) = inputs.context.port {
            logs.system(LogLevel::Info, format!("port {port} from the pool"))
                .await;
        }
        // Start is not cancelled half-way: a stop asked meanwhile is served right after.
        match inputs.runtime.start(&inputs.context, logs).await {
            Ok(instance) => return Ok((instance, lease)),
            Err(RuntimeError::PortTaken(reason)) => {
                logs.system(LogLevel::Warn, format!("{reason}; trying another port"))
                    .await;
                taken.extend(lease);
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    Err(format!(
        "no port of the pool could be bound after {ATTEMPTS} attempts"
    ))
}

/// Watches a running instance until it exits, a stop is asked, or its liveness
/// check fails; the port lease is released before the outcome is reported.
#[allow(clippy::too_many_arguments)]
async fn watch_instance(
    runtime: &dyn Runtime,
    context: &RunContext,
    instance: &Instance,
    lease: Option<PortLease>,
    stop: &mut watch::Receiver<Option<Duration>>,
    default_grace: Duration,
    logs: &LogSink,
    events: &mpsc::Sender<RunEvent>,
) -> RunOutcome {
    let signal = context.spec.stop_signal();
    let outcome = tokio::select! {
        status = instance.exited() => RunOutcome::Exited(status),
        grace = stop_requested(stop, default_grace) => {
            RunOutcome::Stopped(stop_instance(runtime, instance, signal, grace, logs).await)
        }
        reason = liveness(runtime, context, instance, logs, events) => {
            logs.system(LogLevel::Error, format!("liveness check failed: {reason}")).await;
            let status = stop_instance(runtime, instance, signal, context.spec.stop_grace_period, logs).await;
            RunOutcome::Failed {
                stage: Stage::Running,
                reason: format!("liveness check failed: {reason}"),
                exit: status,
            }
        }
    };
    drop(lease);
    outcome
}

/// Runs the liveness check, reporting each check (its reason masked as the
/// run's log lines are) and each change of verdict; resolves with the last
/// failure once `failure_threshold` checks in a row failed. Never resolves
/// without a check.
async fn liveness(
    runtime: &dyn Runtime,
    context: &RunContext,
    instance: &Instance,
    logs: &LogSink,
    events: &mpsc::Sender<RunEvent>,
) -> String {
    let Some(check) = context.spec.liveness.clone() else {
        return std::future::pending().await;
    };
    let HealthCheck {
        probe,
        interval,
        timeout,
        failure_threshold,
    } = check;
    let mut failures = 0;
    let mut health = Health::Unknown;
    loop {
        tokio::time::sleep(interval).await;
        let at = now();
        let began = tokio::time::Instant::now();
        let address = instance.probe_address();
        let verdict = match (&probe, address) {
            (Probe::Tcp | Probe::Http { .. }, None) => Err("no address to probe".to_owned()),
            (Probe::Tcp, Some(address)) => {
                attempt(readiness::probe_once(&Readiness::Tcp, address), timeout).await
            }
            (Probe::Http { path }, Some(address)) => {
                let readiness = Readiness::Http { path: path.clone() };
                attempt(readiness::probe_once(&readiness, address), timeout).await
            }
            (Probe::Exec { command }, _) => {
                match runtime.exec(context, instance, command, timeout).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!("{} failed or timed out", command.join(" "))),
                    Err(error) => Err(error.to_string()),
                }
            }
        };
        let reason = match &verdict {
            Ok(()) => String::new(),
            Err(reason) => {
                let mut bytes = reason.clone().into_bytes();
                logs.mask_bytes(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        let _ = events
            .send(RunEvent::Checked(CheckRecord {
                workload_id: context.workload_id.clone(),
                generation: context.generation,
                at,
                passed: verdict.is_ok(),
                response_time: began.elapsed(),
                reason,
            }))
            .await;
        match verdict {
            Ok(()) => {
                failures = 0;
                if health != Health::Healthy {
                    health = Health::Healthy;
                    let _ = events
                        .send(RunEvent::Health(health, "liveness check passed".to_owned()))
                        .await;
                }
            }
            Err(reason) => {
                failures += 1;
                if failures >= failure_threshold {
                    let message = format!("{reason} ({failures} times in a row)");
                    let _ = events
                        .send(RunEvent::Health(Health::Unhealthy, message.clone()))
                        .await;
                    return message;
                }
            }
        }
    }
}

async fn attempt(
    probe: impl std::future::Future<Output = readiness::ProbeResult>,
    timeout: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(timeout, probe).await {
        Ok(readiness::ProbeResult::Ready) => Ok(()),
        Ok(readiness::ProbeResult::NotReady(reason)) => Err(reason),
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Follows an instance adopted at start-up (it is running already) like a run
/// that has just become ready.
pub async fn adopted(
    runtime: Arc<dyn Runtime>,
    context: RunContext,
    instance: Instance,
    lease: Option<PortLease>,
    logs: LogSink,
    events: mpsc::Sender<RunEvent>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let grace = context.spec.stop_grace_period;
    let outcome = watch_instance(
        runtime.as_ref(),
        &context,
        &instance,
        lease,
        &mut stop,
        grace,
        &logs,
        &events,
    )
    .await;
    let _ = events.send(RunEvent::Finished(outcome)).await;
}

async fn stop_instance(
    runtime: &dyn Runtime,
    instance: &Instance,
    signal: &str,
    grace: Duration,
    logs: &LogSink,
) -> Option<ExitStatus> {
    match runtime.stop(instance, signal, grace).await {
        Ok(status) => Some(status),
        Err(error) => {
            logs.system(LogLevel::Error, format!("stopping failed: {error}"))
                .await;
            None
        }
    }
}
