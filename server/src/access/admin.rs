//! Creating, listing and revoking tokens, and the bootstrap admin token: the
//! plain async API behind `TokenService`, knowing nothing of tonic.

use std::{io, path::Path, time::Duration};

use super::{NewToken, Role, parse_token};
use crate::{
    data_files,
    domain::now,
    store::{Store, StoreError, TokenRow},
};

/// What can go wrong with tokens. No variant ever carries a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unknown role {role:?}: expected viewer, operator or admin")]
    UnknownRole { role: String },
    #[error("a token needs a name")]
    NoName,
    /// An admin may create unrestricted tokens, so limiting one to projects
    /// would limit nothing.
    #[error("an admin token is for every project: give no --project")]
    AdminWithProjects,
    #[error("token {id} not found")]
    NotFound { id: String },
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("the admin token file {path} does not hold a slipway token (slw_…)")]
    NotAToken { path: String },
    /// A stored token has the file's token id but another secret.
    #[error("the token id of the admin token file {path} belongs to another token")]
    TokenIdTaken { path: String },
}

/// What a new token may do.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub name: String,
    pub role: String,
    pub projects: Vec<String>,
    pub expires_in: Option<Duration>,
}

/// Creates a token; returns its metadata and the token, to be shown once.
pub async fn create_token(
    store: &Store,
    request: TokenRequest,
) -> Result<(TokenRow, String), TokenError> {
    let role = Role::parse(&request.role).ok_or_else(|| TokenError::UnknownRole {
        role: request.role.clone(),
    })?;
    let projects: Vec<String> = request
        .projects
        .into_iter()
        .filter(|project| !project.is_empty())
        .collect();
    if role == Role::Admin && !projects.is_empty() {
        return Err(TokenError::AdminWithProjects);
    }
    let name = request.name.trim().to_owned();
    if name.is_empty() {
        return Err(TokenError::NoName);
    }
    let new = NewToken::generate().map_err(TokenError::Random)?;
    let created_at = now().0;
    let row = TokenRow {
        id: new.id,
        name,
        role: role.as_str().to_owned(),
        projects,
        secret_hash: new.hash,
        created_at,
        expires_at: request.expires_in.map(|expires_in| {
            created_at.saturating_add(i64::try_from(expires_in.as_micros()).unwrap_or(i64::MAX))
        }),
        revoked_at: None,
        last_used_at: None,
    };
    store.insert_token(&row).await?;
    Ok((row, new.token))
}

/// This node's own admin token, named `node:<id>`, for the calls it sends to
/// other nodes on a shared database on behalf of fleet operations. Kept in
/// `data_dir/node.token` (0600), so a restart reuses it; made anew (and the
/// node's earlier ones revoked) when that file is missing or no longer valid.
pub async fn node_token(
    store: &Store,
    data_dir: &Path,
    node: &crate::domain::NodeId,
) -> Result<String, TokenError> {
    let path = data_dir.join("node.token");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some((id, secret)) = parse_token(&text)
        && let Some(stored) = store.token(&id).await?
        && stored.revoked_at.is_none()
        && secret.matches(&stored.secret_hash)
    {
        return Ok(text.trim().to_owned());
    }
    let name = format!("node:{node}");
    for row in store.tokens().await? {
        if row.name == name && row.revoked_at.is_none() {
            store.revoke_token(&row.id, now().0).await?;
        }
    }
    let (_, token) = create_token(
        store,
        TokenRequest {
            name,
            role: Role::Admin.as_str().to_owned(),
            projects: Vec::new(),
            expires_in: None,
        },
    )
    .await?;
    data_files::write_private(&path, format!("{token}\n").as_bytes()).map_err(|source| {
        TokenError::Io {
            context: format!("writing this node's token to {}", path.display()),
            source,
        }
    })?;
    Ok(token)
}

pub async fn revoke_token(store: &Store, id: &str) -> Result<TokenRow, TokenError> {
    store
        .revoke_token(id, now().0)
        .await?
        .ok_or_else(|| TokenError::NotFound { id: id.to_owned() })
}

/// At start-up with authentication on: with `admin_token_file`, makes sure the
/// token in that file exists as an admin token (so automation can provide
/// it); without, when no token exists yet, creates an admin token and writes
/// it to `data_dir/admin.token` (0600). Returns the file written, if any.
pub async fn bootstrap(
    store: &Store,
    data_dir: &Path,
    admin_token_file: Option<&Path>,
) -> Result<Option<std::path::PathBuf>, TokenError> {
    if let Some(path) = admin_token_file {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Io {
            context: format!("reading the admin token file {}", path.display()),
            source,
        })?;
        let not_a_token = || TokenError::NotAToken {
            path: path.display().to_string(),
        };
        let (id, secret) = parse_token(&text).ok_or_else(not_a_token)?;
        // Insert-if-absent: nodes started together with the same file race
        // here, and all of them must start.
        let inserted = store
            .insert_token_if_absent(&TokenRow {
                id: id.clone(),
                name: "admin".to_owned(),
                role: Role::Admin.as_str().to_owned(),
                projects: Vec::new(),
                secret_hash: secret.hash(),
                created_at: now().0,
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
            })
            .await?;
        if !inserted {
            let stored = store
                .token(&id)
                .await?
                .ok_or_else(|| TokenError::NotFound { id: id.clone() })?;
            if !secret.matches(&stored.secret_hash) {
                return Err(TokenError::TokenIdTaken {
                    path: path.display().to_string(),
                });
            }
        }
        return Ok(None);
    }
    if store.has_tokens().await? {
        return Ok(None);
    }
    let (_, token) = create_token(
        store,
        TokenRequest {
            name: "admin".to_owned(),
            role: Role::Admin.as_str().to_owned(),
            projects: Vec::new(),
            expires_in: None,
        },
    )
    .await?;
    let path = data_dir.join("admin.token");
    data_files::write_private(&path, format!("{token}\n").as_bytes()).map_err(|source| {
        TokenError::Io {
            context: format!("writing the admin token to {}", path.display()),
            source,
        }
    })?;
    Ok(Some(path))
}
