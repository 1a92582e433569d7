//! The labels Slipway puts on its containers, typed and parsed back.

use std::collections::HashMap;

use crate::domain::{DeploymentId, WorkloadId};

pub const WORKLOAD: &str = "slipway.workload";
pub const DEPLOYMENT: &str = "slipway.deployment";
pub const GENERATION: &str = "slipway.generation";
/// The node that created the container (when it knows its id).
pub const NODE: &str = "slipway.node";

/// What a container's labels say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLabels {
    pub workload_id: WorkloadId,
    pub deployment_id: DeploymentId,
    pub generation: u64,
}

impl ContainerLabels {
    pub fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            (WORKLOAD.to_owned(), self.workload_id.to_string()),
            (DEPLOYMENT.to_owned(), self.deployment_id.to_string()),
            (GENERATION.to_owned(), self.generation.to_string()),
        ])
    }

    /// The labels of a Slipway container; `None` for any other container or
    /// malformed labels.
    pub fn parse(labels: &HashMap<String, String>) -> Option<Self> {
        Some(Self {
            workload_id: WorkloadId::parse(labels.get(WORKLOAD)?).ok()?,
            deployment_id: DeploymentId::parse(labels.get(DEPLOYMENT)?).ok()?,
            generation: labels.get(GENERATION)?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_foreign_ones_are_refused() {
        let labels = ContainerLabels {
            workload_id: WorkloadId::generate(),
            deployment_id: DeploymentId::generate(),
            generation: 3,
        };
        assert_eq!(
            ContainerLabels::parse(&labels.to_map()),
            Some(labels.clone())
        );
        let mut foreign = labels.to_map();
        foreign.insert(GENERATION.to_owned(), "three".to_owned());
        assert_eq!(ContainerLabels::parse(&foreign), None);
        assert_eq!(ContainerLabels::parse(&HashMap::new()), None);
    }
}
