//! Watching a set of workloads from outside while something changes them:
//! how many are down at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use slipway_sdk::{
    Client,
    proto::{ListWorkloadsRequest, Stage},
};

use crate::http_get;

/// Probes every 50 ms, until dropped, which of `ids` are down: not RUNNING,
/// or not answering HTTP on their port. Remembers the most down at once.
pub struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Probe {
    /// Starts probing `ids` (workload ids) through `client` and their ports.
    pub fn start(client: Client, ids: Vec<String>) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut most = 0;
            while !stopping.load(Ordering::Relaxed) {
                let listed = client
                    .list_workloads(ListWorkloadsRequest {
                        page_size: 1000,
                        ..ListWorkloadsRequest::default()
                    })
                    .await
                    .expect("list");
                let ports: Vec<Option<u16>> = listed
                    .workloads
                    .iter()
                    .filter(|workload| ids.contains(&workload.id))
                    .map(|workload| {
                        (workload.stage() == Stage::Running)
                            .then(|| u16::try_from(workload.port).ok())
                            .flatten()
                    })
                    .collect();
                let down = tokio::task::spawn_blocking(move || {
                    ports
                        .iter()
                        .filter(|port| match port {
                            Some(port) => !matches!(http_get(*port, "/"), Ok((200, _))),
                            None => true,
                        })
                        .count()
                })
                .await
                .expect("probe");
                most = most.max(down);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            most
        });
        Probe { stop, task }
    }

    /// The most workloads seen down at once.
    pub async fn most_down(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("probe")
    }
}
