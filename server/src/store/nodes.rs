//! Nodes: registration, heartbeats, and declaring lost the nodes whose
//! heartbeat is older than the TTL they declared.
//!
//! Every time here is the database's clock, never a node's: two nodes whose
//! clocks disagree still agree on whose heartbeat is stale.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait, sea_query::Expr,
};

use super::{
    Store, StoreError, StoreResult, database,
    entities::{node, workload},
};
use crate::domain::{Node, NodeId, NodeRegistration, NodeState, Scheduling, Stage, Timestamp};

/// The database's clock, in microseconds since the Unix epoch.
fn database_now(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Registers this node: a new row, or the next incarnation of a node id
    /// that registered before (the same server, restarted). Either way it is
    /// active from now on, with a fresh heartbeat.
    pub async fn register_node(&self, registration: &NodeRegistration) -> StoreResult<Node> {
        let now = Expr::cust(database_now(self.backend()));
        let labels = serde_json::to_string(&registration.labels).unwrap_or_else(|_| "{}".into());
        let runtimes =
            serde_json::to_string(&registration.runtimes).unwrap_or_else(|_| "[]".into());
        let txn = self
            .db
            .begin()
            .await
            .map_err(database("starting a transaction"))?;
        let existing = node::Entity::find_by_id(registration.id.clone())
            .one(&txn)
            .await
            .map_err(database("reading a node"))?;
        // The times are the database's: written by expression, below (an
        // UPDATE may not assign a column twice, so they stay unset here).
        let mut row = node::ActiveModel {
            id: Set(registration.id.clone()),
            name: Set(registration.name.clone()),
            address: Set(registration.address.clone()),
            labels: Set(labels),
            runtimes: Set(runtimes),
            capacity: Set(i64::from(registration.capacity)),
            version: Set(registration.version.clone()),
            state: Set(NodeState::Active.as_str().to_owned()),
            reason: Set(String::new()),
            incarnation: Set(existing.as_ref().map_or(1, |row| row.incarnation + 1)),
            heartbeat_interval_ms: Set(millis(registration.heartbeat_interval)),
            heartbeat_ttl_ms: Set(millis(registration.heartbeat_ttl)),
            registered_at: NotSet,
            heartbeat_at: NotSet,
            // An operator's pause outlives a restart of the node.
            scheduling: NotSet,
        };
        if existing.is_some() {
            node::Entity::update_many()
                .set(row)
                .col_expr(node::Column::RegisteredAt, now.clone())
                .col_expr(node::Column::HeartbeatAt, now)
                .filter(node::Column::Id.eq(registration.id.clone()))
                .exec(&txn)
                .await
                .map_err(database("registering a node again"))?;
        } else {
            row.registered_at = Set(0);
            row.heartbeat_at = Set(0);
            row.scheduling = Set(Scheduling::Eligible.as_str().to_owned());
            node::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map_err(database("registering a node"))?;
            node::Entity::update_many()
                .col_expr(node::Column::RegisteredAt, now.clone())
                .col_expr(node::Column::HeartbeatAt, now)
                .filter(node::Column::Id.eq(registration.id.clone()))
                .exec(&txn)
                .await
                .map_err(database("registering a node"))?;
        }
        txn.commit()
            .await
            .map_err(database("committing a node's registration"))?;
        self.node(registration.id.as_str())
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                what: "node",
                detail: "the node just registered is not there".to_owned(),
            })
    }

    /// Renews this incarnation's heartbeat. False when it is no longer the
    /// active incarnation: another node declared it lost, or a newer start of
    /// the same node id registered.
    pub async fn heartbeat_node(&self, id: &NodeId, incarnation: u64) -> StoreResult<bool> {
        let result = node::Entity::update_many()
            .col_expr(
                node::Column::HeartbeatAt,
                Expr::cust(database_now(self.backend())),
            )
            .filter(node::Column::Id.eq(id.clone()))
            .filter(node::Column::Incarnation.eq(incarnation as i64))
            .filter(node::Column::State.eq(NodeState::Active.as_str()))
            .exec(&self.db)
            .await
            .map_err(database("renewing a node's heartbeat"))?;
        Ok(result.rows_affected == 1)
    }

    /// Declares down every active node whose last heartbeat is older than the
    /// TTL it declared, and returns them. One statement: two nodes doing this
    /// at once each get a disjoint set (a row is updated once).
    pub async fn mark_lost_nodes(&self) -> StoreResult<Vec<Node>> {
        let now = database_now(self.backend());
        let lost = node::Entity::update_many()
            .col_expr(
                node::Column::State,
                Expr::value(NodeState::Down.as_str().to_owned()),
            )
            .col_expr(
                node::Column::Reason,
                Expr::value("missed its heartbeat TTL".to_owned()),
            )
            .filter(node::Column::State.eq(NodeState::Active.as_str()))
            .filter(Expr::cust(format!(
                "heartbeat_at + heartbeat_ttl_ms * 1000 < {now}"
            )))
            .exec_with_returning(&self.db)
            .await
            .map_err(database("declaring nodes lost"))?;
        let mut nodes = Vec::with_capacity(lost.len());
        for row in lost {
            nodes.push(node_from_row(row, 0)?);
        }
        Ok(nodes)
    }

    /// Declares this incarnation down itself, with `reason` (it stopped its
    /// workloads while cut off from the database): its workloads are failed
    /// over as those of any lost node. Returns whether it was active.
    pub async fn mark_node_down(
        &self,
        id: &NodeId,
        incarnation: u64,
        reason: &str,
    ) -> StoreResult<bool> {
        let result = node::Entity::update_many()
            .col_expr(
                node::Column::State,
                Expr::value(NodeState::Down.as_str().to_owned()),
            )
            .col_expr(node::Column::Reason, Expr::value(reason.to_owned()))
            .filter(node::Column::Id.eq(id.clone()))
            .filter(node::Column::Incarnation.eq(incarnation as i64))
            .filter(node::Column::State.eq(NodeState::Active.as_str()))
            .exec(&self.db)
            .await
            .map_err(database("declaring this node down"))?;
        Ok(result.rows_affected == 1)
    }

    /// Sets whether placement may give the node new workloads.
    pub async fn set_node_scheduling(
        &self,
        id: &NodeId,
        scheduling: Scheduling,
    ) -> StoreResult<()> {
        node::Entity::update_many()
            .col_expr(
                node::Column::Scheduling,
                Expr::value(scheduling.as_str().to_owned()),
            )
            .filter(node::Column::Id.eq(id.clone()))
            .exec(&self.db)
            .await
            .map_err(database("pausing or resuming a node"))?;
        Ok(())
    }

    /// Sets the node's scheduling to `to` if it is `from` now; whether it was.
    pub async fn set_node_scheduling_if(
        &self,
        id: &NodeId,
        from: Scheduling,
        to: Scheduling,
    ) -> StoreResult<bool> {
        let result = node::Entity::update_many()
            .col_expr(
                node::Column::Scheduling,
                Expr::value(to.as_str().to_owned()),
            )
            .filter(node::Column::Id.eq(id.clone()))
            .filter(node::Column::Scheduling.eq(from.as_str()))
            .exec(&self.db)
            .await
            .map_err(database("changing a node's scheduling"))?;
        Ok(result.rows_affected == 1)
    }

    /// Marks this incarnation as having left cleanly.
    pub async fn deregister_node(&self, id: &NodeId, incarnation: u64) -> StoreResult<()> {
        node::Entity::update_many()
            .col_expr(
                node::Column::State,
                Expr::value(NodeState::Left.as_str().to_owned()),
            )
            .col_expr(
                node::Column::Reason,
                Expr::value("shut down cleanly".to_owned()),
            )
            .filter(node::Column::Id.eq(id.clone()))
            .filter(node::Column::Incarnation.eq(incarnation as i64))
            .exec(&self.db)
            .await
            .map_err(database("deregistering a node"))?;
        Ok(())
    }

    /// Every node, newest heartbeat first; those that left only when asked.
    pub async fn nodes(&self, include_left: bool) -> StoreResult<Vec<Node>> {
        let mut query = node::Entity::find().order_by_desc(node::Column::HeartbeatAt);
        if !include_left {
            query = query.filter(node::Column::State.ne(NodeState::Left.as_str()));
        }
        let rows = query
            .all(&self.db)
            .await
            .map_err(database("listing nodes"))?;
        let active = self.active_workloads_by_node().await?;
        rows.into_iter()
            .map(|row| {
                let count = active.get(&row.id).copied().unwrap_or(0);
                node_from_row(row, count)
            })
            .collect()
    }

    /// One node, by id or by name (the most recently heard-from one of that name).
    pub async fn node(&self, id_or_name: &str) -> StoreResult<Option<Node>> {
        let by_id = match NodeId::parse(id_or_name) {
            Ok(id) => node::Entity::find_by_id(id)
                .one(&self.db)
                .await
                .map_err(database("reading a node"))?,
            Err(_) => None,
        };
        let row = match by_id {
            Some(row) => Some(row),
            None => node::Entity::find()
                .filter(node::Column::Name.eq(id_or_name))
                .order_by_desc(node::Column::HeartbeatAt)
                .one(&self.db)
                .await
                .map_err(database("reading a node"))?,
        };
        let Some(row) = row else { return Ok(None) };
        let count = self
            .active_workloads_by_node()
            .await?
            .get(&row.id)
            .copied()
            .unwrap_or(0);
        node_from_row(row, count).map(Some)
    }

    /// How many workloads each node owns that are neither stopped nor failed.
    pub async fn active_workloads_by_node(&self) -> StoreResult<HashMap<NodeId, u32>> {
        let rows: Vec<(Option<NodeId>, i64)> = workload::Entity::find()
            .select_only()
            .column(workload::Column::NodeId)
            .column_as(workload::Column::Id.count(), "count")
            .filter(workload::Column::NodeId.is_not_null())
            .filter(
                workload::Column::Stage
                    .is_not_in([Stage::Stopped.as_str(), Stage::Failed.as_str()]),
            )
            .group_by(workload::Column::NodeId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(database("counting workloads"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(node, count)| {
                node.map(|node| (node, u32::try_from(count).unwrap_or(u32::MAX)))
            })
            .collect())
    }
}

fn node_from_row(row: node::Model, active_workloads: u32) -> StoreResult<Node> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "node",
        detail,
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&row.labels).map_err(|error| corrupt(error.to_string()))?;
    let runtimes: Vec<String> =
        serde_json::from_str(&row.runtimes).map_err(|error| corrupt(error.to_string()))?;
    let state =
        NodeState::parse(&row.state).ok_or_else(|| corrupt(format!("state {:?}", row.state)))?;
    let scheduling = Scheduling::parse(&row.scheduling)
        .ok_or_else(|| corrupt(format!("scheduling {:?}", row.scheduling)))?;
    let duration = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    Ok(Node {
        registration: NodeRegistration {
            id: row.id,
            name: row.name,
            address: row.address,
            labels,
            runtimes,
            capacity: u32::try_from(row.capacity).unwrap_or(u32::MAX),
            version: row.version,
            heartbeat_interval: duration(row.heartbeat_interval_ms),
            heartbeat_ttl: duration(row.heartbeat_ttl_ms),
        },
        state,
        incarnation: u64::try_from(row.incarnation).unwrap_or(0),
        registered_at: Timestamp(row.registered_at),
        heartbeat_at: Timestamp(row.heartbeat_at),
        reason: row.reason,
        active_workloads,
        scheduling,
    })
}
