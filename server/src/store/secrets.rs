//! Deployment secrets: rows of `deployment_secrets`, apart from the spec's JSON,
//! written with their deployment and read back into its spec.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::{
    StoreResult, database,
    entities::{deployment_secret, deployment_secret::Column},
};
use crate::domain::{Deployment, DeploymentId, Secret};

/// Stores the secrets of a new deployment.
pub(super) async fn insert<C: ConnectionTrait>(
    connection: &C,
    deployment: &Deployment,
) -> StoreResult<()> {
    if deployment.spec.secret_env.is_empty() {
        return Ok(());
    }
    let rows =
        deployment
            .spec
            .secret_env
            .iter()
            .map(|(name, secret)| deployment_secret::ActiveModel {
                deployment_id: Set(deployment.id.clone()),
                name: Set(name.clone()),
                value: Set(secret.clone()),
            });
    deployment_secret::Entity::insert_many(rows)
        .exec_without_returning(connection)
        .await
        .map_err(database("storing a deployment's secrets"))?;
    Ok(())
}

/// The secrets of each of `deployments`, by deployment.
pub(super) async fn of<C: ConnectionTrait>(
    connection: &C,
    deployments: &[DeploymentId],
) -> StoreResult<HashMap<DeploymentId, BTreeMap<String, Secret>>> {
    let mut secrets: HashMap<DeploymentId, BTreeMap<String, Secret>> = HashMap::new();
    if deployments.is_empty() {
        return Ok(secrets);
    }
    let rows = deployment_secret::Entity::find()
        .filter(Column::DeploymentId.is_in(deployments.iter().cloned()))
        .all(connection)
        .await
        .map_err(database("reading deployment secrets"))?;
    for row in rows {
        secrets
            .entry(row.deployment_id)
            .or_default()
            .insert(row.name, row.value);
    }
    Ok(secrets)
}
