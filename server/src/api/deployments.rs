//! `slipway.v1.DeploymentService`.

use slipway::v1::{
    CreateDeploymentRequest, DeleteDeploymentRequest, DeleteDeploymentResponse, Deployment,
    GetDeploymentRequest, ListDeploymentsRequest, ListDeploymentsResponse,
    deployment_service_server::DeploymentService,
};
use tonic::{Request, Response, Status};

use super::{
    convert,
    status::{invalid_argument, to_status},
};
use crate::orchestrator::{NewDeployment, Orchestrator};

pub struct DeploymentApi {
    orchestrator: Orchestrator,
}

impl DeploymentApi {
    pub fn new(orchestrator: Orchestrator) -> Self {
        Self { orchestrator }
    }
}

#[tonic::async_trait]
impl DeploymentService for DeploymentApi {
    async fn create_deployment(
        &self,
        request: Request<CreateDeploymentRequest>,
    ) -> Result<Response<Deployment>, Status> {
        let new = NewDeployment::try_from(request.into_inner())
            .map_err(|violations| invalid_argument(&violations))?;
        let deployment = self
            .orchestrator
            .create_deployment(new)
            .await
            .map_err(to_status)?;
        Ok(Response::new(deployment.into()))
    }

    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<Deployment>, Status> {
        let id = convert::deployment_id("id", &request.into_inner().id)
            .map_err(|violations| invalid_argument(&violations))?;
        let deployment = self
            .orchestrator
            .get_deployment(&id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(deployment.into()))
    }

    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Result<Response<ListDeploymentsResponse>, Status> {
        let request = request.into_inner();
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
        Ok(Response::new(ListDeploymentsResponse {
            deployments: deployments.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn delete_deployment(
        &self,
        request: Request<DeleteDeploymentRequest>,
    ) -> Result<Response<DeleteDeploymentResponse>, Status> {
        let id = convert::deployment_id("id", &request.into_inner().id)
            .map_err(|violations| invalid_argument(&violations))?;
        let deleted = self
            .orchestrator
            .delete_deployment(&id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(DeleteDeploymentResponse {
            deleted_workload_ids: deleted.into_iter().map(|id| id.to_string()).collect(),
        }))
    }
}
