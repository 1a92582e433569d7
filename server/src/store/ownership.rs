//! The queries behind ownership: the workloads of lost nodes, the workloads
//! waiting for a node, and this node's own unfinished ones.

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    Store, StoreResult, convert, database,
    entities::{node, workload},
};
use std::collections::HashSet;

use crate::domain::{NodeId, NodeState, Stage, Workload, WorkloadId};

/// Stages whose run is over.
const TERMINAL: [&str; 2] = ["stopped", "failed"];

impl Store {
    /// Workloads owned by a node that was declared lost whose run is not over
    /// or whose restart is pending, with the name of their node.
    pub async fn workloads_of_lost_nodes(&self) -> StoreResult<Vec<(Workload, String)>> {
        let lost: Vec<(NodeId, String)> = node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .column(node::Column::Name)
            .filter(node::Column::State.eq(NodeState::Down.as_str()))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("listing lost nodes"))?;
        if lost.is_empty() {
            return Ok(Vec::new());
        }
        let rows = workload::Entity::find()
            .filter(workload::Column::NodeId.is_in(lost.iter().map(|(id, _)| id.clone())))
            .filter(
                Condition::any()
                    .add(workload::Column::Stage.is_not_in(TERMINAL))
                    .add(workload::Column::NextRestartAt.is_not_null()),
            )
            .order_by_asc(workload::Column::UpdatedAt)
            .all(&self.db)
            .await
            .map_err(database("listing the workloads of lost nodes"))?;
        rows.into_iter()
            .map(|row| {
                let name = lost
                    .iter()
                    .find(|(id, _)| Some(id) == row.node_id.as_ref())
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default();
                convert::workload(row).map(|workload| (workload, name))
            })
            .collect()
    }

    /// Workloads waiting to be placed on a node, the longest-waiting first.
    pub async fn queued_workloads(&self, limit: u64) -> StoreResult<Vec<Workload>> {
        workload::Entity::find()
            .filter(workload::Column::Stage.eq(Stage::Pending.as_str()))
            .filter(workload::Column::PendingReason.is_not_null())
            .order_by_asc(workload::Column::UpdatedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("listing workloads waiting for a node"))?
            .into_iter()
            .map(convert::workload)
            .collect()
    }
}

impl Store {
    /// Which of `ids` `node` owns (or nobody does: a workload never started).
    pub async fn owned_by_node(
        &self,
        ids: &[WorkloadId],
        node: &NodeId,
    ) -> StoreResult<HashSet<WorkloadId>> {
        let owned: Vec<WorkloadId> = workload::Entity::find()
            .select_only()
            .column(workload::Column::Id)
            .filter(workload::Column::Id.is_in(ids.iter().cloned()))
            .filter(owned_by(node))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("reading the owners of workloads"))?;
        Ok(owned.into_iter().collect())
    }
}

impl Store {
    /// Which of `ids` `node` owns with a run that is not over.
    pub async fn running_here(
        &self,
        ids: &[WorkloadId],
        node: &NodeId,
    ) -> StoreResult<HashSet<WorkloadId>> {
        let owned: Vec<WorkloadId> = workload::Entity::find()
            .select_only()
            .column(workload::Column::Id)
            .filter(workload::Column::Id.is_in(ids.iter().cloned()))
            .filter(workload::Column::NodeId.eq(node.clone()))
            .filter(workload::Column::Stage.is_not_in(TERMINAL))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("reading the owners of workloads"))?;
        Ok(owned.into_iter().collect())
    }
}

/// Rows owned by `node`, or by no node (written before nodes owned workloads).
pub(super) fn owned_by(node: &NodeId) -> Condition {
    Condition::any()
        .add(workload::Column::NodeId.eq(node.clone()))
        .add(workload::Column::NodeId.is_null())
}
