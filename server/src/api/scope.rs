//! Which projects a caller may act on, checked against the target of a call.
//! A caller whose token is for every project costs no lookup; a
//! project-limited one costs one read of the target's deployment.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tonic::Status;

use super::status::to_status;
use crate::{
    access::Caller,
    domain::{DeploymentId, WorkloadId},
    orchestrator::Orchestrator,
};

/// `PERMISSION_DENIED` naming the project unless `caller` may act on the
/// deployment `id` (`NOT_FOUND` when it does not exist).
pub async fn check_deployment(
    caller: &Caller,
    orchestrator: &Orchestrator,
    id: &DeploymentId,
) -> Result<(), Status> {
    if caller.projects.is_empty() {
        return Ok(());
    }
    let deployment = orchestrator.get_deployment(id).await.map_err(to_status)?;
    caller.check_project(&deployment.project)
}

/// As [`check_deployment`], for the deployment of workload `id`.
pub async fn check_workload(
    caller: &Caller,
    orchestrator: &Orchestrator,
    id: &WorkloadId,
) -> Result<(), Status> {
    if caller.projects.is_empty() {
        return Ok(());
    }
    let workload = orchestrator.get_workload(id).await.map_err(to_status)?;
    check_deployment(caller, orchestrator, &workload.deployment_id).await
}

/// Answers "may the caller see things of this deployment?" for a stream of
/// events or a page of workloads, reading each deployment's project once.
/// A deployment that cannot be read any more (deleted) is hidden unless its
/// project was seen before.
#[derive(Clone)]
pub struct ProjectFilter {
    caller: Caller,
    orchestrator: Orchestrator,
    known: Arc<Mutex<HashMap<DeploymentId, String>>>,
}

impl ProjectFilter {
    pub fn new(caller: Caller, orchestrator: Orchestrator) -> ProjectFilter {
        ProjectFilter {
            caller,
            orchestrator,
            known: Arc::default(),
        }
    }

    pub async fn allows(&self, deployment_id: &DeploymentId) -> bool {
        if self.caller.projects.is_empty() {
            return true;
        }
        let known = self
            .known
            .lock()
            .ok()
            .and_then(|known| known.get(deployment_id).cloned());
        let project = match known {
            Some(project) => project,
            None => match self.orchestrator.get_deployment(deployment_id).await {
                Ok(deployment) => {
                    if let Ok(mut known) = self.known.lock() {
                        known.insert(deployment_id.clone(), deployment.project.clone());
                    }
                    deployment.project
                }
                Err(_) => return false,
            },
        };
        self.caller.may_see(&project)
    }
}
