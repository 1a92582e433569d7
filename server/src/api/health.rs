//! Health history (`WorkloadService/GetHealthHistory`) and the health summary
//! every deployment the API returns carries.

use slipway::v1 as proto;
use tonic::Status;

use super::{
    convert::{self, timestamp},
    status::{invalid_argument, to_status},
};
use crate::{
    domain::{CheckRecord, DeploymentHealth, DeploymentHealthState, FieldViolation, WorkloadId},
    orchestrator::{HealthHistory, Orchestrator},
};

/// The window when the request names none, and the longest one.
const DEFAULT_WINDOW_SECONDS: u32 = 3600;
const MAX_WINDOW_SECONDS: u32 = 30 * 24 * 3600;
/// Checks listed when the request names no limit, and the most listed.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Answers `GetHealthHistory` (the caller's access to the workload is checked
/// by the handler).
pub(super) async fn history(
    orchestrator: &Orchestrator,
    id: &WorkloadId,
    request: &proto::GetHealthHistoryRequest,
) -> Result<proto::HealthHistory, Status> {
    let mut violations = Vec::new();
    if request.window_seconds > MAX_WINDOW_SECONDS {
        violations.push(FieldViolation::new(
            "window_seconds",
            format!("must be at most {MAX_WINDOW_SECONDS} (30 days)"),
        ));
    }
    if request.limit > MAX_LIMIT {
        violations.push(FieldViolation::new(
            "limit",
            format!("must be at most {MAX_LIMIT}"),
        ));
    }
    if !violations.is_empty() {
        return Err(invalid_argument(&violations));
    }
    let window = match request.window_seconds {
        0 => DEFAULT_WINDOW_SECONDS,
        seconds => seconds,
    };
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        limit => limit,
    };
    let workload = orchestrator.get_workload(id).await.map_err(to_status)?;
    let HealthHistory {
        checks,
        uptime,
        since,
    } = orchestrator
        .health_history(
            id,
            std::time::Duration::from_secs(window.into()),
            limit.into(),
        )
        .await
        .map_err(to_status)?;
    Ok(proto::HealthHistory {
        workload_id: id.to_string(),
        checks: checks.into_iter().map(check).collect(),
        since: Some(timestamp(since)),
        total_checks: uptime.checks,
        passed_checks: uptime.passed,
        uptime: uptime.ratio(),
        mean_response_time_us: micros(uptime.mean_response_time),
        health: convert::health(workload.health).into(),
    })
}

fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn check(check: CheckRecord) -> proto::HealthCheckResult {
    proto::HealthCheckResult {
        checked_at: Some(timestamp(check.at)),
        passed: check.passed,
        response_time_us: micros(check.response_time),
        reason: check.reason,
        generation: check.generation,
    }
}

fn summary(health: DeploymentHealth) -> proto::DeploymentHealth {
    let state = match health.state {
        DeploymentHealthState::Healthy => proto::DeploymentHealthState::Healthy,
        DeploymentHealthState::Degraded => proto::DeploymentHealthState::Degraded,
        DeploymentHealthState::Unavailable => proto::DeploymentHealthState::Unavailable,
    };
    proto::DeploymentHealth {
        state: state.into(),
        wanted: health.wanted,
        up: health.up,
        reason: health.reason,
    }
}

/// The deployments as the API returns them, each with its health read from
/// its workloads (one query for all of them).
pub(super) async fn with_health(
    orchestrator: &Orchestrator,
    deployments: Vec<crate::domain::Deployment>,
) -> Result<Vec<proto::Deployment>, Status> {
    let ids: Vec<_> = deployments.iter().map(|d| d.id.clone()).collect();
    let mut health = orchestrator
        .deployments_health(&ids)
        .await
        .map_err(to_status)?;
    Ok(deployments
        .into_iter()
        .map(|deployment| {
            let summed = health.remove(&deployment.id).map(summary);
            proto::Deployment {
                health: summed,
                ..deployment.into()
            }
        })
        .collect())
}

/// One deployment as the API returns it, with its health.
pub(super) async fn one_with_health(
    orchestrator: &Orchestrator,
    deployment: crate::domain::Deployment,
) -> Result<proto::Deployment, Status> {
    with_health(orchestrator, vec![deployment])
        .await?
        .pop()
        .ok_or_else(|| Status::internal("a deployment went missing while reading its health"))
}
