//! Who may call what: tokens, roles scoped to projects, the one permission
//! table, and the tower layer that authenticates each call and records the
//! mutating ones in the audit trail.
//!
//! Authentication happens in the layer (it needs the database, which tonic's
//! synchronous interceptors cannot reach); the layer puts the [`Caller`] into
//! the request's extensions. The role a method needs is checked in the layer
//! too, from [`permission_for`]; whether the caller may act on the *project* of
//! the target is checked by the handlers, which are the ones that know the
//! target ([`Caller::check_project`]).

mod admin;
mod layer;
mod token;

pub use admin::{TokenError, TokenRequest, bootstrap, create_token, node_token, revoke_token};
pub use layer::{AccessLayer, AuditNote, code_name};
pub use token::{NewToken, TokenSecret, parse_token};

use std::fmt;

use tonic::Status;

/// A role, from least to most powerful: each includes the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads and streams.
    Viewer,
    /// Also creates, deletes, starts, stops and restarts deployments and workloads.
    Operator,
    /// Everything: tokens and the audit trail too.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a method needs, from [`permission_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The least role that may call it.
    pub role: Role,
    /// Whether calls are recorded in the audit trail (the mutating ones).
    pub audited: bool,
}

/// Methods anyone may call, without a token: health and reflection.
pub fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// The permission each gRPC method needs: the one table that the layer
/// enforces and the access tests check. `None` (an unknown method) is denied.
pub fn permission_for(path: &str) -> Option<Permission> {
    let read = Permission {
        role: Role::Viewer,
        audited: false,
    };
    let operate = Permission {
        role: Role::Operator,
        audited: true,
    };
    let administer = Permission {
        role: Role::Admin,
        audited: true,
    };
    let admin_read = Permission {
        role: Role::Admin,
        audited: false,
    };
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let permission = match (service, method) {
        ("slipway.v1.DeploymentService", "GetDeployment" | "ListDeployments" | "ListRevisions") => {
            read
        }
        (
            "slipway.v1.DeploymentService",
            "CreateDeployment" | "DeleteDeployment" | "UpdateDeployment" | "ApplyDeployment"
            | "RollbackDeployment",
        ) => operate,
        (
            "slipway.v1.WorkloadService",
            "GetWorkload" | "ListWorkloads" | "GetLogs" | "StreamLogs" | "WatchEvents"
            | "GetHealthHistory",
        ) => read,
        (
            "slipway.v1.WorkloadService",
            "CreateWorkload" | "DeleteWorkload" | "StartWorkload" | "StopWorkload"
            | "RestartWorkload",
        ) => operate,
        ("slipway.v1.NodeService", "ListNodes" | "GetNode") => read,
        (
            "slipway.v1.FleetService",
            "PauseNode" | "ResumeNode" | "DrainNode" | "RollingRestart" | "PauseOperation"
            | "ResumeOperation" | "CancelOperation",
        ) => administer,
        ("slipway.v1.FleetService", "GetOperation" | "ListOperations" | "WatchOperation") => {
            admin_read
        }
        ("slipway.v1.TokenService", "CreateToken" | "RevokeToken") => administer,
        ("slipway.v1.TokenService", "ListTokens") => admin_read,
        ("slipway.v1.AuditService", "ListAudit") => admin_read,
        // `GET /metrics` (HTTP only).
        ("slipway.http", "Metrics") => read,
        _ => return None,
    };
    Some(permission)
}

/// Who is calling: put into each request's extensions by the layer. Never
/// holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id, or "local" for the Unix socket.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The projects the caller may act on; empty: every project.
    pub projects: Vec<String>,
}

impl Caller {
    /// The local administrator: a caller on the Unix socket, or a server with
    /// authentication turned off.
    pub fn local() -> Caller {
        Caller {
            id: "local".to_owned(),
            name: "local".to_owned(),
            role: Role::Admin,
            projects: Vec::new(),
        }
    }

    /// Whether the caller may act on `project`.
    pub fn may_see(&self, project: &str) -> bool {
        self.projects.is_empty() || self.projects.iter().any(|allowed| allowed == project)
    }

    /// `PERMISSION_DENIED` naming `project` unless the caller may act on it.
    pub fn check_project(&self, project: &str) -> Result<(), Status> {
        if self.may_see(project) {
            Ok(())
        } else {
            Err(permission_denied_for_project(&self.name, project))
        }
    }
}

/// The refusal of a call on a project the caller's token is not for; the
/// project travels in `ErrorInfo` metadata too, for the SDK.
pub fn permission_denied_for_project(caller: &str, project: &str) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    let mut details = ErrorDetails::new();
    details.set_error_info(
        "PROJECT_DENIED",
        crate::api::ERROR_DOMAIN,
        std::collections::HashMap::from([("project".to_owned(), project.to_owned())]),
    );
    Status::with_error_details(
        tonic::Code::PermissionDenied,
        format!("token {caller:?} may not act on project {project:?}"),
        details,
    )
}

/// The caller a handler runs for: the layer always puts one there; a request
/// without one (a handler called outside the layer) is refused.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no credentials"))
}

/// Notes what a handler acted on, for the audit record of this call.
pub fn note<T>(request: &tonic::Request<T>, target: &str, parameters: serde_json::Value) {
    if let Some(slot) = request.extensions().get::<AuditNote>() {
        slot.set(target, parameters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_have_no_permission() {
        assert_eq!(permission_for("/slipway.v1.WorkloadService/Nope"), None);
        assert_eq!(permission_for("/other.Service/GetWorkload"), None);
        assert_eq!(permission_for("garbage"), None);
        assert!(permission_for("/slipway.v1.WorkloadService/StartWorkload").is_some());
    }
}
