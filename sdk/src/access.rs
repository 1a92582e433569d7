//! Tokens and the audit trail (admin tokens only).

use std::time::Duration;

use slipway::v1::{
    AuditRecord, CreateTokenRequest, ListAuditRequest, ListTokensRequest, RevokeTokenRequest,
    TokenInfo,
};

use crate::{Client, Result};

/// What [`Client::create_token`] asks for.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// A name for people (shown in the audit trail).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The projects the token may act on; empty: every project.
    pub projects: Vec<String>,
    /// When it expires; `None`: never.
    pub expires_in: Option<Duration>,
}

impl Client {
    /// Creates a token; returns its metadata and the token (shown this once).
    pub async fn create_token(&self, new: NewToken) -> Result<(TokenInfo, String)> {
        let response = self
            .tokens
            .clone()
            .create_token(CreateTokenRequest {
                name: new.name,
                role: new.role,
                projects: new.projects,
                expires_in_seconds: new.expires_in.map(|expires_in| expires_in.as_secs().max(1)),
            })
            .await?
            .into_inner();
        Ok((response.info.unwrap_or_default(), response.token))
    }

    /// Every token's metadata.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(self
            .tokens
            .clone()
            .list_tokens(ListTokensRequest {})
            .await?
            .into_inner()
            .tokens)
    }

    /// Revokes the token `id`; calls with it fail from then on.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo> {
        Ok(self
            .tokens
            .clone()
            .revoke_token(RevokeTokenRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }

    /// Audit records matching `filter`, newest first.
    pub async fn list_audit(&self, filter: ListAuditRequest) -> Result<Vec<AuditRecord>> {
        Ok(self
            .audit
            .clone()
            .list_audit(filter)
            .await?
            .into_inner()
            .records)
    }
}
