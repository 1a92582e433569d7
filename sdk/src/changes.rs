//! Changing deployments: updates (a typed builder over the field mask),
//! apply, revisions and rollback.

use slipway::v1::{
    ApplyDeploymentRequest, ChangeDeploymentResponse, CreateDeploymentRequest, Deployment,
    DeploymentRevision, DeploymentSpec, HttpProbe, ListRevisionsRequest, OnRestart, Readiness,
    Recreate, RollbackDeploymentRequest, RollingUpdate, TcpProbe, UpdateDeploymentRequest,
    UpdateStrategy, change_deployment_response, readiness::Probe, update_strategy::Strategy,
};

use crate::{Client, Result};

/// How a change of a deployment reaches its running workloads.
///
/// ```
/// use slipway_sdk::RolloutStrategy;
///
/// let strategy = RolloutStrategy::Rolling { max_unavailable: 2, max_surge: 0 };
/// let spec = slipway_sdk::DeploymentBuilder::new("web")
///     .update_strategy(strategy)
///     .build();
/// assert!(spec.spec.unwrap().update_strategy.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStrategy {
    /// With `max_surge` 0, `max_unavailable` workloads restarted at a time,
    /// each ready before the next; with `max_surge` > 0, that many new
    /// workloads start first and each replaces an old one once ready.
    Rolling {
        /// Restarted at once (at least 1).
        max_unavailable: u32,
        /// New workloads started at once before old ones go.
        max_surge: u32,
    },
    /// Every running workload restarted at once.
    Recreate,
    /// Nothing now: each workload runs the new spec from its next run.
    OnRestart,
}

impl From<RolloutStrategy> for UpdateStrategy {
    fn from(strategy: RolloutStrategy) -> Self {
        UpdateStrategy {
            strategy: Some(match strategy {
                RolloutStrategy::Rolling {
                    max_unavailable,
                    max_surge,
                } => Strategy::Rolling(RollingUpdate {
                    max_unavailable,
                    max_surge,
                }),
                RolloutStrategy::Recreate => Strategy::Recreate(Recreate {}),
                RolloutStrategy::OnRestart => Strategy::OnRestart(OnRestart {}),
            }),
        }
    }
}

/// A change to a deployment: only what is set here changes; the field mask
/// is written for you.
///
/// ```no_run
/// # async fn example(client: slipway_sdk::Client) -> Result<(), slipway_sdk::Error> {
/// use slipway_sdk::DeploymentUpdate;
///
/// let change = client
///     .update_deployment(
///         DeploymentUpdate::new("web")
///             .env("LOG_LEVEL", "debug")
///             .remove_env("OLD_FLAG")
///             .expect_revision(3),
///     )
///     .await?;
/// println!("{:?}: revision {}", change.outcome, change.deployment.revision);
/// if let Some(operation) = &change.operation_id {
///     client.wait_for_operation(operation, std::time::Duration::from_secs(600)).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DeploymentUpdate {
    request: UpdateDeploymentRequest,
}

impl DeploymentUpdate {
    /// A change to the deployment with this id or name.
    pub fn new(deployment: impl Into<String>) -> Self {
        Self {
            request: UpdateDeploymentRequest {
                deployment: deployment.into(),
                spec: Some(DeploymentSpec::default()),
                ..UpdateDeploymentRequest::default()
            },
        }
    }

    fn spec(&mut self) -> &mut DeploymentSpec {
        self.request
            .spec
            .get_or_insert_with(DeploymentSpec::default)
    }

    fn path(&mut self, path: String) {
        let mask = self
            .request
            .update_mask
            .get_or_insert_with(Default::default);
        if !mask.paths.contains(&path) {
            mask.paths.push(path);
        }
    }

    /// Sets one environment variable (the others stay).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.spec().env.insert(name.clone(), value.into());
        self.path(format!("env.{name}"));
        self
    }

    /// Removes one environment variable: the next run does not have it.
    pub fn remove_env(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.spec().env.remove(&name);
        self.path(format!("env.{name}"));
        self
    }

    /// Sets one secret environment variable (never shown back).
    pub fn secret_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.spec().secret_env.insert(name.clone(), value.into());
        self.path(format!("secret_env.{name}"));
        self
    }

    /// Removes one secret environment variable.
    pub fn remove_secret_env(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.spec().secret_env.remove(&name);
        self.path(format!("secret_env.{name}"));
        self
    }

    /// Docker: the image to run.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.spec().image = image.into();
        self.path("image".to_owned());
        self
    }

    /// The argv to run.
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec().command = argv.into_iter().map(Into::into).collect();
        self.path("command".to_owned());
        self
    }

    /// Ready when `GET path` answers 2xx or 3xx.
    pub fn http_readiness(mut self, path: impl Into<String>) -> Self {
        self.spec().readiness = Some(Readiness {
            probe: Some(Probe::Http(HttpProbe { path: path.into() })),
        });
        self.path("readiness".to_owned());
        self
    }

    /// Ready when a TCP connection to the port succeeds.
    pub fn tcp_readiness(mut self) -> Self {
        self.spec().readiness = Some(Readiness {
            probe: Some(Probe::Tcp(TcpProbe {})),
        });
        self.path("readiness".to_owned());
        self
    }

    /// How this and later changes reach the running workloads.
    pub fn update_strategy(mut self, strategy: RolloutStrategy) -> Self {
        self.spec().update_strategy = Some(strategy.into());
        self.path("update_strategy".to_owned());
        self
    }

    /// Sets one label of the deployment.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.request.labels.insert(key.clone(), value.into());
        self.path(format!("labels.{key}"));
        self
    }

    /// Removes one label of the deployment.
    pub fn remove_label(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.request.labels.remove(&key);
        self.path(format!("labels.{key}"));
        self
    }

    /// Replaces the whole spec (every field; labels stay).
    pub fn whole_spec(mut self, spec: DeploymentSpec) -> Self {
        self.request.spec = Some(spec);
        self.request.update_mask = None;
        self
    }

    /// Made only if the deployment is at this revision; else
    /// [`crate::Error::RevisionConflict`] with the current one.
    pub fn expect_revision(mut self, revision: u64) -> Self {
        self.request.expected_revision = revision;
        self
    }

    /// The request as it goes on the wire.
    pub fn build(self) -> UpdateDeploymentRequest {
        self.request
    }
}

impl From<DeploymentUpdate> for UpdateDeploymentRequest {
    fn from(update: DeploymentUpdate) -> Self {
        update.build()
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// A new deployment (apply).
    Created,
    /// A new revision.
    Updated,
    /// Nothing differed: no new revision.
    Unchanged,
}

/// The answer to an update, an apply or a rollback.
#[derive(Debug, Clone)]
pub struct DeploymentChange {
    /// What it did.
    pub outcome: ChangeOutcome,
    /// The deployment now (`revision` included).
    pub deployment: Deployment,
    /// The rollout to the running workloads (a fleet operation: see
    /// [`Client::wait_for_operation`]); `None` when there is nothing to roll out.
    pub operation_id: Option<String>,
    /// The top-level fields that changed.
    pub changed_fields: Vec<String>,
    /// What to know (secrets a rollback could not restore, …).
    pub notes: Vec<String>,
}

impl From<ChangeDeploymentResponse> for DeploymentChange {
    fn from(response: ChangeDeploymentResponse) -> Self {
        use change_deployment_response::Outcome;
        let outcome = match Outcome::try_from(response.outcome) {
            Ok(Outcome::Created) => ChangeOutcome::Created,
            Ok(Outcome::Unchanged) => ChangeOutcome::Unchanged,
            _ => ChangeOutcome::Updated,
        };
        DeploymentChange {
            outcome,
            deployment: response.deployment.unwrap_or_default(),
            operation_id: Some(response.operation_id).filter(|id| !id.is_empty()),
            changed_fields: response.changed_fields,
            notes: response.notes,
        }
    }
}

impl Client {
    /// Changes what `update` sets (a [`DeploymentUpdate`], or a request
    /// written out), as one new revision (none when nothing
    /// differs); the deployment's update strategy rolls it out.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> Result<(), slipway_sdk::Error> {
    /// let change = client
    ///     .update_deployment(slipway_sdk::DeploymentUpdate::new("web").image("nginx:1.27"))
    ///     .await?;
    /// assert_eq!(change.changed_fields, ["image"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_deployment(
        &self,
        update: impl Into<UpdateDeploymentRequest>,
    ) -> Result<DeploymentChange> {
        Ok(self
            .deployments
            .clone()
            .update_deployment(update.into())
            .await?
            .into_inner()
            .into())
    }

    /// Creates the deployment when its name is free, else updates it to match
    /// (the whole spec and labels); applying the same spec again is
    /// [`ChangeOutcome::Unchanged`].
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> Result<(), slipway_sdk::Error> {
    /// use slipway_sdk::{ChangeOutcome, DeploymentBuilder};
    ///
    /// let spec = DeploymentBuilder::new("worker").command(["sh", "-c", "exec ./worker"]);
    /// let first = client.apply(spec.clone()).await?;
    /// assert_eq!(first.outcome, ChangeOutcome::Created);
    /// let again = client.apply(spec).await?;
    /// assert_eq!(again.outcome, ChangeOutcome::Unchanged);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn apply(
        &self,
        spec: impl Into<CreateDeploymentRequest>,
    ) -> Result<DeploymentChange> {
        let request = ApplyDeploymentRequest {
            deployment: Some(spec.into()),
        };
        Ok(self
            .deployments
            .clone()
            .apply_deployment(request)
            .await?
            .into_inner()
            .into())
    }

    /// The deployment's revisions (id or name), newest first; secrets by name only.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> Result<(), slipway_sdk::Error> {
    /// for revision in client.list_revisions("web").await? {
    ///     println!("{} by {}: {:?}", revision.revision, revision.actor, revision.changed_fields);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_revisions(&self, deployment: &str) -> Result<Vec<DeploymentRevision>> {
        let request = ListRevisionsRequest {
            deployment: deployment.to_owned(),
        };
        Ok(self
            .deployments
            .clone()
            .list_revisions(request)
            .await?
            .into_inner()
            .revisions)
    }

    /// Makes a new revision with the spec of `to_revision` (`None`: the one
    /// before the current one), rolled out as an update is. Secret values are
    /// not kept in revisions: the current ones stay, and
    /// [`DeploymentChange::notes`] says when the old revision's differed.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client) -> Result<(), slipway_sdk::Error> {
    /// let change = client.rollback("web", None).await?;
    /// println!("now at revision {}", change.deployment.revision);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rollback(
        &self,
        deployment: &str,
        to_revision: Option<u64>,
    ) -> Result<DeploymentChange> {
        let request = RollbackDeploymentRequest {
            deployment: deployment.to_owned(),
            to_revision: to_revision.unwrap_or(0),
            expected_revision: 0,
        };
        Ok(self
            .deployments
            .clone()
            .rollback_deployment(request)
            .await?
            .into_inner()
            .into())
    }
}
