//! Log lines: appended in batches, read by seq.

use sea_orm::{
    ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Store, StoreResult, convert, database, entities::log_line};
use crate::domain::{LogLine, WorkloadId};

/// Rows per INSERT statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Stores a batch of lines, atomically.
    pub async fn append_log_lines(&self, lines: &[LogLine]) -> StoreResult<()> {
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
        log_line::Entity::find()
            .filter(log_line::Column::WorkloadId.eq(workload_id.to_string()))
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

    /// Where a workload's output of `generation` stopped being stored: the
    /// timestamp of its last output line, and how many lines have that timestamp.
    pub async fn output_resume_point(
        &self,
        workload_id: &WorkloadId,
        generation: u64,
    ) -> StoreResult<(Option<i64>, u64)> {
        let output_of_generation = || {
            log_line::Entity::find()
                .filter(log_line::Column::WorkloadId.eq(workload_id.to_string()))
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
        let last: Option<Option<i64>> = log_line::Entity::find()
            .select_only()
            .column_as(log_line::Column::Seq.max(), "max")
            .filter(log_line::Column::WorkloadId.eq(workload_id.to_string()))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("reading the last log seq"))?;
        Ok(last.flatten().unwrap_or(0) as u64)
    }
}
