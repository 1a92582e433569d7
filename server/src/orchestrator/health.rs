//! Health history: every liveness check a run makes is recorded, in batches by
//! one writer task, and trimmed by retention; the history is read back with its
//! uptime, and deployments are summed up as healthy, degraded or unavailable.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

use super::{Orchestrator, Result};
use crate::{
    domain::{
        CheckRecord, DeploymentHealth, DeploymentId, Timestamp, Uptime, WorkloadId, WorkloadState,
        deployment_health, now,
    },
    store::Store,
};

/// How much health history is kept.
#[derive(Debug, Clone, Copy)]
pub struct HealthRetention {
    /// Checks older than this are deleted.
    pub max_age: Duration,
    /// Each workload keeps at most this many checks (the newest).
    pub per_workload: u64,
}

impl Default for HealthRetention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            per_workload: 1000,
        }
    }
}

/// Checks waiting for the writer; beyond this they are counted and dropped
/// rather than holding up the runs that make them.
const QUEUE: usize = 10_000;
/// Checks written per batch, at most.
const BATCH: usize = 1000;
/// How often retention trims the history.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Hands checks to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct HealthRecorder {
    sender: mpsc::Sender<CheckRecord>,
    dropped: Arc<AtomicU64>,
}

impl HealthRecorder {
    /// Starts the writer task; it ends once every recorder is dropped.
    pub(crate) fn start(store: Store, retention: HealthRetention) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write(store, retention, receiver, dropped.clone()));
        Self { sender, dropped }
    }

    /// Records a check; never waits. A check the writer cannot take is
    /// counted and reported by the writer.
    pub(crate) fn record(&self, check: CheckRecord) {
        if self.sender.try_send(check).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write(
    store: Store,
    retention: HealthRetention,
    mut receiver: mpsc::Receiver<CheckRecord>,
    dropped: Arc<AtomicU64>,
) {
    let mut trim = tokio::time::interval(TRIM_INTERVAL);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
                if let Err(error) = store.append_health_checks(&batch).await {
                    tracing::warn!(%error, checks = batch.len(), "storing health checks failed; they are not in the history");
                }
                batch.clear();
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    tracing::warn!(checks = lost, "health checks came faster than they could be stored; they are not in the history");
                }
            }
            _ = trim.tick() => {
                let before = Timestamp(now().0.saturating_sub(
                    i64::try_from(retention.max_age.as_micros()).unwrap_or(i64::MAX),
                ));
                match store.trim_health_checks(before, retention.per_workload.max(1)).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "health history trimmed"),
                    Err(error) => tracing::warn!(%error, "trimming the health history failed"),
                }
            }
        }
    }
}

/// A workload's checks in a window and what they say.
#[derive(Debug, Clone)]
pub struct HealthHistory {
    /// Newest first.
    pub checks: Vec<CheckRecord>,
    pub uptime: Uptime,
    /// The window's start.
    pub since: Timestamp,
}

impl Orchestrator {
    /// The workload's checks of the last `window` (newest first, at most
    /// `limit`), with the uptime over the whole window.
    pub async fn health_history(
        &self,
        id: &WorkloadId,
        window: Duration,
        limit: u64,
    ) -> Result<HealthHistory> {
        // NOT_FOUND for a workload that does not exist.
        self.get_workload(id).await?;
        let since = Timestamp(
            now()
                .0
                .saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX)),
        );
        let store = &self.inner.store;
        let checks = store.health_checks(id, since, limit).await?;
        let uptime = store.uptime(id, since).await?;
        Ok(HealthHistory {
            checks,
            uptime,
            since,
        })
    }

    /// The health of each of these deployments, from their workloads as stored.
    pub async fn deployments_health(
        &self,
        ids: &[DeploymentId],
    ) -> Result<HashMap<DeploymentId, DeploymentHealth>> {
        let mut by_deployment: HashMap<DeploymentId, Vec<_>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for workload in self.inner.store.workloads_of_deployments(ids).await? {
            if let Some(workloads) = by_deployment.get_mut(&workload.deployment_id) {
                workloads.push(workload);
            }
        }
        Ok(by_deployment
            .into_iter()
            .map(|(id, workloads)| {
                let states: Vec<WorkloadState> =
                    workloads.iter().map(WorkloadState::from).collect();
                (id, deployment_health(&states))
            })
            .collect())
    }
}
