//! The flags that describe this node to the others.

use std::{collections::BTreeMap, time::Duration};

/// Settings of this node (part of `slipway serve`).
#[derive(clap::Args, Debug, Clone)]
pub struct NodeConfig {
    /// This node's name, as `slipway nodes` shows it; the host name by default.
    #[arg(long, env = "SLIPWAY_NODE_NAME")]
    pub node_name: Option<String>,

    /// The address other nodes and clients reach this node at (`HOST:PORT`);
    /// by default the --listen address (with the host name in place of an
    /// unspecified address such as 0.0.0.0).
    #[arg(long, env = "SLIPWAY_ADVERTISE")]
    pub advertise: Option<String>,

    /// A label of this node, as KEY=VALUE; repeat for more. Deployments select
    /// nodes by label.
    #[arg(long = "node-label", env = "SLIPWAY_NODE_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,

    /// The most workloads this node runs at once; 0 for no limit.
    #[arg(long, env = "SLIPWAY_MAX_WORKLOADS", default_value_t = 0)]
    pub max_workloads: u32,

    /// How often this node renews its heartbeat in the database.
    #[arg(long, env = "SLIPWAY_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// After how long without a heartbeat the other nodes declare this node
    /// lost (at least twice the interval). 30 s rides out several missed
    /// heartbeats of a loaded machine or a database failover, and still fails
    /// over well within a minute (Kubernetes: 40 s, Nomad: at least 10 s).
    #[arg(long, env = "SLIPWAY_HEARTBEAT_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub heartbeat_ttl: Duration,

    /// What this node does while it cannot reach the database: by default it
    /// keeps its workloads running (the others fail them over once its
    /// heartbeat TTL passes, so for a while they may run twice). With a
    /// duration, it stops them once it has been cut off that long (Nomad's
    /// `stop_on_client_after`); below the heartbeat TTL, a workload never runs
    /// on two nodes at once.
    #[arg(long, env = "SLIPWAY_STOP_AFTER_DISCONNECT", value_parser = humantime::parse_duration)]
    pub stop_after_disconnect: Option<Duration>,

    /// The most of the active nodes, in percent, that may take no new
    /// workloads at once (paused, draining or drained): pausing or draining
    /// past it is refused unless forced with the node's name as confirmation.
    #[arg(long, env = "SLIPWAY_MAX_UNAVAILABLE_NODES", default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_unavailable_nodes: u32,

    /// The fewest running workloads a deployment keeps during a rolling
    /// restart: one that would go below is refused unless forced (a request
    /// may ask for more). 0: no minimum.
    #[arg(long, env = "SLIPWAY_MIN_AVAILABLE", default_value_t = 0)]
    pub min_available: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_name: None,
            advertise: None,
            node_labels: Vec::new(),
            max_workloads: 0,
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_ttl: Duration::from_secs(30),
            stop_after_disconnect: None,
            max_unavailable_nodes: 50,
            min_available: 0,
        }
    }
}

impl NodeConfig {
    /// The labels, as a map (a later KEY wins).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.node_labels.iter().cloned().collect()
    }

    /// Refuses a TTL that a node could miss by heartbeating on time.
    pub fn check(&self) -> Result<(), String> {
        if self.heartbeat_interval.is_zero() {
            return Err("--heartbeat-interval must be more than 0".to_owned());
        }
        if self.heartbeat_ttl < self.heartbeat_interval * 2 {
            return Err(format!(
                "--heartbeat-ttl ({}) must be at least twice --heartbeat-interval ({})",
                humantime::format_duration(self.heartbeat_ttl),
                humantime::format_duration(self.heartbeat_interval)
            ));
        }
        Ok(())
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("a label needs a key: {text:?}"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_a_ttl_below_two_intervals_is_refused() {
        assert_eq!(parse_label("zone=a"), Ok(("zone".into(), "a".into())));
        assert!(parse_label("zone").is_err());
        assert!(parse_label("=a").is_err());
        let mut config = NodeConfig::default();
        assert!(config.check().is_ok());
        config.heartbeat_ttl = Duration::from_secs(9);
        assert!(config.check().is_err());
    }
}
