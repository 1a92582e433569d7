//! sea-orm entities: one module per table. Ids are typed columns stored as text
//! (see `ids.rs`), timestamps are microseconds since the Unix epoch, specs and
//! snapshots JSON text. Secrets are rows of `deployment_secrets`, never part of
//! the spec's JSON.
//!
//! Foreign keys (created by the migrations): `workloads.deployment_id` →
//! `deployments.id` (a deployment with workloads cannot be deleted),
//! `log_lines.workload_id` → `workloads.id` and `deployment_secrets.deployment_id`
//! → `deployments.id`, both deleted with their parent.

pub mod deployment {
    use sea_orm::entity::prelude::*;

    use crate::domain::DeploymentId;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deployments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: DeploymentId,
        #[sea_orm(unique)]
        pub name: String,
        pub project: String,
        pub service_path: String,
        pub spec: String,
        pub labels: String,
        pub created_at: i64,
        pub updated_at: i64,
        /// The current revision of the spec and labels.
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod workload {
    use sea_orm::entity::prelude::*;

    use crate::domain::{DeploymentId, NodeId, WorkloadId};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workloads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: WorkloadId,
        pub deployment_id: DeploymentId,
        pub stage: String,
        pub health: String,
        pub generation: i64,
        pub port: Option<i32>,
        pub runtime_id: Option<String>,
        pub process_start_time: Option<i64>,
        pub error: Option<String>,
        pub failed_stage: Option<String>,
        pub exit_code: Option<i32>,
        pub created_at: i64,
        pub updated_at: i64,
        pub started_at: Option<i64>,
        pub stopped_at: Option<i64>,
        pub revision: i64,
        pub restart_count: i32,
        pub next_restart_at: Option<i64>,
        /// What the runtime could not apply to the run, as a JSON array of strings.
        pub warnings: Option<String>,
        /// The owning node; NULL while no node owns the workload.
        pub node_id: Option<NodeId>,
        /// The fencing epoch: raised at each change of owner.
        pub owner_epoch: i64,
        /// Why the workload waits for a node, while it does.
        pub pending_reason: Option<String>,
        /// The deployment revision the current (or last) run started from.
        pub spec_revision: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod log_line {
    use sea_orm::entity::prelude::*;

    use crate::domain::WorkloadId;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "log_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workload_id: WorkloadId,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub generation: i64,
        pub ts: i64,
        pub stage: String,
        pub level: String,
        pub stream: String,
        pub message: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use sea_orm::entity::prelude::*;

    use crate::domain::{DeploymentId, WorkloadId};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i64,
        pub ts: i64,
        pub kind: String,
        pub deployment_id: DeploymentId,
        pub workload_id: Option<WorkloadId>,
        /// The workload snapshot as JSON, for workload events.
        pub workload: Option<String>,
        pub message: String,
        /// Who caused it (a token's name, "local", "node:<id>"); NULL for
        /// Slipway's own doing.
        pub actor: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod node {
    use sea_orm::entity::prelude::*;

    use crate::domain::NodeId;

    /// Timestamps here come from the database's clock, so that nodes with
    /// skewed clocks judge each other's heartbeats alike.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "nodes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: NodeId,
        pub name: String,
        pub address: String,
        /// JSON object.
        pub labels: String,
        /// JSON array.
        pub runtimes: String,
        pub capacity: i64,
        pub version: String,
        pub state: String,
        pub reason: String,
        pub incarnation: i64,
        pub heartbeat_interval_ms: i64,
        pub heartbeat_ttl_ms: i64,
        pub registered_at: i64,
        pub heartbeat_at: i64,
        /// "eligible" or "paused": whether placement may give it new workloads.
        pub scheduling: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deployment_secret {
    use sea_orm::entity::prelude::*;

    use crate::domain::{DeploymentId, Secret};

    /// One secret environment variable of a deployment; `Debug` redacts the value.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deployment_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub deployment_id: DeploymentId,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: Secret,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod fleet_operation {
    use sea_orm::entity::prelude::*;

    use crate::domain::NodeId;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "fleet_operations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub state: String,
        pub node_id: Option<NodeId>,
        pub owner_epoch: i64,
        pub target_node: Option<NodeId>,
        /// JSON: the parameters, items and the rest.
        pub body: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deployment_revision {
    use sea_orm::entity::prelude::*;

    use crate::domain::DeploymentId;

    /// One revision of a deployment. Never a secret's value: `secrets` holds
    /// names and digests.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deployment_revisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub deployment_id: DeploymentId,
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i64,
        pub spec: String,
        /// JSON object: secret name → digest; NULL when unknown.
        pub secrets: Option<String>,
        pub labels: String,
        /// JSON array of the changed top-level fields.
        pub changed: String,
        pub actor: Option<String>,
        pub created_at: i64,
        pub rolled_back_from: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod health_check {
    use sea_orm::entity::prelude::*;

    use crate::domain::WorkloadId;

    /// One liveness check of a workload's run.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "health_checks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workload_id: WorkloadId,
        /// When the check started.
        #[sea_orm(primary_key, auto_increment = false)]
        pub at: i64,
        pub generation: i64,
        pub passed: bool,
        pub response_us: i64,
        /// Why it failed; empty when it passed.
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
