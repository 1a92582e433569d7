//! Fleet operations as rows: created by the node a request reached, carried
//! out by the node that holds them (under an owner epoch, as workloads are),
//! and paused, resumed or cancelled by any node through their state column.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use super::{Store, StoreResult, database, entities::fleet_operation};
use crate::domain::{FleetItem, FleetOperation, FleetParams, FleetState, NodeId, Timestamp, now};

/// What of an operation the body column holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Body {
    params: FleetParams,
    target: String,
    message: String,
    items: Vec<FleetItem>,
    parallel: u32,
    actor: String,
    finished_at: Option<Timestamp>,
    deadline: Timestamp,
}

fn body(operation: &FleetOperation) -> String {
    serde_json::to_string(&Body {
        params: operation.params.clone(),
        target: operation.target.clone(),
        message: operation.message.clone(),
        items: operation.items.clone(),
        parallel: operation.parallel,
        actor: operation.actor.clone(),
        finished_at: operation.finished_at,
        deadline: operation.deadline,
    })
    .unwrap_or_else(|_| "{}".to_owned())
}

fn operation(row: fleet_operation::Model) -> Option<FleetOperation> {
    let body: Body = match serde_json::from_str(&row.body) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, id = %row.id, "a fleet operation's stored body cannot be read");
            return None;
        }
    };
    Some(FleetOperation {
        id: row.id,
        params: body.params,
        target: body.target,
        state: FleetState::parse(&row.state)?,
        message: body.message,
        items: body.items,
        parallel: body.parallel,
        node_id: row.node_id,
        owner_epoch: u64::try_from(row.owner_epoch).unwrap_or(0),
        actor: body.actor,
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
        finished_at: body.finished_at,
        deadline: body.deadline,
    })
}

const UNDER_WAY: [&str; 2] = ["running", "paused"];

impl Store {
    pub async fn insert_operation(&self, operation: &FleetOperation) -> StoreResult<()> {
        let target_node = match &operation.params {
            FleetParams::Drain { node_id, .. } => Some(node_id.clone()),
            FleetParams::RollingRestart { .. } | FleetParams::Rollout { .. } => None,
        };
        fleet_operation::Entity::insert(fleet_operation::ActiveModel {
            id: Set(operation.id.clone()),
            kind: Set(operation.params.kind().as_str().to_owned()),
            state: Set(operation.state.as_str().to_owned()),
            node_id: Set(operation.node_id.clone()),
            owner_epoch: Set(i64::try_from(operation.owner_epoch).unwrap_or(i64::MAX)),
            target_node: Set(target_node),
            body: Set(body(operation)),
            created_at: Set(operation.created_at.0),
            updated_at: Set(operation.updated_at.0),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(database("recording a fleet operation"))?;
        Ok(())
    }

    pub async fn operation(&self, id: &str) -> StoreResult<Option<FleetOperation>> {
        Ok(fleet_operation::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(database("reading a fleet operation"))?
            .and_then(operation))
    }

    /// Newest first; only those in `states` unless it is empty.
    pub async fn operations(
        &self,
        states: &[FleetState],
        limit: u64,
    ) -> StoreResult<Vec<FleetOperation>> {
        let mut query = fleet_operation::Entity::find();
        if !states.is_empty() {
            query = query.filter(
                fleet_operation::Column::State.is_in(states.iter().map(|state| state.as_str())),
            );
        }
        Ok(query
            .order_by_desc(fleet_operation::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(database("listing fleet operations"))?
            .into_iter()
            .filter_map(operation)
            .collect())
    }

    /// The drain under way on each node that has one.
    pub async fn drains_under_way(&self) -> StoreResult<HashMap<NodeId, String>> {
        Ok(fleet_operation::Entity::find()
            .filter(fleet_operation::Column::State.is_in(UNDER_WAY))
            .filter(fleet_operation::Column::TargetNode.is_not_null())
            .all(&self.db)
            .await
            .map_err(database("listing drains under way"))?
            .into_iter()
            .filter_map(|row| Some((row.target_node?, row.id)))
            .collect())
    }

    /// Saves the progress of an operation held at `operation.owner_epoch`
    /// (its items, message, end); its state column is left alone unless
    /// `state` is given and the stored state is one of `from`. `false` when
    /// the epoch moved on: another node carries it out now.
    pub async fn save_operation(
        &self,
        operation: &FleetOperation,
        state: Option<(&[FleetState], FleetState)>,
    ) -> StoreResult<bool> {
        let epoch = i64::try_from(operation.owner_epoch).unwrap_or(i64::MAX);
        let result = fleet_operation::Entity::update_many()
            .col_expr(fleet_operation::Column::Body, Expr::value(body(operation)))
            .col_expr(fleet_operation::Column::UpdatedAt, Expr::value(now().0))
            .filter(fleet_operation::Column::Id.eq(operation.id.clone()))
            .filter(fleet_operation::Column::OwnerEpoch.eq(epoch))
            .exec(&self.db)
            .await
            .map_err(database("saving a fleet operation's progress"))?;
        if result.rows_affected == 0 {
            return Ok(false);
        }
        if let Some((from, to)) = state {
            fleet_operation::Entity::update_many()
                .col_expr(fleet_operation::Column::State, Expr::value(to.as_str()))
                .filter(fleet_operation::Column::Id.eq(operation.id.clone()))
                .filter(fleet_operation::Column::OwnerEpoch.eq(epoch))
                .filter(
                    fleet_operation::Column::State.is_in(from.iter().map(|state| state.as_str())),
                )
                .exec(&self.db)
                .await
                .map_err(database("ending a fleet operation"))?;
        }
        Ok(true)
    }

    /// Moves an operation from one of `from` to `to` (pause, resume, cancel);
    /// the operation as it is afterwards, or `None` when there is none.
    pub async fn set_operation_state(
        &self,
        id: &str,
        from: &[FleetState],
        to: FleetState,
    ) -> StoreResult<Option<FleetOperation>> {
        fleet_operation::Entity::update_many()
            .col_expr(fleet_operation::Column::State, Expr::value(to.as_str()))
            .col_expr(fleet_operation::Column::UpdatedAt, Expr::value(now().0))
            .filter(fleet_operation::Column::Id.eq(id.to_owned()))
            .filter(fleet_operation::Column::State.is_in(from.iter().map(|state| state.as_str())))
            .exec(&self.db)
            .await
            .map_err(database("changing a fleet operation's state"))?;
        self.operation(id).await
    }

    /// Takes an operation over: this node holds it from now on, at the next
    /// epoch. `None` when another node took it first.
    pub async fn claim_operation(
        &self,
        operation: &FleetOperation,
        node: &NodeId,
    ) -> StoreResult<Option<FleetOperation>> {
        let epoch = i64::try_from(operation.owner_epoch).unwrap_or(i64::MAX);
        let result = fleet_operation::Entity::update_many()
            .col_expr(
                fleet_operation::Column::NodeId,
                Expr::value(Some(node.clone())),
            )
            .col_expr(fleet_operation::Column::OwnerEpoch, Expr::value(epoch + 1))
            .filter(fleet_operation::Column::Id.eq(operation.id.clone()))
            .filter(fleet_operation::Column::OwnerEpoch.eq(epoch))
            .exec(&self.db)
            .await
            .map_err(database("taking a fleet operation over"))?;
        if result.rows_affected == 0 {
            return Ok(None);
        }
        self.operation(&operation.id).await
    }

    /// Operations under way that `node` should carry out: its own (it
    /// restarted), and those of nodes no longer active.
    pub async fn operations_to_adopt(&self, node: &NodeId) -> StoreResult<Vec<FleetOperation>> {
        let active: Vec<NodeId> = self
            .nodes(false)
            .await?
            .into_iter()
            .filter(|other| {
                other.state == crate::domain::NodeState::Active && &other.registration.id != node
            })
            .map(|other| other.registration.id)
            .collect();
        Ok(self
            .operations(&[FleetState::Running, FleetState::Paused], 1000)
            .await?
            .into_iter()
            .filter(|operation| match &operation.node_id {
                Some(owner) => !active.contains(owner),
                None => true,
            })
            .collect())
    }
}
