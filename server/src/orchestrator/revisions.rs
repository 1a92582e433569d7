//! Changing a deployment: update (a field mask), apply (the whole spec, or a
//! create) and rollback (an earlier revision's spec), each one new revision
//! written only if the deployment is still at the revision it was read at.

use std::collections::BTreeMap;

use super::{NewDeployment, Orchestrator, OrchestratorError, Result, paths};
use crate::{
    domain::{
        Deployment, DeploymentId, DeploymentRevision, DeploymentSpec, EventKind, FieldViolation,
        NewEvent, apply_mask, changed_fields, now, secret_digests,
    },
    store::{StateWrite, StoreError},
};

/// A change read from a deployment, retried this many times when another
/// change wins the race (and the caller named no revision).
const ATTEMPTS: usize = 5;

/// What an update sets: the fields `paths` name (see [`apply_mask`]).
#[derive(Debug, Clone)]
pub struct SpecPatch {
    pub spec: DeploymentSpec,
    pub labels: BTreeMap<String, String>,
    /// Empty: the whole spec.
    pub paths: Vec<String>,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Created,
    Updated,
    /// Nothing differed: no new revision.
    Unchanged,
}

/// The result of an update, an apply or a rollback.
#[derive(Debug, Clone)]
pub struct DeploymentChange {
    pub outcome: ChangeOutcome,
    /// The deployment as it is now.
    pub deployment: Deployment,
    /// The spec before, for an update (what the rollout compares against).
    pub previous: Option<Deployment>,
    /// The top-level fields that changed.
    pub changed: Vec<String>,
    /// What the caller should know (secrets a rollback could not restore).
    pub notes: Vec<String>,
}

impl Orchestrator {
    /// The deployment named by its id or its name.
    pub async fn find_deployment(&self, field: &str, text: &str) -> Result<Deployment> {
        if text.trim().is_empty() {
            return Err(OrchestratorError::invalid(
                field,
                "is required: a deployment id or name",
            ));
        }
        if let Ok(id) = DeploymentId::parse(text) {
            match self.get_deployment(&id).await {
                Err(OrchestratorError::NotFound { .. }) => {}
                found => return found,
            }
        }
        self.deployment_by_name(field, text, None).await
    }

    /// The deployment's revisions, newest first.
    pub async fn list_revisions(&self, id: &DeploymentId) -> Result<Vec<DeploymentRevision>> {
        Ok(self.inner.store.list_revisions(id).await?)
    }

    /// Changes the fields `patch` names. `expected`: refused with
    /// [`OrchestratorError::RevisionConflict`] unless the deployment is at
    /// that revision.
    pub async fn update_deployment(
        &self,
        id: &DeploymentId,
        patch: SpecPatch,
        expected: Option<u64>,
    ) -> Result<DeploymentChange> {
        for _ in 0..ATTEMPTS {
            let current = self.get_deployment(id).await?;
            check_expected(&current, expected)?;
            let mut spec = current.spec.clone();
            let mut labels = current.labels.clone();
            apply_mask(
                &mut spec,
                &mut labels,
                patch.spec.clone(),
                &patch.labels,
                &patch.paths,
            )
            .map_err(|violations| OrchestratorError::InvalidArgument { violations })?;
            match self.change(current, spec, labels, None).await {
                Err(OrchestratorError::RevisionConflict { .. }) if expected.is_none() => continue,
                result => return result,
            }
        }
        Err(busy(id))
    }

    /// Creates the deployment when its name is free, else makes it match
    /// `request` (the whole spec and the labels).
    pub async fn apply_deployment(&self, request: NewDeployment) -> Result<DeploymentChange> {
        if request.name.is_empty() {
            return Err(OrchestratorError::invalid(
                "deployment.name",
                "is required to apply a deployment",
            ));
        }
        for _ in 0..ATTEMPTS {
            let existing = match self
                .inner
                .store
                .find_deployment_by_name(&request.name)
                .await?
            {
                Some(existing) => existing,
                None => match self.create_deployment(request.clone()).await {
                    Ok(deployment) => {
                        return Ok(DeploymentChange {
                            outcome: ChangeOutcome::Created,
                            changed: Vec::new(),
                            notes: Vec::new(),
                            previous: None,
                            deployment,
                        });
                    }
                    // Created meanwhile: update it instead.
                    Err(OrchestratorError::AlreadyExists { .. }) => continue,
                    Err(error) => return Err(error),
                },
            };
            let mut violations = Vec::new();
            if existing.project != request.project {
                violations.push(FieldViolation::new(
                    "deployment.project",
                    format!(
                        "deployment {} is in project {:?}: a project cannot change",
                        existing.name, existing.project
                    ),
                ));
            }
            match paths::resolve_service_path(&self.inner.root, &request.service_path) {
                Ok(path) if path != existing.service_path => violations.push(FieldViolation::new(
                    "deployment.service_path",
                    format!(
                        "deployment {} runs in {:?}: a service path cannot change",
                        existing.name, existing.service_path
                    ),
                )),
                Ok(_) => {}
                Err(violation) => violations.push(violation),
            }
            OrchestratorError::refuse(violations)?;
            let mut spec = existing.spec.clone();
            let mut labels = existing.labels.clone();
            apply_mask(
                &mut spec,
                &mut labels,
                request.spec.clone(),
                &request.labels,
                &[],
            )
            .map_err(|violations| OrchestratorError::InvalidArgument { violations })?;
            match self
                .change(existing, spec, request.labels.clone(), None)
                .await
            {
                Err(OrchestratorError::RevisionConflict { .. }) => continue,
                result => return result,
            }
        }
        Err(OrchestratorError::Unavailable(format!(
            "deployment {} kept changing while it was applied: try again",
            request.name
        )))
    }

    /// Makes a new revision with the spec and labels of revision `to` (0:
    /// the one before the current one). Secret values are not kept in
    /// revisions: the current secrets stay, and a note says when the old
    /// revision's differed.
    pub async fn rollback_deployment(
        &self,
        id: &DeploymentId,
        to: u64,
        expected: Option<u64>,
    ) -> Result<DeploymentChange> {
        for _ in 0..ATTEMPTS {
            let current = self.get_deployment(id).await?;
            check_expected(&current, expected)?;
            let target = if to == 0 {
                current.revision.saturating_sub(1)
            } else {
                to
            };
            if target == 0 {
                return Err(OrchestratorError::invalid(
                    "to_revision",
                    format!(
                        "deployment {} has no revision before {}",
                        current.name, current.revision
                    ),
                ));
            }
            let Some(old) = self.inner.store.revision(id, target).await? else {
                return Err(OrchestratorError::invalid(
                    "to_revision",
                    format!(
                        "deployment {} has no revision {target} (its current one is {})",
                        current.name, current.revision
                    ),
                ));
            };
            let mut spec = old.spec.clone();
            spec.secret_env = current.spec.secret_env.clone();
            let notes = secret_notes(&current, &old);
            let labels = old.labels.clone();
            match self.change(current, spec, labels, Some(target)).await {
                Ok(mut change) => {
                    change.notes = notes;
                    return Ok(change);
                }
                Err(OrchestratorError::RevisionConflict { .. }) if expected.is_none() => continue,
                Err(error) => return Err(error),
            }
        }
        Err(busy(id))
    }

    /// Validates `spec` and `labels` and stores them as the next revision of
    /// `current`, if anything differs and `current` is still the stored
    /// revision; with its event.
    async fn change(
        &self,
        current: Deployment,
        spec: DeploymentSpec,
        labels: BTreeMap<String, String>,
        rolled_back_from: Option<u64>,
    ) -> Result<DeploymentChange> {
        OrchestratorError::refuse(self.check_spec(&spec, &labels).await)?;
        let changed = changed_fields(&current.spec, &current.labels, &spec, &labels);
        if changed.is_empty() {
            return Ok(DeploymentChange {
                outcome: ChangeOutcome::Unchanged,
                changed,
                notes: Vec::new(),
                previous: None,
                deployment: current,
            });
        }
        let mut next = current.clone();
        next.spec = spec;
        next.labels = labels;
        next.revision = current.revision + 1;
        next.updated_at = now();
        let mut revision = DeploymentRevision::of(
            &next.id,
            next.revision,
            &next.spec,
            &next.labels,
            changed.clone(),
        );
        revision.rolled_back_from = rolled_back_from;
        let how = match rolled_back_from {
            Some(from) => format!("rolled back to the spec of revision {from}"),
            None => "updated".to_owned(),
        };
        let event = NewEvent {
            kind: EventKind::DeploymentUpdated,
            deployment_id: next.id.clone(),
            workload_id: None,
            workload: None,
            message: format!(
                "deployment {} {how}: revision {} ({} changed)",
                next.name,
                next.revision,
                changed.join(", ")
            ),
            actor: crate::domain::current_actor(),
        };
        let write = StateWrite::UpdateDeployment {
            deployment: Box::new(next.clone()),
            expected_revision: current.revision,
            revision: Box::new(revision),
        };
        self.inner.events.commit(write, event).await?;
        Ok(DeploymentChange {
            outcome: ChangeOutcome::Updated,
            deployment: next,
            previous: Some(current),
            changed,
            notes: Vec::new(),
        })
    }
}

fn check_expected(current: &Deployment, expected: Option<u64>) -> Result<()> {
    match expected {
        Some(expected) if expected != current.revision => Err(StoreError::RevisionConflict {
            id: current.id.clone(),
            current: current.revision,
        }
        .into()),
        _ => Ok(()),
    }
}

fn busy(id: &DeploymentId) -> OrchestratorError {
    OrchestratorError::Unavailable(format!(
        "deployment {id} kept changing while it was updated: try again"
    ))
}

/// What a rollback to `old` cannot restore: secret values are not kept in
/// revisions, so the current secrets stay; say so when the old revision's
/// were other ones (names, or values by their digests).
fn secret_notes(current: &Deployment, old: &DeploymentRevision) -> Vec<String> {
    let now = secret_digests(&current.id, &current.spec.secret_env);
    let names = |map: &BTreeMap<String, String>| map.keys().cloned().collect::<Vec<_>>().join(", ");
    match &old.secrets {
        None => vec![format!(
            "revision {} predates recorded secrets: the current secrets ({}) are kept",
            old.revision,
            names(&now)
        )],
        Some(then) if *then != now => {
            let mut differing: Vec<String> = then
                .iter()
                .filter(|(name, digest)| now.get(*name) != Some(digest))
                .map(|(name, _)| name.clone())
                .collect();
            differing.extend(now.keys().filter(|name| !then.contains_key(*name)).cloned());
            differing.sort();
            differing.dedup();
            vec![format!(
                "secret values are not kept in revisions: the current secrets are kept, and these differ from revision {}: {}",
                old.revision,
                differing.join(", ")
            )]
        }
        Some(_) => Vec::new(),
    }
}
