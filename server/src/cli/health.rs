//! `slipway health`: a workload's liveness checks and its uptime over a window.

use serde::Serialize;
use slipway_sdk::{
    Client,
    proto::{GetHealthHistoryRequest, Health, HealthCheckResult, HealthHistory},
};

use super::{
    args::HealthArgs,
    error::{CliError, EXIT_OK},
    output::{Printer, outln, print_table, rfc3339},
    resolve::Catalog,
};

/// `slipway health -o json`.
#[derive(Debug, Serialize)]
struct HistoryView {
    workload_id: String,
    health: &'static str,
    since: Option<String>,
    total_checks: u64,
    passed_checks: u64,
    /// From 0 to 1; absent without checks.
    uptime: Option<f64>,
    mean_response_time_ms: f64,
    /// Newest first.
    checks: Vec<CheckView>,
}

#[derive(Debug, Serialize)]
struct CheckView {
    checked_at: Option<String>,
    passed: bool,
    response_time_ms: f64,
    reason: String,
    generation: u64,
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl HistoryView {
    fn new(history: &HealthHistory) -> HistoryView {
        HistoryView {
            workload_id: history.workload_id.clone(),
            health: Health::try_from(history.health).map_or("unknown", Health::label),
            since: rfc3339(history.since.as_ref()),
            total_checks: history.total_checks,
            passed_checks: history.passed_checks,
            uptime: history.uptime,
            mean_response_time_ms: millis(history.mean_response_time_us),
            checks: history.checks.iter().map(CheckView::new).collect(),
        }
    }
}

impl CheckView {
    fn new(check: &HealthCheckResult) -> CheckView {
        CheckView {
            checked_at: rfc3339(check.checked_at.as_ref()),
            passed: check.passed,
            response_time_ms: millis(check.response_time_us),
            reason: check.reason.clone(),
            generation: check.generation,
        }
    }
}

/// `slipway health WORKLOAD`.
pub async fn health(client: &Client, printer: Printer, args: HealthArgs) -> Result<u8, CliError> {
    let catalog = Catalog::load(client).await?;
    let found = catalog.resolve_workload(&args.target)?;
    let window = args.window.as_secs();
    let request = GetHealthHistoryRequest {
        workload_id: found.id.clone(),
        window_seconds: u32::try_from(window)
            .map_err(|_| CliError::usage("--window: at most 30d"))?
            .max(1),
        limit: args.limit,
    };
    let history = client
        .health_history_with(request)
        .await
        .map_err(|error| CliError::server("cannot read the health history", error))?;
    let view = HistoryView::new(&history);
    if printer.json() {
        return printer.print_json(&view).map(|()| EXIT_OK);
    }
    let window = humantime::format_duration(args.window);
    match view.uptime {
        Some(uptime) => outln!(
            "{}: {}, uptime {:.1}% over the last {window} ({} of {} checks passed, mean response {:.1} ms)",
            found.id,
            view.health,
            uptime * 100.0,
            view.passed_checks,
            view.total_checks,
            view.mean_response_time_ms
        ),
        None => outln!(
            "{}: {}, no liveness check in the last {window} (the deployment has no liveness check, or the workload did not run)",
            found.id,
            view.health
        ),
    }
    if view.checks.is_empty() {
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = view
        .checks
        .iter()
        .map(|check| {
            vec![
                check.checked_at.clone().unwrap_or_default(),
                check.generation.to_string(),
                if check.passed { "passed" } else { "failed" }.to_owned(),
                format!("{:.1} ms", check.response_time_ms),
                check.reason.clone(),
            ]
        })
        .collect();
    print_table(&["TIME", "GEN", "RESULT", "RESPONSE", "REASON"], &rows);
    Ok(EXIT_OK)
}
