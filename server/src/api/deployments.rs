//! `slipway.v1.DeploymentService`.

use slipway::v1::{
    ApplyDeploymentRequest, ChangeDeploymentResponse, CreateDeploymentRequest,
    DeleteDeploymentRequest, DeleteDeploymentResponse, DeleteWorkloadRequest, Deployment,
    GetDeploymentRequest, ListDeploymentsRequest, ListDeploymentsResponse, ListRevisionsRequest,
    ListRevisionsResponse, RollbackDeploymentRequest, UpdateDeploymentRequest,
    deployment_service_server::DeploymentService,
};
use tonic::{Request, Response, Status};

use super::{
    convert,
    forward::{self, Forwarding, Peers},
    scope,
    status::{invalid_argument, to_status},
};
use crate::{
    access::{self, AuditNote},
    fleet::Fleet,
    orchestrator::{NewDeployment, Orchestrator, OrchestratorError},
};

pub struct DeploymentApi {
    orchestrator: Orchestrator,
    /// The other nodes, which delete the workloads they own.
    peers: Peers,
    /// Rolls a deployment's changes out to its workloads.
    fleet: Fleet,
}

impl DeploymentApi {
    pub fn new(orchestrator: Orchestrator, peers: Peers, fleet: Fleet) -> Self {
        Self {
            orchestrator,
            peers,
            fleet,
        }
    }

    pub(super) fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    pub(super) fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Has the owners of the deployment's workloads that run on other nodes
    /// delete them (they stop them first); returns their ids.
    async fn delete_remote_workloads(
        &self,
        forwarding: &Forwarding,
        id: &crate::domain::DeploymentId,
    ) -> Result<Vec<String>, Status> {
        let mut deleted = Vec::new();
        if forwarding.forwarded {
            return Ok(deleted);
        }
        let filter = crate::store::WorkloadFilter {
            deployment_id: Some(id.clone()),
            stages: Vec::new(),
        };
        let page = self
            .orchestrator
            .list_workloads(&filter, None, 100_000)
            .await
            .map_err(to_status)?;
        for workload in page.workloads {
            if let Err(OrchestratorError::Elsewhere { node, .. }) =
                self.orchestrator.route_to_owner(&workload.id).await
            {
                let message = DeleteWorkloadRequest {
                    workload_id: workload.id.to_string(),
                };
                self.peers
                    .workloads(&node)?
                    .delete_workload(self.peers.request(forwarding, message, None))
                    .await
                    .map_err(|status| forward::unreachable(&node, status))?;
                deleted.push(workload.id.to_string());
            }
        }
        Ok(deleted)
    }
}

#[tonic::async_trait]
impl DeploymentService for DeploymentApi {
    async fn create_deployment(
        &self,
        request: Request<CreateDeploymentRequest>,
    ) -> Result<Response<Deployment>, Status> {
        let caller = access::caller(&request)?;
        let note = request.extensions().get::<AuditNote>().cloned();
        let parameters = audit_parameters(request.get_ref());
        let noted = |target: &str| {
            if let Some(note) = &note {
                note.set(target, parameters.clone());
            }
        };
        noted("");
        caller.check_project(&request.get_ref().project)?;
        let new = NewDeployment::try_from(request.into_inner())
            .map_err(|violations| invalid_argument(&violations))?;
        let deployment = self
            .orchestrator
            .create_deployment(new)
            .await
            .map_err(to_status)?;
        noted(&deployment.id.to_string());
        Ok(Response::new(
            super::health::one_with_health(&self.orchestrator, deployment).await?,
        ))
    }

    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<Deployment>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        // By id, unless only a name is given (both at once is refused).
        let deployment = if request.name.is_empty() || !request.id.is_empty() {
            let id = convert::deployment_id_not_name(&request.id, &request.name)
                .map_err(|violations| invalid_argument(&violations))?;
            scope::check_deployment(&caller, &self.orchestrator, &id).await?;
            self.orchestrator.get_deployment(&id).await
        } else {
            let project = Some(request.project.as_str()).filter(|project| !project.is_empty());
            self.orchestrator
                .deployment_by_name("name", &request.name, project)
                .await
        }
        .map_err(to_status)?;
        caller.check_project(&deployment.project)?;
        Ok(Response::new(
            super::health::one_with_health(&self.orchestrator, deployment).await?,
        ))
    }

    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Result<Response<ListDeploymentsResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        if !request.project.is_empty() {
            caller.check_project(&request.project)?;
        }
        let cursor = super::decode_page_token(&request.page_token)?;
        let limit = super::page_size(request.page_size);
        let project = Some(request.project.as_str()).filter(|project| !project.is_empty());
        let mut deployments = self
            .orchestrator
            .list_deployments(project, cursor.as_ref(), limit + 1)
            .await
            .map_err(to_status)?;
        let next_page_token = if deployments.len() as u64 > limit {
            deployments.truncate(limit as usize);
            deployments
                .last()
                .map(|last| super::encode_page_token(&(last.created_at, last.id.to_string())))
                .unwrap_or_default()
        } else {
            String::new()
        };
        // A project-limited caller sees its projects' deployments only (a page
        // may then hold fewer than asked for; the token still leads on).
        deployments.retain(|deployment| caller.may_see(&deployment.project));
        Ok(Response::new(ListDeploymentsResponse {
            deployments: super::health::with_health(&self.orchestrator, deployments).await?,
            next_page_token,
        }))
    }

    async fn delete_deployment(
        &self,
        request: Request<DeleteDeploymentRequest>,
    ) -> Result<Response<DeleteDeploymentResponse>, Status> {
        let caller = access::caller(&request)?;
        let wire_id = request.get_ref().id.clone();
        access::note(&request, &wire_id, serde_json::json!({ "id": wire_id }));
        let id = convert::deployment_id("id", &wire_id)
            .map_err(|violations| invalid_argument(&violations))?;
        scope::check_deployment(&caller, &self.orchestrator, &id).await?;
        let forwarding = Forwarding::of(request.metadata());
        let mut deleted = self.delete_remote_workloads(&forwarding, &id).await?;
        let here = self
            .orchestrator
            .delete_deployment(&id)
            .await
            .map_err(to_status)?;
        deleted.extend(here.into_iter().map(|id| id.to_string()));
        Ok(Response::new(DeleteDeploymentResponse {
            deleted_workload_ids: deleted,
        }))
    }

    async fn update_deployment(
        &self,
        request: Request<UpdateDeploymentRequest>,
    ) -> Result<Response<ChangeDeploymentResponse>, Status> {
        self.update(request).await
    }

    async fn apply_deployment(
        &self,
        request: Request<ApplyDeploymentRequest>,
    ) -> Result<Response<ChangeDeploymentResponse>, Status> {
        self.apply(request).await
    }

    async fn list_revisions(
        &self,
        request: Request<ListRevisionsRequest>,
    ) -> Result<Response<ListRevisionsResponse>, Status> {
        self.revisions(request).await
    }

    async fn rollback_deployment(
        &self,
        request: Request<RollbackDeploymentRequest>,
    ) -> Result<Response<ChangeDeploymentResponse>, Status> {
        self.rollback(request).await
    }
}

/// What the audit trail keeps of a CreateDeployment: never a value of the
/// environment or of a secret, only their names.
fn audit_parameters(request: &CreateDeploymentRequest) -> serde_json::Value {
    let spec = request.spec.as_ref();
    let names = |map: Option<&std::collections::HashMap<String, String>>| {
        let mut names: Vec<&String> = map.map(|map| map.keys().collect()).unwrap_or_default();
        names.sort();
        serde_json::json!(names)
    };
    serde_json::json!({
        "name": request.name,
        "project": request.project,
        "service_path": request.service_path,
        "command": spec.map(|spec| spec.command.clone()).unwrap_or_default(),
        "env_names": names(spec.map(|spec| &spec.env)),
        "secret_env_names": names(spec.map(|spec| &spec.secret_env)),
    })
}
