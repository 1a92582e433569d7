//! Reading the event log.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, StoreResult, convert, database, entities::event};
use crate::domain::{DeploymentId, Event, WorkloadId};

/// Which events a watcher wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub deployment_id: Option<DeploymentId>,
    pub workload_id: Option<WorkloadId>,
}

impl EventFilter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        self.deployment_id
            .as_ref()
            .is_none_or(|id| *id == event.deployment_id)
            && self
                .workload_id
                .as_ref()
                .is_none_or(|id| event.workload_id.as_ref() == Some(id))
    }
}

impl Store {
    pub(super) async fn last_revision_in<C: ConnectionTrait>(connection: &C) -> StoreResult<u64> {
        let last: Option<Option<i64>> = event::Entity::find()
            .select_only()
            .column_as(event::Column::Revision.max(), "max")
            .into_tuple()
            .one(connection)
            .await
            .map_err(database("reading the last revision"))?;
        Ok(last.flatten().unwrap_or(0) as u64)
    }

    /// The revision of the newest event, 0 when there is none.
    pub async fn last_revision(&self) -> StoreResult<u64> {
        Self::last_revision_in(&self.db).await
    }

    /// The revision of the oldest retained event, if any.
    pub async fn first_revision(&self) -> StoreResult<Option<u64>> {
        let first: Option<Option<i64>> = event::Entity::find()
            .select_only()
            .column_as(event::Column::Revision.min(), "min")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(database("reading the first revision"))?;
        Ok(first.flatten().map(|revision| revision as u64))
    }

    /// Deletes the events up to and including `revision`.
    pub async fn delete_events_through(&self, revision: u64) -> StoreResult<u64> {
        let result = event::Entity::delete_many()
            .filter(event::Column::Revision.lte(revision as i64))
            .exec(&self.db)
            .await
            .map_err(database("compacting events"))?;
        Ok(result.rows_affected)
    }

    /// Up to `limit` events with a revision above `after`, in order, that pass `filter`.
    pub async fn read_events(
        &self,
        after: u64,
        filter: &EventFilter,
        limit: u64,
    ) -> StoreResult<Vec<Event>> {
        let mut query = event::Entity::find().filter(event::Column::Revision.gt(after as i64));
        if let Some(id) = &filter.deployment_id {
            query = query.filter(event::Column::DeploymentId.eq(id));
        }
        if let Some(id) = &filter.workload_id {
            query = query.filter(event::Column::WorkloadId.eq(id));
        }
        query
            .order_by_asc(event::Column::Revision)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("reading events"))?
            .into_iter()
            .map(convert::event)
            .collect()
    }
}
