//! `slipway.v1.TokenService` and `slipway.v1.AuditService`. The layer has
//! already checked that the caller is an admin.

use std::time::Duration;

use slipway::v1::{
    AuditRecord, CreateTokenRequest, CreateTokenResponse, ListAuditRequest, ListAuditResponse,
    ListTokensRequest, ListTokensResponse, RevokeTokenRequest, TokenInfo,
    audit_service_server::AuditService, token_service_server::TokenService,
};
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use crate::{
    access::{self, TokenError, TokenRequest},
    domain::Timestamp,
    store::{AuditFilter, Store, TokenRow},
};

pub struct TokenApi {
    store: Store,
}

impl TokenApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

pub struct AuditApi {
    store: Store,
}

impl AuditApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn token_status(error: TokenError) -> Status {
    match error {
        TokenError::UnknownRole { .. }
        | TokenError::NoName
        | TokenError::AdminWithProjects
        | TokenError::NotAToken { .. }
        | TokenError::TokenIdTaken { .. } => Status::invalid_argument(error.to_string()),
        TokenError::NotFound { .. } => Status::not_found(error.to_string()),
        TokenError::Random(_) | TokenError::Store(_) | TokenError::Io { .. } => {
            tracing::error!(%error, "token operation failed");
            Status::internal("token operation failed")
        }
    }
}

fn info(row: TokenRow) -> TokenInfo {
    TokenInfo {
        id: row.id,
        name: row.name,
        role: row.role,
        projects: row.projects,
        created_at: Some(timestamp(Timestamp(row.created_at))),
        expires_at: row.expires_at.map(|at| timestamp(Timestamp(at))),
        revoked_at: row.revoked_at.map(|at| timestamp(Timestamp(at))),
        last_used_at: row.last_used_at.map(|at| timestamp(Timestamp(at))),
    }
}

fn micros(time: &prost_types::Timestamp) -> i64 {
    time.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(time.nanos / 1_000))
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let wire = request.get_ref();
        access::note(
            &request,
            "",
            serde_json::json!({
                "name": wire.name,
                "role": wire.role,
                "projects": wire.projects,
                "expires_in_seconds": wire.expires_in_seconds,
            }),
        );
        let wire = request.get_ref().clone();
        let (row, token) = access::create_token(
            &self.store,
            TokenRequest {
                name: wire.name.clone(),
                role: wire.role,
                projects: wire.projects,
                expires_in: wire
                    .expires_in_seconds
                    .filter(|seconds| *seconds > 0)
                    .map(Duration::from_secs),
            },
        )
        .await
        .map_err(token_status)?;
        access::note(
            &request,
            &row.id,
            serde_json::json!({"name": row.name, "role": row.role, "projects": row.projects}),
        );
        Ok(Response::new(CreateTokenResponse {
            info: Some(info(row)),
            token,
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        let tokens = self
            .store
            .tokens()
            .await
            .map_err(|error| token_status(error.into()))?;
        Ok(Response::new(ListTokensResponse {
            tokens: tokens.into_iter().map(info).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<TokenInfo>, Status> {
        let id = request.get_ref().id.clone();
        access::note(&request, &id, serde_json::json!({ "id": id }));
        let row = access::revoke_token(&self.store, &id)
            .await
            .map_err(token_status)?;
        Ok(Response::new(info(row)))
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        let request = request.into_inner();
        let text = |value: String| Some(value).filter(|value| !value.is_empty());
        let filter = AuditFilter {
            since: request.since.as_ref().map(micros),
            until: request.until.as_ref().map(micros),
            actor: text(request.actor),
            action: text(request.action),
            target: text(request.target),
            limit: super::page_size(request.limit),
        };
        let rows = self.store.audit(&filter).await.map_err(|error| {
            tracing::error!(%error, "listing the audit trail failed");
            Status::internal("listing the audit trail failed")
        })?;
        Ok(Response::new(ListAuditResponse {
            records: rows
                .into_iter()
                .map(|row| AuditRecord {
                    time: Some(timestamp(Timestamp(row.ts))),
                    actor_id: row.actor_id,
                    actor: row.actor,
                    action: row.action,
                    target: row.target,
                    parameters: row.parameters,
                    result: row.result,
                    message: row.message,
                    duration_micros: u64::try_from(row.duration_micros).unwrap_or_default(),
                })
                .collect(),
        }))
    }
}
