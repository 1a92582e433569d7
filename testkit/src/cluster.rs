//! Several `slipway serve` processes on one PostgreSQL database, for the tests
//! of nodes and fleet operations: each a member with its own data and root
//! directories, heartbeating every 200 ms with a 1 s TTL so that a killed
//! member is declared lost quickly.

use tempfile::TempDir;

use crate::{ServerProcess, until};

pub struct Member {
    pub server: ServerProcess,
    /// Its data directory (node id, admin token) and root: kept, so that it
    /// can start again as the same node.
    pub dirs: (TempDir, TempDir),
    pub database_url: String,
}

/// Starts `binary` (the test's `slipway-server-process`) as node `name`
/// (labelled `name=NAME`), with workload ports from `ports` ("3700-3719").
pub async fn member(binary: &str, database_url: &str, name: &str, ports: &str) -> Member {
    let dirs = (
        TempDir::new().expect("data dir"),
        TempDir::new().expect("root dir"),
    );
    member_in(binary, database_url, name, ports, dirs).await
}

/// [`member`] in existing directories: the same node started again.
pub async fn member_in(
    binary: &str,
    database_url: &str,
    name: &str,
    ports: &str,
    (data, root): (TempDir, TempDir),
) -> Member {
    let server = ServerProcess::start_with_args(
        binary,
        &data.path().join("data"),
        root.path(),
        ports,
        &[
            "--database-url",
            database_url,
            "--node-name",
            name,
            "--node-label",
            &format!("name={name}"),
            "--heartbeat-interval",
            "200ms",
            "--heartbeat-ttl",
            "1s",
        ],
    )
    .await;
    Member {
        server,
        dirs: (data, root),
        database_url: database_url.to_owned(),
    }
}

/// Waits until `count` nodes are registered, as `member` sees them.
pub async fn registered(member: &Member, count: usize) {
    eventually_async("the nodes registered", || async {
        member
            .server
            .client
            .list_nodes(false)
            .await
            .ok()
            .map(|nodes| nodes.len())
            == Some(count)
    })
    .await;
}

/// Polls `check` until it holds (see [`until`]).
pub async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}
