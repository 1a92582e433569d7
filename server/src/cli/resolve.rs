//! Turning what a person types (a full id, a unique prefix, a deployment name)
//! into workloads and deployments, the way Docker does: a full id first, then an
//! exact name, then a unique id prefix.

use std::collections::HashMap;

use slipway_sdk::{
    Client,
    proto::{Action, Deployment, ListWorkloadsRequest, Stage, Workload},
};

use super::{error::CliError, output::short_id};

/// Which of a deployment's workloads its name stands for.
#[derive(Debug, Clone, Copy)]
pub enum NameScope {
    /// The most recently created one.
    Latest,
    /// Every one.
    All,
    /// Those that admit this action (as the server's `allowed_actions` say), or
    /// the most recent one when none does.
    WhereOrLatest(Action),
}

/// Whether the server says `workload` admits `action` now.
pub fn admits(workload: &Workload, action: Action) -> bool {
    workload.allowed_actions.contains(&(action as i32))
}

/// Whether a workload is on its way or running (not pending, not terminal).
pub fn is_active(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::Validate | Stage::Build | Stage::Deploy | Stage::Running | Stage::Stopping
    )
}

/// Every deployment and workload, read once per command.
#[derive(Debug, Default)]
pub struct Catalog {
    pub deployments: Vec<Deployment>,
    pub workloads: Vec<Workload>,
    names: HashMap<String, String>,
}

impl Catalog {
    /// Reads every deployment and workload from the server.
    pub async fn load(client: &Client) -> Result<Catalog, CliError> {
        let deployments = client
            .all_deployments()
            .await
            .map_err(|error| CliError::server("cannot list deployments", error))?;
        let workloads = all_workloads(client, ListWorkloadsRequest::default()).await?;
        Ok(Catalog::new(deployments, workloads))
    }

    /// A catalog of these deployments and workloads.
    pub fn new(deployments: Vec<Deployment>, mut workloads: Vec<Workload>) -> Catalog {
        workloads.sort_by_key(|workload| std::cmp::Reverse(created_key(workload)));
        let names = deployments
            .iter()
            .map(|deployment| (deployment.id.clone(), deployment.name.clone()))
            .collect();
        Catalog {
            deployments,
            workloads,
            names,
        }
    }

    /// The name of the deployment with this id.
    pub fn deployment_name(&self, deployment_id: &str) -> Option<&str> {
        self.names.get(deployment_id).map(String::as_str)
    }

    /// The deployment with this id.
    pub fn deployment(&self, deployment_id: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|deployment| deployment.id == deployment_id)
    }

    /// The deployment named by a full id, its name, or a unique id prefix.
    pub fn resolve_deployment(&self, target: &str) -> Result<&Deployment, CliError> {
        if let Some(found) = self
            .deployments
            .iter()
            .find(|deployment| deployment.id == target || deployment.name == target)
        {
            return Ok(found);
        }
        let matches: Vec<&Deployment> = self
            .deployments
            .iter()
            .filter(|deployment| is_prefix(target, &deployment.id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(CliError::NotFound {
                target: target.to_owned(),
            }),
            many => Err(CliError::Ambiguous {
                target: target.to_owned(),
                candidates: many
                    .iter()
                    .map(|deployment| format!("{} ({})", short_id(&deployment.id), deployment.name))
                    .collect(),
            }),
        }
    }

    /// The workloads `target` stands for: the workload with that full id, the
    /// deployment's workloads (by `scope`) for a deployment name, or the one
    /// workload whose id starts with it.
    pub fn resolve_workloads(
        &self,
        target: &str,
        scope: NameScope,
    ) -> Result<Vec<Workload>, CliError> {
        if let Some(found) = self.workloads.iter().find(|workload| workload.id == target) {
            return Ok(vec![found.clone()]);
        }
        if let Some(deployment) = self
            .deployments
            .iter()
            .find(|deployment| deployment.name == target || deployment.id == target)
        {
            let of_deployment: Vec<&Workload> = self
                .workloads
                .iter()
                .filter(|workload| workload.deployment_id == deployment.id)
                .collect();
            let chosen: Vec<Workload> = match scope {
                NameScope::All => of_deployment.into_iter().cloned().collect(),
                NameScope::Latest => of_deployment.into_iter().take(1).cloned().collect(),
                NameScope::WhereOrLatest(wanted) => {
                    let matching: Vec<Workload> = of_deployment
                        .iter()
                        .filter(|workload| admits(workload, wanted))
                        .map(|workload| (*workload).clone())
                        .collect();
                    if matching.is_empty() {
                        of_deployment.into_iter().take(1).cloned().collect()
                    } else {
                        matching
                    }
                }
            };
            if chosen.is_empty() {
                return Err(CliError::Failed {
                    message: format!("deployment {target:?} has no workloads"),
                });
            }
            return Ok(chosen);
        }
        let matches: Vec<&Workload> = self
            .workloads
            .iter()
            .filter(|workload| is_prefix(target, &workload.id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(vec![(*one).clone()]),
            [] => Err(CliError::NotFound {
                target: target.to_owned(),
            }),
            many => Err(CliError::Ambiguous {
                target: target.to_owned(),
                candidates: many
                    .iter()
                    .map(|workload| {
                        let name = self.deployment_name(&workload.deployment_id).unwrap_or("-");
                        format!("{} ({name})", short_id(&workload.id))
                    })
                    .collect(),
            }),
        }
    }

    /// The one workload `target` stands for (a deployment name: its most recent one).
    pub fn resolve_workload(&self, target: &str) -> Result<Workload, CliError> {
        let mut found = self.resolve_workloads(target, NameScope::Latest)?;
        found.pop().ok_or_else(|| CliError::NotFound {
            target: target.to_owned(),
        })
    }
}

fn is_prefix(target: &str, id: &str) -> bool {
    !target.is_empty() && id.starts_with(target)
}

fn created_key(workload: &Workload) -> (i64, i32, String) {
    let created = workload.created_at.unwrap_or_default();
    (created.seconds, created.nanos, workload.id.clone())
}

/// Every workload matching `request`, all pages.
pub async fn all_workloads(
    client: &Client,
    request: ListWorkloadsRequest,
) -> Result<Vec<Workload>, CliError> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_workloads(ListWorkloadsRequest {
                page_token: page_token.clone(),
                ..request.clone()
            })
            .await
            .map_err(|error| CliError::server("cannot list workloads", error))?;
        all.extend(page.workloads);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn workload(id: &str, deployment_id: &str, stage: Stage, created: i64) -> Workload {
        let allowed = match stage {
            Stage::Running => vec![Action::Stop, Action::Restart, Action::Delete],
            _ => vec![Action::Restart, Action::Delete],
        };
        Workload {
            id: id.to_owned(),
            deployment_id: deployment_id.to_owned(),
            stage: stage as i32,
            allowed_actions: allowed.into_iter().map(|action| action as i32).collect(),
            created_at: Some(Timestamp {
                seconds: created,
                nanos: 0,
            }),
            ..Workload::default()
        }
    }

    fn catalog() -> Catalog {
        let deployment = Deployment {
            id: "d".repeat(32),
            name: "web".to_owned(),
            ..Deployment::default()
        };
        Catalog::new(
            vec![deployment],
            vec![
                workload(
                    &format!("aa1{}", "0".repeat(29)),
                    &"d".repeat(32),
                    Stage::Stopped,
                    1,
                ),
                workload(
                    &format!("aa2{}", "0".repeat(29)),
                    &"d".repeat(32),
                    Stage::Running,
                    2,
                ),
                workload(
                    &format!("b{}", "0".repeat(31)),
                    &"d".repeat(32),
                    Stage::Stopped,
                    3,
                ),
            ],
        )
    }

    #[test]
    fn a_unique_prefix_is_enough() {
        let found = catalog().resolve_workloads("aa2", NameScope::Latest);
        assert_eq!(found.map(|list| list.len()).ok(), Some(1));
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        match catalog().resolve_workloads("aa", NameScope::Latest) {
            Err(CliError::Ambiguous { candidates, .. }) => {
                assert_eq!(candidates.len(), 2);
                assert!(candidates[0].contains("(web)"), "{candidates:?}");
            }
            other => panic!("expected an ambiguity, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_target_is_not_found() {
        assert!(matches!(
            catalog().resolve_workloads("zzz", NameScope::Latest),
            Err(CliError::NotFound { .. })
        ));
    }

    #[test]
    fn a_deployment_name_stands_for_its_workloads_by_scope() {
        let catalog = catalog();
        let latest = catalog.resolve_workload("web").map(|workload| workload.id);
        assert_eq!(latest.ok(), Some(format!("b{}", "0".repeat(31))));
        let active = catalog
            .resolve_workloads("web", NameScope::WhereOrLatest(Action::Stop))
            .map(|list| {
                list.into_iter()
                    .map(|workload| workload.stage())
                    .collect::<Vec<_>>()
            });
        assert_eq!(active.ok(), Some(vec![Stage::Running]));
        let all = catalog.resolve_workloads("web", NameScope::All);
        assert_eq!(all.map(|list| list.len()).ok(), Some(3));
    }
}
