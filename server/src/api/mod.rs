//! The gRPC API: thin tonic handlers that decode, validate, call the orchestrator,
//! encode and map errors.

mod access;
mod changes;
mod convert;
mod deployments;
mod fleet;
mod forward;
mod health;
mod nodes;
mod scope;
mod status;
mod workloads;

pub use access::{AuditApi, TokenApi};
pub use deployments::DeploymentApi;
pub use fleet::FleetApi;
pub use forward::Peers;
pub use nodes::NodeApi;
pub use status::{ERROR_DOMAIN, invalid_argument, to_status};
pub use workloads::WorkloadApi;

use crate::domain::Timestamp;

/// Page sizes: the default and the most a client gets at once.
const DEFAULT_PAGE_SIZE: u64 = 100;
const MAX_PAGE_SIZE: u64 = 1000;

fn page_size(requested: u32) -> u64 {
    match u64::from(requested) {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    }
}

/// Page tokens are `<created_at>.<id>` of the last item of the previous page.
fn encode_page_token(cursor: &(Timestamp, String)) -> String {
    format!("{}.{}", cursor.0.0, cursor.1)
}

fn decode_page_token(token: &str) -> Result<Option<(Timestamp, String)>, tonic::Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        status::invalid_argument(&[crate::domain::FieldViolation::new(
            "page_token",
            "is not a token from a previous page",
        )])
    };
    let (time, id) = token.split_once('.').ok_or_else(invalid)?;
    let time = time.parse::<i64>().map_err(|_| invalid())?;
    if id.len() != 32 || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Ok(Some((Timestamp(time), id.to_owned())))
}
