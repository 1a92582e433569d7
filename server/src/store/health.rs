//! Health history: liveness checks appended in batches, read newest first,
//! summed up over a window, trimmed by age and by count per workload.

use std::time::Duration;

use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use super::{
    Store, StoreError, StoreResult, convert, database,
    entities::{health_check, workload},
    is_foreign_key_violation,
};
use crate::domain::{CheckRecord, DeploymentId, Timestamp, Uptime, Workload, WorkloadId};

/// Checks, passed, mean response time and first time, as a window's query sums them up.
type Sums = (i64, Option<i64>, Option<i64>, Option<i64>);

/// Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 1000;

fn row(check: &CheckRecord) -> health_check::ActiveModel {
    health_check::Model {
        workload_id: check.workload_id.clone(),
        at: check.at.0,
        generation: check.generation as i64,
        passed: check.passed,
        response_us: i64::try_from(check.response_time.as_micros()).unwrap_or(i64::MAX),
        reason: check.reason.clone(),
    }
    .into_active_model()
}

fn record(row: health_check::Model) -> CheckRecord {
    CheckRecord {
        workload_id: row.workload_id,
        generation: row.generation.max(0) as u64,
        at: Timestamp(row.at),
        passed: row.passed,
        response_time: Duration::from_micros(row.response_us.max(0) as u64),
        reason: row.reason,
    }
}

impl Store {
    /// Stores a batch of checks. Checks of a workload deleted meanwhile are
    /// dropped (the foreign key refuses them, and nobody could read them).
    pub async fn append_health_checks(&self, checks: &[CheckRecord]) -> StoreResult<()> {
        match self.insert_health_checks(checks).await {
            Err(StoreError::Database { source, .. }) if is_foreign_key_violation(&source) => {
                let existing = self
                    .existing_workloads(checks.iter().map(|check| &check.workload_id))
                    .await?;
                let kept: Vec<CheckRecord> = checks
                    .iter()
                    .filter(|check| existing.contains(&check.workload_id))
                    .cloned()
                    .collect();
                self.insert_health_checks(&kept).await
            }
            other => other,
        }
    }

    async fn insert_health_checks(&self, checks: &[CheckRecord]) -> StoreResult<()> {
        if checks.is_empty() {
            return Ok(());
        }
        let txn = sea_orm::TransactionTrait::begin(&self.db)
            .await
            .map_err(database("starting a transaction"))?;
        for chunk in checks.chunks(ROWS_PER_STATEMENT) {
            health_check::Entity::insert_many(chunk.iter().map(row))
                .on_conflict(
                    OnConflict::columns([
                        health_check::Column::WorkloadId,
                        health_check::Column::At,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(database("storing health checks"))?;
        }
        txn.commit()
            .await
            .map_err(database("committing health checks"))
    }

    /// A workload's checks at or after `since`, newest first, at most `limit`.
    pub async fn health_checks(
        &self,
        workload_id: &WorkloadId,
        since: Timestamp,
        limit: u64,
    ) -> StoreResult<Vec<CheckRecord>> {
        Ok(health_check::Entity::find()
            .filter(health_check::Column::WorkloadId.eq(workload_id))
            .filter(health_check::Column::At.gte(since.0))
            .order_by_desc(health_check::Column::At)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("reading health checks"))?
            .into_iter()
            .map(record)
            .collect())
    }

    /// What a workload's checks at or after `since` say together.
    pub async fn uptime(&self, workload_id: &WorkloadId, since: Timestamp) -> StoreResult<Uptime> {
        let summed: Option<Sums> = health_check::Entity::find()
            .filter(health_check::Column::WorkloadId.eq(workload_id))
            .filter(health_check::Column::At.gte(since.0))
            .select_only()
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "checks")
            .column_as(
                Expr::cust("CAST(SUM(CASE WHEN passed THEN 1 ELSE 0 END) AS BIGINT)"),
                "passed",
            )
            .column_as(Expr::cust("CAST(AVG(response_us) AS BIGINT)"), "mean")
            .column_as(health_check::Column::At.min(), "first")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("summing up health checks"))?;
        let (checks, passed, mean, first) = summed.unwrap_or((0, None, None, None));
        Ok(Uptime {
            checks: checks.max(0) as u64,
            passed: passed.unwrap_or(0).max(0) as u64,
            mean_response_time: Duration::from_micros(mean.unwrap_or(0).max(0) as u64),
            first_check_at: first.map(Timestamp),
        })
    }

    /// Deletes checks older than `before`, and of each workload all but its
    /// newest `keep` checks; returns how many were deleted.
    pub async fn trim_health_checks(&self, before: Timestamp, keep: u64) -> StoreResult<u64> {
        let mut deleted = health_check::Entity::delete_many()
            .filter(health_check::Column::At.lt(before.0))
            .exec(&self.db)
            .await
            .map_err(database("trimming health checks by age"))?
            .rows_affected;
        let over: Vec<WorkloadId> = health_check::Entity::find()
            .select_only()
            .column(health_check::Column::WorkloadId)
            .group_by(health_check::Column::WorkloadId)
            .having(Expr::cust(format!("COUNT(*) > {keep}")))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("counting health checks"))?;
        for workload_id in over {
            // The oldest check kept.
            let oldest_kept: Option<i64> = health_check::Entity::find()
                .filter(health_check::Column::WorkloadId.eq(&workload_id))
                .select_only()
                .column(health_check::Column::At)
                .order_by_desc(health_check::Column::At)
                .offset(keep.saturating_sub(1))
                .limit(1)
                .into_tuple()
                .one(&self.db)
                .await
                .map_err(database("finding the oldest health check kept"))?;
            if let Some(oldest_kept) = oldest_kept {
                deleted += health_check::Entity::delete_many()
                    .filter(health_check::Column::WorkloadId.eq(&workload_id))
                    .filter(health_check::Column::At.lt(oldest_kept))
                    .exec(&self.db)
                    .await
                    .map_err(database("trimming health checks by count"))?
                    .rows_affected;
            }
        }
        Ok(deleted)
    }

    /// Every workload of these deployments, in any stage.
    pub async fn workloads_of_deployments(
        &self,
        ids: &[DeploymentId],
    ) -> StoreResult<Vec<Workload>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        workload::Entity::find()
            .filter(workload::Column::DeploymentId.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(database("reading the workloads of deployments"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{
        domain::{CheckRecord, Timestamp, Workload},
        logs::tests::{postgres_store, workload_in},
        store::Store,
    };

    fn check(workload: &Workload, at: i64, passed: bool) -> CheckRecord {
        CheckRecord {
            workload_id: workload.id.clone(),
            generation: 1,
            at: Timestamp(at),
            passed,
            response_time: Duration::from_micros(100 + 2 * at as u64),
            reason: if passed {
                String::new()
            } else {
                format!("failed at {at}")
            },
        }
    }

    /// Appends, reads newest first, sums up a window and trims by age and by
    /// count, on SQLite and (when `SLIPWAY_TEST_POSTGRES_URL` is set) PostgreSQL.
    #[tokio::test]
    async fn health_history_is_kept_summed_up_and_trimmed() {
        let mut stores = vec![Store::connect("sqlite::memory:").await.expect("store")];
        stores.extend(postgres_store().await);
        for store in stores {
            let (_orchestrator, workload, _root) = workload_in(&store).await;
            let (_other_orchestrator, other, _other_root) = workload_in(&store).await;
            // 1..=10, every other one failed; the other workload's 3 all passed.
            let mut checks: Vec<CheckRecord> = (1..=10)
                .map(|at| check(&workload, at, at % 2 == 0))
                .collect();
            checks.extend((1..=3).map(|at| check(&other, at, true)));
            store.append_health_checks(&checks).await.expect("append");
            // The same checks again change nothing.
            store
                .append_health_checks(&checks)
                .await
                .expect("append again");

            let newest = store
                .health_checks(&workload.id, Timestamp(0), 3)
                .await
                .expect("read");
            let ats: Vec<i64> = newest.iter().map(|check| check.at.0).collect();
            assert_eq!(ats, [10, 9, 8]);
            assert_eq!(newest[1].reason, "failed at 9");
            let uptime = store
                .uptime(&workload.id, Timestamp(5))
                .await
                .expect("uptime");
            assert_eq!((uptime.checks, uptime.passed), (6, 3));
            assert_eq!(uptime.first_check_at, Some(Timestamp(5)));
            assert_eq!(uptime.mean_response_time, Duration::from_micros(115));

            // Older than 3 goes; then each keeps its newest 4.
            let deleted = store
                .trim_health_checks(Timestamp(3), 4)
                .await
                .expect("trim");
            assert_eq!(deleted, 2 + 2 + 4);
            let kept = store
                .health_checks(&workload.id, Timestamp(0), 100)
                .await
                .expect("read");
            let ats: Vec<i64> = kept.iter().map(|check| check.at.0).collect();
            assert_eq!(ats, [10, 9, 8, 7]);
            let other_kept = store
                .health_checks(&other.id, Timestamp(0), 100)
                .await
                .expect("read");
            assert_eq!(other_kept.len(), 1);
        }
    }
}
