//! Fleet operations (admin tokens): draining a node and rolling restarts.
//! Each returns at once with the operation; follow it with
//! [`Client::watch_operation`] or wait for its end with
//! [`Client::wait_for_operation`].
//!
//! ```no_run
//! # async fn example(client: slipway_sdk::Client) -> slipway_sdk::Result<()> {
//! use slipway_sdk::proto::{DrainNodeRequest, OperationState};
//! let drain = client
//!     .drain_node(DrainNodeRequest {
//!         node: "node-b".into(),
//!         parallel: 2,
//!         ..Default::default()
//!     })
//!     .await?;
//! let done = client
//!     .wait_for_operation(&drain.id, std::time::Duration::from_secs(3600))
//!     .await?;
//! assert_eq!(done.state(), OperationState::Succeeded, "{}", done.message);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use futures::{Stream, StreamExt};
use slipway::v1::{
    DrainNodeRequest, FleetOperation, GetOperationRequest, ListOperationsRequest,
    RollingRestartRequest,
};

use crate::{Client, Error, Result};

impl Client {
    /// Drains a node: its workloads move to other nodes (a replacement first,
    /// then the old one stops), and it ends `drained`.
    pub async fn drain_node(&self, request: DrainNodeRequest) -> Result<FleetOperation> {
        Ok(self.fleet.clone().drain_node(request).await?.into_inner())
    }

    /// Restarts a deployment's (or a selector's, or nodes') running workloads,
    /// `max_unavailable` at a time, each gated on readiness.
    pub async fn rolling_restart(&self, request: RollingRestartRequest) -> Result<FleetOperation> {
        Ok(self
            .fleet
            .clone()
            .rolling_restart(request)
            .await?
            .into_inner())
    }

    pub async fn get_operation(&self, id: &str) -> Result<FleetOperation> {
        Ok(self
            .fleet
            .clone()
            .get_operation(GetOperationRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }

    /// Newest first.
    pub async fn list_operations(
        &self,
        request: ListOperationsRequest,
    ) -> Result<Vec<FleetOperation>> {
        Ok(self
            .fleet
            .clone()
            .list_operations(request)
            .await?
            .into_inner()
            .operations)
    }

    /// The operation now, then each change of it, until it ends.
    pub async fn watch_operation(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<FleetOperation>> + Send + 'static> {
        let stream = self
            .fleet
            .clone()
            .watch_operation(GetOperationRequest { id: id.to_owned() })
            .await?
            .into_inner();
        Ok(stream.map(|item| item.map_err(Error::from)))
    }

    /// Waits until the operation ended (succeeded, failed or cancelled) or
    /// paused, at most `timeout`; the operation as it is then.
    pub async fn wait_for_operation(&self, id: &str, timeout: Duration) -> Result<FleetOperation> {
        use slipway::v1::OperationState;
        let watching = async {
            let mut stream = Box::pin(self.watch_operation(id).await?);
            let mut last = None;
            while let Some(operation) = stream.next().await {
                let operation = operation?;
                let state = operation.state();
                if state != OperationState::Running {
                    return Ok(operation);
                }
                last = Some(operation);
            }
            match last {
                Some(operation) => Ok(operation),
                None => self.get_operation(id).await,
            }
        };
        match tokio::time::timeout(timeout, watching).await {
            Ok(result) => result,
            Err(_) => self.get_operation(id).await,
        }
    }

    /// Starts no more of its items; those under way finish.
    pub async fn pause_operation(&self, id: &str) -> Result<FleetOperation> {
        Ok(self
            .fleet
            .clone()
            .pause_operation(GetOperationRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }

    pub async fn resume_operation(&self, id: &str) -> Result<FleetOperation> {
        Ok(self
            .fleet
            .clone()
            .resume_operation(GetOperationRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }

    /// Ends the operation once the items under way are done; a cancelled
    /// drain leaves its node paused.
    pub async fn cancel_operation(&self, id: &str) -> Result<FleetOperation> {
        Ok(self
            .fleet
            .clone()
            .cancel_operation(GetOperationRequest { id: id.to_owned() })
            .await?
            .into_inner())
    }
}
