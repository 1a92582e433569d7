//! `GET /api/workloads/:id/health`: the workload's health history and uptime
//! (`WorkloadService/GetHealthHistory`).

use axum::{
    Json,
    extract::{Path, Query, State},
};
use http::{Extensions, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway::v1::{GetHealthHistoryRequest, Health, workload_service_server::WorkloadService};

use super::{ApiError, RestState, grpc_request, json};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealthQuery {
    /// The window back from now (default 3600).
    window_seconds: Option<u32>,
    /// Checks listed (default 100, at most 1000).
    limit: Option<u32>,
}

pub async fn history(
    State(state): State<RestState>,
    Path(workload_id): Path<String>,
    Query(query): Query<HealthQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Json<Value>, ApiError> {
    let request = GetHealthHistoryRequest {
        workload_id,
        window_seconds: query.window_seconds.unwrap_or(0),
        limit: query.limit.unwrap_or(0),
    };
    let history = state
        .workloads
        .get_health_history(grpc_request(&headers, extensions, request))
        .await?
        .into_inner();
    let checks: Vec<Value> = history
        .checks
        .iter()
        .map(|check| {
            json!({
                "checkedAt": json::time(check.checked_at.as_ref()),
                "passed": check.passed,
                "responseTimeMs": check.response_time_us as f64 / 1000.0,
                "reason": check.reason,
                "generation": check.generation,
            })
        })
        .collect();
    let health = Health::try_from(history.health).map_or("unknown", Health::label);
    Ok(Json(json!({
        "workloadId": history.workload_id,
        "health": health,
        "since": json::time(history.since.as_ref()),
        "totalChecks": history.total_checks,
        "passedChecks": history.passed_checks,
        "uptime": history.uptime,
        "meanResponseTimeMs": history.mean_response_time_us as f64 / 1000.0,
        "checks": checks,
    })))
}
