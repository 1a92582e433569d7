//! How a fleet operation acts on a workload wherever it runs: through the
//! same workload API a client calls, as a local administrator, so that a
//! workload another node owns is reached by forwarding (with this node's own
//! token, as for any caller that brought none).

use std::sync::Arc;

use futures::StreamExt;
use slipway::v1::{
    DeleteWorkloadRequest, RestartWorkloadRequest, StartWorkloadRequest, StopWorkloadRequest,
    workload_service_server::WorkloadService,
};
use tonic::{Request, Status};

use crate::{access::Caller, api::WorkloadApi, domain::WorkloadId};

#[derive(Clone)]
pub struct Control {
    api: Arc<WorkloadApi>,
    caller: Caller,
}

impl Control {
    pub fn new(api: Arc<WorkloadApi>, node_name: &str) -> Control {
        Control {
            api,
            caller: Caller {
                id: "node".to_owned(),
                name: format!("node:{node_name}"),
                role: crate::access::Role::Admin,
                projects: Vec::new(),
            },
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(self.caller.clone());
        request
    }

    /// Starts the workload and follows its progress until it runs (or fails).
    pub async fn start(&self, id: &WorkloadId) -> Result<(), Status> {
        let message = StartWorkloadRequest {
            workload_id: id.to_string(),
            deployment_id: String::new(),
        };
        let stream = self.api.start_workload(self.request(message)).await?;
        follow(stream.into_inner()).await
    }

    /// Stops the workload (its own grace period) and waits until it stopped.
    pub async fn stop(&self, id: &WorkloadId) -> Result<(), Status> {
        let message = StopWorkloadRequest {
            workload_id: id.to_string(),
            deployment_id: String::new(),
            grace_period_seconds: None,
        };
        let stream = self.api.stop_workload(self.request(message)).await?;
        follow(stream.into_inner()).await
    }

    /// Restarts the workload and follows it until it runs again.
    pub async fn restart(&self, id: &WorkloadId) -> Result<(), Status> {
        let message = RestartWorkloadRequest {
            workload_id: id.to_string(),
            deployment_id: String::new(),
        };
        let stream = self.api.restart_workload(self.request(message)).await?;
        follow(stream.into_inner()).await
    }

    /// Stops the workload if it runs and removes it.
    pub async fn delete(&self, id: &WorkloadId) -> Result<(), Status> {
        let message = DeleteWorkloadRequest {
            workload_id: id.to_string(),
        };
        self.api.delete_workload(self.request(message)).await?;
        Ok(())
    }
}

async fn follow<T>(
    mut stream: impl futures::Stream<Item = Result<T, Status>> + Unpin,
) -> Result<(), Status> {
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(())
}
