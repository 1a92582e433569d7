//! Tokens (their hashes, never the tokens) and the audit trail.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Store, StoreError, StoreResult, database};

pub mod token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub role: String,
        /// JSON array of project names; empty: every project.
        pub projects: String,
        pub secret_hash: Vec<u8>,
        pub created_at: i64,
        pub expires_at: Option<i64>,
        pub revoked_at: Option<i64>,
        pub last_used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ts: i64,
        pub actor_id: String,
        pub actor: String,
        pub action: String,
        pub target: String,
        pub parameters: String,
        pub result: String,
        pub message: String,
        pub duration_micros: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Tokens read for checking calls, by id, with when they were read. It holds
/// only tokens that exist (an unknown id is never kept), so it is as small as
/// the token table.
#[derive(Debug, Clone, Default)]
pub(super) struct TokenCache {
    rows: std::sync::Arc<std::sync::Mutex<HashMap<String, (TokenRow, std::time::Instant)>>>,
}

impl TokenCache {
    fn fresh(&self, id: &str, max_age: std::time::Duration) -> Option<TokenRow> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        rows.get(id)
            .filter(|(_, read)| read.elapsed() < max_age)
            .map(|(row, _)| row.clone())
    }

    fn keep(&self, row: TokenRow) {
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        rows.insert(row.id.clone(), (row, std::time::Instant::now()));
    }

    fn forget(&self, id: &str) {
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        rows.remove(id);
    }
}

/// A stored token: its metadata and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub projects: Vec<String>,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// One audit record; times in microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRow {
    pub ts: i64,
    pub actor_id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub parameters: String,
    pub result: String,
    pub message: String,
    pub duration_micros: i64,
}

/// Which audit records to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Matches the actor's id or name.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub limit: u64,
}

fn row_from(model: token::Model) -> StoreResult<TokenRow> {
    let projects = serde_json::from_str(&model.projects).map_err(|error| StoreError::Corrupt {
        what: "token projects",
        detail: error.to_string(),
    })?;
    Ok(TokenRow {
        id: model.id,
        name: model.name,
        role: model.role,
        projects,
        secret_hash: model.secret_hash,
        created_at: model.created_at,
        expires_at: model.expires_at,
        revoked_at: model.revoked_at,
        last_used_at: model.last_used_at,
    })
}

impl Store {
    pub async fn insert_token(&self, row: &TokenRow) -> StoreResult<()> {
        token::Entity::insert(token_model(row)?)
            .exec(&self.db)
            .await
            .map_err(database("storing a token"))?;
        Ok(())
    }

    /// Stores the token unless one with its id exists already (then nothing
    /// changes); whether it was stored. Safe when several nodes bootstrap
    /// the same token at once.
    pub async fn insert_token_if_absent(&self, row: &TokenRow) -> StoreResult<bool> {
        let inserted = token::Entity::insert(token_model(row)?)
            .on_conflict_do_nothing()
            .exec_without_returning(&self.db)
            .await
            .map_err(database("storing a token"))?;
        Ok(matches!(
            inserted,
            sea_orm::TryInsertResult::Inserted(rows) if rows > 0
        ))
    }

    /// The token `id` for checking a call: as read at most `max_age` ago by
    /// this node, else from the database. A token revoked through this node is
    /// forgotten at once; one revoked through another node is refused here
    /// within `max_age`.
    pub async fn token_for_call(
        &self,
        id: &str,
        max_age: std::time::Duration,
    ) -> StoreResult<Option<TokenRow>> {
        if let Some(row) = self.token_cache.fresh(id, max_age) {
            return Ok(Some(row));
        }
        let row = self.token(id).await?;
        if let Some(row) = &row {
            self.token_cache.keep(row.clone());
        }
        Ok(row)
    }

    pub async fn token(&self, id: &str) -> StoreResult<Option<TokenRow>> {
        token::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(database("reading a token"))?
            .map(row_from)
            .transpose()
    }

    pub async fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        token::Entity::find()
            .order_by_asc(token::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(database("listing tokens"))?
            .into_iter()
            .map(row_from)
            .collect()
    }

    /// Whether any token exists (revoked ones included).
    pub async fn has_tokens(&self) -> StoreResult<bool> {
        Ok(token::Entity::find()
            .one(&self.db)
            .await
            .map_err(database("reading tokens"))?
            .is_some())
    }

    /// Marks the token revoked at `now` (kept if it already was); `None` when
    /// there is no such token.
    pub async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<Option<TokenRow>> {
        token::Entity::update_many()
            .col_expr(
                token::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(token::Column::Id.eq(id))
            .filter(token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(database("revoking a token"))?;
        self.token_cache.forget(id);
        self.token(id).await
    }

    pub async fn touch_token(&self, id: &str, now: i64) -> StoreResult<()> {
        token::Entity::update_many()
            .col_expr(
                token::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(token::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(database("noting a token's use"))?;
        Ok(())
    }

    pub async fn insert_audit(&self, row: AuditRow) -> StoreResult<()> {
        audit::Entity::insert(audit::ActiveModel {
            id: NotSet,
            ts: Set(row.ts),
            actor_id: Set(row.actor_id),
            actor: Set(row.actor),
            action: Set(row.action),
            target: Set(row.target),
            parameters: Set(row.parameters),
            result: Set(row.result),
            message: Set(row.message),
            duration_micros: Set(row.duration_micros),
        })
        .exec(&self.db)
        .await
        .map_err(database("storing an audit record"))?;
        Ok(())
    }

    /// Matching audit records, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let mut query = audit::Entity::find();
        if let Some(since) = filter.since {
            query = query.filter(audit::Column::Ts.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit::Column::Ts.lte(until));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(
                Condition::any()
                    .add(audit::Column::ActorId.eq(actor.as_str()))
                    .add(audit::Column::Actor.eq(actor.as_str())),
            );
        }
        if let Some(action) = &filter.action {
            query = query.filter(audit::Column::Action.eq(action.as_str()));
        }
        if let Some(target) = &filter.target {
            query = query.filter(audit::Column::Target.eq(target.as_str()));
        }
        let rows = query
            .order_by_desc(audit::Column::Ts)
            .order_by_desc(audit::Column::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await
            .map_err(database("listing audit records"))?;
        Ok(rows
            .into_iter()
            .map(|model| AuditRow {
                ts: model.ts,
                actor_id: model.actor_id,
                actor: model.actor,
                action: model.action,
                target: model.target,
                parameters: model.parameters,
                result: model.result,
                message: model.message,
                duration_micros: model.duration_micros,
            })
            .collect())
    }

    /// Deletes the audit records older than `before`; returns how many.
    pub async fn trim_audit(&self, before: i64) -> StoreResult<u64> {
        Ok(audit::Entity::delete_many()
            .filter(audit::Column::Ts.lt(before))
            .exec(&self.db)
            .await
            .map_err(database("trimming the audit trail"))?
            .rows_affected)
    }
}

fn token_model(row: &TokenRow) -> StoreResult<token::ActiveModel> {
    let projects = serde_json::to_string(&row.projects).map_err(|error| StoreError::Corrupt {
        what: "token projects",
        detail: error.to_string(),
    })?;
    Ok(token::ActiveModel {
        id: Set(row.id.clone()),
        name: Set(row.name.clone()),
        role: Set(row.role.clone()),
        projects: Set(projects),
        secret_hash: Set(row.secret_hash.clone()),
        created_at: Set(row.created_at),
        expires_at: Set(row.expires_at),
        revoked_at: Set(row.revoked_at),
        last_used_at: Set(row.last_used_at),
    })
}
