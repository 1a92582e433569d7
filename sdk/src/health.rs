//! Health: a workload's history of liveness checks with its uptime, and the
//! health summary every [`Deployment`](crate::proto::Deployment) carries.
//!
//! ```no_run
//! # async fn example(client: slipway_sdk::Client, workload_id: &str) -> slipway_sdk::Result<()> {
//! use std::time::Duration;
//! let history = client
//!     .health_history(workload_id, Duration::from_secs(600))
//!     .await?;
//! if let Some(uptime) = history.uptime {
//!     println!("{:.1}% of {} checks passed", uptime * 100.0, history.total_checks);
//! }
//! for check in history.checks.iter().filter(|check| !check.passed) {
//!     println!("failed: {}", check.reason);
//! }
//! let web = client.get_deployment_by_name("web", None).await?;
//! let health = web.health.unwrap_or_default();
//! println!("web is {:?}: {}", health.state(), health.reason);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use slipway::v1::{GetHealthHistoryRequest, HealthHistory};

use crate::{Client, Result};

impl Client {
    /// The workload's liveness checks of the last `window` (whole seconds, at
    /// most 30 days), newest first (at most 100 listed), with the uptime over
    /// the whole window: the share of its checks that passed.
    pub async fn health_history(
        &self,
        workload_id: &str,
        window: Duration,
    ) -> Result<HealthHistory> {
        self.health_history_with(GetHealthHistoryRequest {
            workload_id: workload_id.to_owned(),
            window_seconds: u32::try_from(window.as_secs()).unwrap_or(u32::MAX).max(1),
            limit: 0,
        })
        .await
    }

    /// [`Client::health_history`] with every field of the request (a limit of
    /// up to 1000 checks listed).
    pub async fn health_history_with(
        &self,
        request: GetHealthHistoryRequest,
    ) -> Result<HealthHistory> {
        Ok(self
            .workloads
            .clone()
            .get_health_history(request)
            .await?
            .into_inner())
    }
}
