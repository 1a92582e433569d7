//! Log lines: appended in batches, read by seq, trimmed by retention.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, sea_query::Expr,
};

use std::collections::HashSet;

use super::{
    Store, StoreError, StoreResult, convert, database,
    entities::{log_line, workload},
    is_foreign_key_violation,
};
use crate::domain::{LogFilter, LogLine, WorkloadId};

/// Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

fn of_workload(workload_id: &WorkloadId) -> Select<log_line::Entity> {
    log_line::Entity::find().filter(log_line::Column::WorkloadId.eq(workload_id))
}

fn filtered(query: Select<log_line::Entity>, filter: &LogFilter) -> Select<log_line::Entity> {
    let mut condition = Condition::all();
    if !filter.streams.is_empty() {
        condition = condition.add(
            log_line::Column::Stream.is_in(filter.streams.iter().map(|stream| stream.as_str())),
        );
    }
    if filter.min_level.is_some() {
        condition = condition.add(
            log_line::Column::Level.is_in(filter.levels().into_iter().map(|level| level.as_str())),
        );
    }
    if !filter.stages.is_empty() {
        condition = condition
            .add(log_line::Column::Stage.is_in(filter.stages.iter().map(|stage| stage.as_str())));
    }
    if let Some(generation) = filter.generation {
        condition = condition.add(log_line::Column::Generation.eq(generation as i64));
    }
    if let Some(since) = filter.since {
        condition = condition.add(log_line::Column::Ts.gte(since.0));
    }
    query.filter(condition)
}

impl Store {
    /// Stores a batch of lines, atomically. Lines of a workload that no longer
    /// exists (deleted while its last lines were on their way) are dropped: the
    /// foreign key refuses them and they would have no reader.
    pub async fn append_log_lines(&self, lines: &[LogLine]) -> StoreResult<()> {
        match self.insert_log_lines(lines).await {
            Err(StoreError::Database { source, .. }) if is_foreign_key_violation(&source) => {
                let kept = self.lines_of_existing_workloads(lines).await?;
                tracing::debug!(
                    dropped = lines.len() - kept.len(),
                    "dropped log lines of deleted workloads"
                );
                self.insert_log_lines(&kept).await
            }
            other => other,
        }
    }

    /// The lines of `lines` whose workload exists.
    async fn lines_of_existing_workloads(&self, lines: &[LogLine]) -> StoreResult<Vec<LogLine>> {
        let existing = self
            .existing_workloads(lines.iter().map(|line| &line.workload_id))
            .await?;
        Ok(lines
            .iter()
            .filter(|line| existing.contains(&line.workload_id))
            .cloned()
            .collect())
    }

    /// Those of `ids` that name a workload that exists.
    pub(super) async fn existing_workloads(
        &self,
        ids: impl IntoIterator<Item = &WorkloadId>,
    ) -> StoreResult<HashSet<WorkloadId>> {
        let ids: HashSet<&WorkloadId> = ids.into_iter().collect();
        Ok(workload::Entity::find()
            .select_only()
            .column(workload::Column::Id)
            .filter(workload::Column::Id.is_in(ids.into_iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("finding which workloads exist"))?
            .into_iter()
            .collect())
    }

    async fn insert_log_lines(&self, lines: &[LogLine]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let txn = sea_orm::TransactionTrait::begin(&self.db)
            .await
            .map_err(database("starting a transaction"))?;
        for chunk in lines.chunks(ROWS_PER_STATEMENT) {
            log_line::Entity::insert_many(
                chunk
                    .iter()
                    .map(|line| convert::log_line_row(line).into_active_model()),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(database("storing log lines"))?;
        }
        txn.commit().await.map_err(database("committing log lines"))
    }

    /// Up to `limit` lines of a workload with seq above `after`, in order.
    pub async fn read_log_lines(
        &self,
        workload_id: &WorkloadId,
        after: u64,
        limit: u64,
    ) -> StoreResult<Vec<LogLine>> {
        self.read_filtered_log_lines(workload_id, after, limit, &LogFilter::default())
            .await
    }

    /// Up to `limit` lines passing `filter` with seq above `after`, in order.
    pub async fn read_filtered_log_lines(
        &self,
        workload_id: &WorkloadId,
        after: u64,
        limit: u64,
        filter: &LogFilter,
    ) -> StoreResult<Vec<LogLine>> {
        filtered(of_workload(workload_id), filter)
            .filter(log_line::Column::Seq.gt(after as i64))
            .order_by_asc(log_line::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("reading log lines"))?
            .into_iter()
            .map(convert::log_line)
            .collect()
    }

    /// Where a reader of the last `count` lines passing `filter` starts: the seq
    /// before the first of them.
    pub async fn tail_start(
        &self,
        workload_id: &WorkloadId,
        count: u64,
        filter: &LogFilter,
    ) -> StoreResult<u64> {
        if count == 0 {
            return self.last_log_seq(workload_id).await;
        }
        let seqs: Vec<i64> = filtered(of_workload(workload_id), filter)
            .select_only()
            .column(log_line::Column::Seq)
            .order_by_desc(log_line::Column::Seq)
            .limit(count)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("finding the tail"))?;
        Ok(seqs
            .last()
            .map_or(0, |first| (*first as u64).saturating_sub(1)))
    }

    /// The seq before the first line at or after `since` (for a reader from a time).
    pub async fn seq_before_time(&self, workload_id: &WorkloadId, since: i64) -> StoreResult<u64> {
        let first: Option<Option<i64>> = of_workload(workload_id)
            .filter(log_line::Column::Ts.gte(since))
            .select_only()
            .column_as(log_line::Column::Seq.min(), "min")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("finding a time in the log"))?;
        match first.flatten() {
            Some(seq) => Ok((seq as u64).saturating_sub(1)),
            None => self.last_log_seq(workload_id).await,
        }
    }

    /// The lowest retained seq of a workload, if it has lines.
    pub async fn first_log_seq(&self, workload_id: &WorkloadId) -> StoreResult<Option<u64>> {
        let first: Option<Option<i64>> = of_workload(workload_id)
            .select_only()
            .column_as(log_line::Column::Seq.min(), "min")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("reading the first log seq"))?;
        Ok(first.flatten().map(|seq| seq as u64))
    }

    /// How many lines a workload has stored, and how many characters of message.
    pub async fn log_usage(&self, workload_id: &WorkloadId) -> StoreResult<(u64, u64)> {
        let usage: Option<(i64, Option<i64>)> = of_workload(workload_id)
            .select_only()
            .column_as(log_line::Column::Seq.count(), "lines")
            .column_as(Expr::cust("CAST(SUM(LENGTH(message)) AS BIGINT)"), "bytes")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("measuring a log"))?;
        let (lines, bytes) = usage.unwrap_or((0, None));
        Ok((lines as u64, bytes.unwrap_or(0) as u64))
    }

    /// Deletes a workload's lines up to and including `seq`.
    pub async fn delete_log_lines_through(
        &self,
        workload_id: &WorkloadId,
        seq: u64,
    ) -> StoreResult<u64> {
        let result = log_line::Entity::delete_many()
            .filter(log_line::Column::WorkloadId.eq(workload_id))
            .filter(log_line::Column::Seq.lte(seq as i64))
            .exec(&self.db)
            .await
            .map_err(database("dropping old log lines"))?;
        Ok(result.rows_affected)
    }

    /// Where a workload's output of `generation` stopped being stored: the
    /// timestamp of its last output line, and how many lines have that timestamp.
    pub async fn output_resume_point(
        &self,
        workload_id: &WorkloadId,
        generation: u64,
    ) -> StoreResult<(Option<i64>, u64)> {
        let output_of_generation = || {
            of_workload(workload_id)
                .filter(log_line::Column::Generation.eq(generation as i64))
                .filter(log_line::Column::Stream.ne("system"))
        };
        let last: Option<Option<i64>> = output_of_generation()
            .select_only()
            .column_as(log_line::Column::Ts.max(), "max")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("reading the last output time"))?;
        let Some(last) = last.flatten() else {
            return Ok((None, 0));
        };
        let seen = output_of_generation()
            .filter(log_line::Column::Ts.eq(last))
            .count(&self.db)
            .await
            .map_err(database("counting the last output lines"))?;
        Ok((Some(last), seen))
    }

    /// The highest stored seq of a workload, 0 when it has none.
    pub async fn last_log_seq(&self, workload_id: &WorkloadId) -> StoreResult<u64> {
        let last: Option<Option<i64>> = of_workload(workload_id)
            .select_only()
            .column_as(log_line::Column::Seq.max(), "max")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("reading the last log seq"))?;
        Ok(last.flatten().unwrap_or(0) as u64)
    }
}
