//! One run of a workload: validate, build, deploy, then watch it until it exits or
//! is asked to stop. The run task owns the instance and its port lease; it reports
//! to the workload's supervisor, which owns the workload's state.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, watch};

use super::{ports::PortPool, readiness};
use crate::{
    domain::{LogLevel, Stage},
    logs::LogSink,
    runtime::{ExitStatus, RunContext, Runtime, RuntimeHandle},
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
    },
    /// The readiness check passed.
    Ready,
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

/// Resolves with the grace period once a stop is asked.
async fn stop_requested(
    stop: &mut watch::Receiver<Option<Duration>>,
    default: Duration,
) -> Duration {
    match stop.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or(default),
        Err(_) => default,
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

    let lease = if inputs.context.spec.listen.is_some() {
        match inputs.ports.claim() {
            Some(lease) => Some(lease),
            None => {
                let range = inputs.ports.range();
                return failed(
                    Stage::Deploy,
                    format!("no free port in the pool {}-{}", range.start(), range.end()),
                );
            }
        }
    } else {
        None
    };
    inputs.context.port = lease.as_ref().map(|lease| lease.port());
    if let Some(port) = inputs.context.port {
        logs.system(LogLevel::Info, format!("port {port} from the pool"))
            .await;
    }
    // Start is not cancelled half-way: a stop asked meanwhile is served right after.
    let instance = match runtime.start(&inputs.context, &logs).await {
        Ok(instance) => instance,
        Err(error) => return failed(Stage::Deploy, error.to_string()),
    };
    let _ = events
        .send(RunEvent::Started {
            handle: instance.handle.clone(),
            port: inputs.context.port,
        })
        .await;

    let spec = &inputs.context.spec;
    let ready = tokio::select! {
        result = readiness::wait_ready(&spec.readiness, inputs.context.port, spec.startup_timeout) => result,
        status = instance.exited() => {
            return RunOutcome::Failed {
                stage: Stage::Deploy,
                reason: format!("{} during deploy", status.describe()),
                exit: Some(status),
            };
        }
        grace = stop_requested(stop, default_grace) => {
            let status = stop_instance(runtime.as_ref(), &instance, grace, &logs).await;
            return RunOutcome::Stopped(status);
        }
    };
    if let Err(reason) = ready {
        logs.system(LogLevel::Error, format!("readiness: {reason}"))
            .await;
        let grace = spec.stop_grace_period;
        let status = stop_instance(runtime.as_ref(), &instance, grace, &logs).await;
        return RunOutcome::Failed {
            stage: Stage::Deploy,
            reason: format!("readiness check failed: {reason}"),
            exit: status,
        };
    }
    let _ = events.send(RunEvent::Ready).await;

    let outcome = tokio::select! {
        status = instance.exited() => RunOutcome::Exited(status),
        grace = stop_requested(stop, default_grace) => {
            RunOutcome::Stopped(stop_instance(runtime.as_ref(), &instance, grace, &logs).await)
        }
    };
    drop(lease);
    outcome
}

async fn stop_instance(
    runtime: &dyn Runtime,
    instance: &crate::runtime::Instance,
    grace: Duration,
    logs: &LogSink,
) -> Option<ExitStatus> {
    match runtime.stop(instance, grace).await {
        Ok(status) => Some(status),
        Err(error) => {
            logs.system(LogLevel::Error, format!("stopping failed: {error}"))
                .await;
            None
        }
    }
}
