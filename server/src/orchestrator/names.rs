//! Finding deployments by name, for callers that know a deployment by the name
//! they gave it rather than by its id.

use super::{Orchestrator, OrchestratorError, Result};
use crate::domain::{Deployment, FieldViolation, validate_deployment_name};

impl Orchestrator {
    /// The deployment named `name` (names are unique). With `project`, it must
    /// be in that project: one of another project is `NotFound`, as if absent,
    /// so a name says nothing about other projects. A malformed name or project
    /// is `InvalidArgument` naming `field` (or `project`).
    pub async fn deployment_by_name(
        &self,
        field: &str,
        name: &str,
        project: Option<&str>,
    ) -> Result<Deployment> {
        let mut violations: Vec<FieldViolation> = validate_deployment_name(name)
            .map(|violation| FieldViolation::new(field, violation.description))
            .into_iter()
            .collect();
        violations.extend(project.and_then(crate::domain::validate_project));
        OrchestratorError::refuse(violations)?;
        let not_found = || {
            let described = match project {
                Some(project) => format!("named {name:?} in project {project:?}"),
                None => format!("named {name:?}"),
            };
            OrchestratorError::deployment_not_found(described)
        };
        let deployment = self
            .inner
            .store
            .find_deployment_by_name(name)
            .await?
            .ok_or_else(not_found)?;
        match project {
            Some(project) if deployment.project != project => Err(not_found()),
            _ => Ok(deployment),
        }
    }
}
