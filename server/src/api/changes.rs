//! Changing deployments over the wire: UpdateDeployment, ApplyDeployment,
//! RollbackDeployment and ListRevisions (see `orchestrator::revisions`), the
//! rollout each change starts (see `fleet::rollout`), and their conversions.

use std::collections::HashMap;

use slipway::v1 as proto;
use tonic::{Request, Response, Status};

use super::{
    convert::{MASK, timestamp},
    deployments::DeploymentApi,
    status::{invalid_argument, to_status},
};
use crate::{
    access::{self, Caller},
    domain::{Deployment, DeploymentRevision, DeploymentSpec, FieldViolation, UpdateStrategy},
    orchestrator::{ChangeOutcome, DeploymentChange, NewDeployment, SpecPatch},
};

/// The strategy from the wire: rolling (1 unavailable, no surge) when unset.
pub fn update_strategy(strategy: Option<proto::UpdateStrategy>) -> UpdateStrategy {
    use proto::update_strategy::Strategy;
    match strategy.and_then(|strategy| strategy.strategy) {
        None => UpdateStrategy::default(),
        Some(Strategy::Recreate(_)) => UpdateStrategy::Recreate,
        Some(Strategy::OnRestart(_)) => UpdateStrategy::OnRestart,
        Some(Strategy::Rolling(rolling)) => UpdateStrategy::Rolling {
            max_unavailable: rolling.max_unavailable.max(1),
            max_surge: rolling.max_surge,
        },
    }
}

pub fn update_strategy_to_wire(strategy: UpdateStrategy) -> proto::UpdateStrategy {
    use proto::update_strategy::Strategy;
    proto::UpdateStrategy {
        strategy: Some(match strategy {
            UpdateStrategy::Recreate => Strategy::Recreate(proto::Recreate {}),
            UpdateStrategy::OnRestart => Strategy::OnRestart(proto::OnRestart {}),
            UpdateStrategy::Rolling {
                max_unavailable,
                max_surge,
            } => Strategy::Rolling(proto::RollingUpdate {
                max_unavailable,
                max_surge,
            }),
        }),
    }
}

/// A revision as shown: its secrets by name only, masked.
fn revision(revision: DeploymentRevision) -> proto::DeploymentRevision {
    let secret_names: Vec<String> = revision
        .secrets
        .as_ref()
        .map(|secrets| secrets.keys().cloned().collect())
        .unwrap_or_default();
    let mut spec: proto::DeploymentSpec = revision.spec.into();
    spec.secret_env = secret_names
        .into_iter()
        .map(|name| (name, MASK.to_owned()))
        .collect();
    proto::DeploymentRevision {
        revision: revision.revision,
        created_at: Some(timestamp(revision.created_at)),
        actor: revision.actor.unwrap_or_default(),
        changed_fields: revision.changed,
        spec: Some(spec),
        labels: revision.labels.into_iter().collect(),
        rolled_back_from: revision.rolled_back_from.unwrap_or(0),
    }
}

/// What the audit trail keeps of a change: names, never a value of the
/// environment or of a secret.
fn audit_parameters(
    deployment: &str,
    spec: Option<&proto::DeploymentSpec>,
    extra: serde_json::Value,
) -> serde_json::Value {
    let names = |map: Option<&HashMap<String, String>>| {
        let mut names: Vec<&String> = map.map(|map| map.keys().collect()).unwrap_or_default();
        names.sort();
        serde_json::json!(names)
    };
    serde_json::json!({
        "deployment": deployment,
        "image": spec.map(|spec| spec.image.clone()).unwrap_or_default(),
        "command": spec.map(|spec| spec.command.clone()).unwrap_or_default(),
        "env_names": names(spec.map(|spec| &spec.env)),
        "secret_env_names": names(spec.map(|spec| &spec.secret_env)),
        "request": extra,
    })
}

impl DeploymentApi {
    /// The deployment `text` names (id or name), if the caller may act on it.
    async fn target(&self, caller: &Caller, field: &str, text: &str) -> Result<Deployment, Status> {
        let deployment = self
            .orchestrator()
            .find_deployment(field, text)
            .await
            .map_err(to_status)?;
        caller.check_project(&deployment.project)?;
        Ok(deployment)
    }

    /// The response to a change, with the rollout it starts.
    async fn respond(
        &self,
        caller: &Caller,
        change: DeploymentChange,
    ) -> Result<Response<proto::ChangeDeploymentResponse>, Status> {
        let outcome = match change.outcome {
            ChangeOutcome::Created => proto::change_deployment_response::Outcome::Created,
            ChangeOutcome::Updated => proto::change_deployment_response::Outcome::Updated,
            ChangeOutcome::Unchanged => proto::change_deployment_response::Outcome::Unchanged,
        };
        let mut notes = change.notes;
        let mut operation_id = String::new();
        if change.outcome == ChangeOutcome::Updated {
            let actor = crate::domain::current_actor().unwrap_or_else(|| caller.name.clone());
            match self.fleet().rollout(&actor, &change.deployment).await {
                Ok(operation) => {
                    operation_id = operation.map(|operation| operation.id).unwrap_or_default()
                }
                // The change is stored: say that its rollout did not start,
                // rather than fail a call that did what it was asked.
                Err(error) => {
                    tracing::error!(%error, deployment = %change.deployment.name, "starting a rollout failed");
                    notes.push(format!(
                        "the change is stored, but its rollout could not start ({}): restart the workloads to run revision {}",
                        super::fleet::to_status(error).message(),
                        change.deployment.revision
                    ));
                }
            }
        }
        Ok(Response::new(proto::ChangeDeploymentResponse {
            outcome: outcome.into(),
            deployment: Some(change.deployment.into()),
            operation_id,
            changed_fields: change.changed,
            notes,
        }))
    }

    pub(super) async fn update(
        &self,
        request: Request<proto::UpdateDeploymentRequest>,
    ) -> Result<Response<proto::ChangeDeploymentResponse>, Status> {
        let caller = access::caller(&request)?;
        let body = request.get_ref();
        let paths: Vec<String> = body
            .update_mask
            .as_ref()
            .map(|mask| mask.paths.clone())
            .unwrap_or_default();
        access::note(
            &request,
            &body.deployment,
            audit_parameters(
                &body.deployment,
                body.spec.as_ref(),
                serde_json::json!({
                    "update_mask": paths,
                    "expected_revision": body.expected_revision,
                    "label_names": body.labels.keys().collect::<Vec<_>>(),
                }),
            ),
        );
        let deployment = self.target(&caller, "deployment", &body.deployment).await?;
        let request = request.into_inner();
        let spec = match request.spec {
            Some(spec) => spec,
            // Fields named without a spec are set to nothing (map keys removed).
            None if !paths.is_empty() => proto::DeploymentSpec::default(),
            None => {
                return Err(invalid_argument(&[FieldViolation::new(
                    "spec",
                    "is required",
                )]));
            }
        };
        let spec =
            DeploymentSpec::try_from(spec).map_err(|violations| invalid_argument(&violations))?;
        let patch = SpecPatch {
            spec,
            labels: request.labels.into_iter().collect(),
            paths,
        };
        let expected = Some(request.expected_revision).filter(|revision| *revision > 0);
        let change = self
            .orchestrator()
            .update_deployment(&deployment.id, patch, expected)
            .await
            .map_err(to_status)?;
        self.respond(&caller, change).await
    }

    pub(super) async fn apply(
        &self,
        request: Request<proto::ApplyDeploymentRequest>,
    ) -> Result<Response<proto::ChangeDeploymentResponse>, Status> {
        let caller = access::caller(&request)?;
        let Some(body) = request.get_ref().deployment.clone() else {
            return Err(invalid_argument(&[FieldViolation::new(
                "deployment",
                "is required",
            )]));
        };
        access::note(
            &request,
            &body.name,
            audit_parameters(
                &body.name,
                body.spec.as_ref(),
                serde_json::json!({
                    "project": body.project,
                    "service_path": body.service_path,
                }),
            ),
        );
        caller.check_project(&body.project)?;
        let new = NewDeployment::try_from(body).map_err(|violations| {
            let violations: Vec<FieldViolation> = violations
                .into_iter()
                .map(|violation| {
                    FieldViolation::new(
                        format!("deployment.{}", violation.field),
                        violation.description,
                    )
                })
                .collect();
            invalid_argument(&violations)
        })?;
        let change = self
            .orchestrator()
            .apply_deployment(new)
            .await
            .map_err(to_status)?;
        if change.outcome == ChangeOutcome::Created {
            access::note(
                &request,
                &change.deployment.id.to_string(),
                serde_json::json!({ "created": change.deployment.name }),
            );
        }
        self.respond(&caller, change).await
    }

    pub(super) async fn rollback(
        &self,
        request: Request<proto::RollbackDeploymentRequest>,
    ) -> Result<Response<proto::ChangeDeploymentResponse>, Status> {
        let caller = access::caller(&request)?;
        let body = request.get_ref().clone();
        access::note(
            &request,
            &body.deployment,
            serde_json::json!({
                "deployment": body.deployment,
                "to_revision": body.to_revision,
                "expected_revision": body.expected_revision,
            }),
        );
        let deployment = self.target(&caller, "deployment", &body.deployment).await?;
        let expected = Some(body.expected_revision).filter(|revision| *revision > 0);
        let change = self
            .orchestrator()
            .rollback_deployment(&deployment.id, body.to_revision, expected)
            .await
            .map_err(to_status)?;
        self.respond(&caller, change).await
    }

    pub(super) async fn revisions(
        &self,
        request: Request<proto::ListRevisionsRequest>,
    ) -> Result<Response<proto::ListRevisionsResponse>, Status> {
        let caller = access::caller(&request)?;
        let deployment = self
            .target(&caller, "deployment", &request.get_ref().deployment)
            .await?;
        let revisions = self
            .orchestrator()
            .list_revisions(&deployment.id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::ListRevisionsResponse {
            revisions: revisions.into_iter().map(revision).collect(),
            current_revision: deployment.revision,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_shows_secret_names_never_values() {
        let id = crate::domain::DeploymentId::generate();
        let mut spec = DeploymentSpec::process(vec!["true".to_owned()]);
        spec.secret_env
            .insert("TOKEN".to_owned(), crate::domain::Secret::from("s3cr3t"));
        let shown = revision(DeploymentRevision::of(
            &id,
            1,
            &spec,
            &Default::default(),
            Vec::new(),
        ));
        let text = format!("{shown:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(
            shown.spec.map(|spec| spec.secret_env),
            Some(HashMap::from([("TOKEN".to_owned(), MASK.to_owned())]))
        );
    }
}
