//! This server as a node among others on one database: it registers at start,
//! renews its heartbeat, declares lost the nodes whose heartbeat is older than
//! their TTL, and deregisters on a clean shutdown.
//!
//! On SQLite there is exactly one node. On a shared PostgreSQL database every
//! `slipway serve` is one; the database is the only thing they share (no
//! gossip, no leader): a heartbeat is an `UPDATE` stamped with the database's
//! clock, and declaring nodes lost is one `UPDATE … RETURNING`, so two nodes
//! sweeping at once never both act on the same lost node.

mod config;
pub mod controls;

use std::{
    io,
    path::{Path, PathBuf},
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

pub use config::NodeConfig;

use crate::{
    data_files,
    domain::{Node, NodeId, NodeRegistration},
    store::{Store, StoreError},
};

/// The file in the data directory that keeps this node's id across restarts.
const NODE_ID_FILE: &str = "node-id";

/// This node's id: the one kept in `data_dir`, or a new one written there.
pub fn node_id(data_dir: &Path) -> io::Result<NodeId> {
    let path: PathBuf = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => NodeId::parse(text.trim()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold a node id", path.display()),
            )
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let id = NodeId::generate();
            data_files::write_private(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(error) => Err(error),
    }
}

/// The host name, for a node that was given no name.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// This node's registration and the task that keeps it alive.
pub struct NodeAgent {
    store: Store,
    node: Node,
    stop: CancellationToken,
    task: JoinHandle<()>,
    lost: Option<mpsc::Receiver<Lost>>,
}

/// This node was declared lost while it was alive (its heartbeats did not
/// reach the database in time): whoever receives this lets go of every
/// workload the node ran, then answers; the node registers again after.
pub struct Lost {
    pub done: oneshot::Sender<()>,
}

/// How long a node declared lost waits for its workloads to be let go of
/// before it registers again.
const LET_GO_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

impl NodeAgent {
    /// Registers this node and starts heartbeating.
    /// Registers the node and heartbeats from now on. With
    /// `stop_after_disconnect`, a node cut off from the database that long
    /// lets go of its workloads (see [`Lost`]).
    pub async fn start(
        store: Store,
        registration: NodeRegistration,
        stop_after_disconnect: Option<std::time::Duration>,
    ) -> Result<Self, StoreError> {
        let node = store.register_node(&registration).await?;
        tracing::info!(
            node = %node.registration.id,
            name = %node.registration.name,
            address = %node.registration.address,
            incarnation = node.incarnation,
            "registered this node"
        );
        let stop = CancellationToken::new();
        let (lost_sender, lost) = mpsc::channel(1);
        let task = tokio::spawn(heartbeat(
            store.clone(),
            node.clone(),
            stop.clone(),
            lost_sender,
            stop_after_disconnect,
        ));
        Ok(NodeAgent {
            store,
            node,
            stop,
            task,
            lost: Some(lost),
        })
    }

    /// Where the node says it was declared lost (once taken, `None`).
    pub fn take_lost(&mut self) -> Option<mpsc::Receiver<Lost>> {
        self.lost.take()
    }

    /// This node as registered.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops heartbeating and deregisters: the others see it left, not lost.
    pub async fn leave(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the heartbeat task ended abnormally");
        }
        let id = &self.node.registration.id;
        match self.store.deregister_node(id, self.node.incarnation).await {
            Ok(()) => tracing::info!(node = %id, "deregistered this node"),
            Err(error) => tracing::warn!(%error, "could not deregister this node"),
        }
    }
}

/// Renews the heartbeat every interval and sweeps for lost nodes, until `stop`.
/// Asks whoever holds the other end to let go of every workload, and waits
/// (a while) until it has.
async fn let_go(lost: &mpsc::Sender<Lost>) {
    let (done, let_go) = oneshot::channel();
    if lost.send(Lost { done }).await.is_ok() {
        let _ = tokio::time::timeout(LET_GO_PATIENCE, let_go).await;
    }
}

async fn heartbeat(
    store: Store,
    mut node: Node,
    stop: CancellationToken,
    lost: mpsc::Sender<Lost>,
    stop_after_disconnect: Option<std::time::Duration>,
) {
    let interval = node.registration.heartbeat_interval;
    let mut last_heartbeat = tokio::time::Instant::now();
    // Set once the node stopped its workloads for being cut off.
    let mut stopped_while_cut_off = false;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store
            .heartbeat_node(&node.registration.id, node.incarnation)
            .await
        {
            Ok(true) if stopped_while_cut_off => {
                // Its workloads were stopped meanwhile: it declares itself
                // down, so that they are failed over (and may run again),
                // then registers again.
                stopped_while_cut_off = false;
                last_heartbeat = tokio::time::Instant::now();
                let reason = "stopped its workloads while cut off from the database";
                if let Err(error) = store
                    .mark_node_down(&node.registration.id, node.incarnation, reason)
                    .await
                {
                    tracing::warn!(%error, "could not declare this node down");
                    continue;
                }
                let_go(&lost).await;
                match store.register_node(&node.registration).await {
                    Ok(again) => node = again,
                    Err(error) => tracing::warn!(%error, "could not register this node again"),
                }
            }
            Ok(true) => last_heartbeat = tokio::time::Instant::now(),
            Ok(false) => {
                stopped_while_cut_off = false;
                last_heartbeat = tokio::time::Instant::now();
                // Another node declared this one lost (its heartbeats did not
                // reach the database in time). It registers again as a new
                // incarnation, which the others see as a node that came back.
                tracing::error!(
                    node = %node.registration.id,
                    incarnation = node.incarnation,
                    "this node was declared lost by another node; letting go of its workloads, then registering again"
                );
                let_go(&lost).await;
                match store.register_node(&node.registration).await {
                    Ok(again) => node = again,
                    Err(error) => tracing::warn!(%error, "could not register this node again"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "could not renew this node's heartbeat");
                let cut_off = last_heartbeat.elapsed();
                if let Some(limit) = stop_after_disconnect
                    && cut_off >= limit
                    && !stopped_while_cut_off
                {
                    tracing::error!(
                        cut_off = ?cut_off,
                        "cut off from the database for longer than --stop-after-disconnect: stopping this node's workloads"
                    );
                    stopped_while_cut_off = true;
                    let_go(&lost).await;
                }
                continue;
            }
        }
        match store.mark_lost_nodes().await {
            Ok(lost) => {
                for gone in lost {
                    tracing::warn!(
                        node = %gone.registration.id,
                        name = %gone.registration.name,
                        ttl = ?gone.registration.heartbeat_ttl,
                        "declared a node lost: it missed its heartbeat TTL"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for lost nodes"),
        }
    }
}
