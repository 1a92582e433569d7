//! Revisions of a deployment: what changed, a field mask applied to a spec,
//! and how a change reaches the live workloads (the update strategy).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{DeploymentId, DeploymentSpec, FieldViolation, REDACTED, Secret, Timestamp};

/// How a change of a deployment reaches its live workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum UpdateStrategy {
    /// `max_surge == 0`: `max_unavailable` restarted at a time, each gated on
    /// readiness. `max_surge > 0`: that many new workloads at a time start
    /// first; once one is ready, an old one is stopped and removed.
    Rolling {
        max_unavailable: u32,
        max_surge: u32,
    },
    /// Every live workload restarted at once.
    Recreate,
    /// Nothing now: the next run of each workload reads the new spec.
    OnRestart,
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        UpdateStrategy::Rolling {
            max_unavailable: 1,
            max_surge: 0,
        }
    }
}

impl UpdateStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStrategy::Rolling { .. } => "rolling",
            UpdateStrategy::Recreate => "recreate",
            UpdateStrategy::OnRestart => "on_restart",
        }
    }
}

/// One revision of a deployment, as kept: never a secret's value, only its
/// name and a digest (so that a changed value is a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRevision {
    pub deployment_id: DeploymentId,
    pub revision: u64,
    /// The spec, its `secret_env` empty (see `secrets`).
    pub spec: DeploymentSpec,
    /// Secret name → digest of its value; `None` for a revision recorded
    /// before revisions kept them (the deployment's first, migrated).
    pub secrets: Option<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
    /// The top-level fields that changed from the revision before.
    pub changed: Vec<String>,
    pub actor: Option<String>,
    pub created_at: Timestamp,
    /// For a rollback: the revision it restored.
    pub rolled_back_from: Option<u64>,
}

impl DeploymentRevision {
    /// The revision `revision` of a deployment whose spec and labels are these.
    pub fn of(
        deployment_id: &DeploymentId,
        revision: u64,
        spec: &DeploymentSpec,
        labels: &BTreeMap<String, String>,
        changed: Vec<String>,
    ) -> DeploymentRevision {
        let mut kept = spec.clone();
        kept.secret_env = BTreeMap::new();
        DeploymentRevision {
            deployment_id: deployment_id.clone(),
            revision,
            spec: kept,
            secrets: Some(secret_digests(deployment_id, &spec.secret_env)),
            labels: labels.clone(),
            changed,
            actor: super::current_actor(),
            created_at: super::now(),
            rolled_back_from: None,
        }
    }
}

/// A digest per secret, salted with the deployment's id: tells whether a
/// value changed without keeping it.
pub fn secret_digests(
    deployment_id: &DeploymentId,
    secrets: &BTreeMap<String, Secret>,
) -> BTreeMap<String, String> {
    secrets
        .iter()
        .map(|(name, value)| {
            let mut hasher = Sha256::new();
            for part in [deployment_id.as_str(), name, value.expose()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
            let digest: String = hasher
                .finalize()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            (name.clone(), digest)
        })
        .collect()
}

/// The paths of a field mask: the wire names of `DeploymentSpec`'s fields.
pub const SPEC_FIELDS: &[&str] = &[
    "runtime",
    "command",
    "build",
    "env",
    "listen",
    "readiness",
    "stop_grace_period_seconds",
    "startup_timeout_seconds",
    "image",
    "dockerfile",
    "resources",
    "restart_policy",
    "liveness",
    "secret_env",
    "stop_signal",
    "min_ready_ms",
    "user",
    "max_open_files",
    "node_selector",
    "update_strategy",
];

/// Maps whose single keys a path may name (`env.KEY`).
const MAP_FIELDS: &[&str] = &["env", "secret_env", "node_selector", "labels"];

/// The top-level fields (wire names, and `labels`) in which two specs differ;
/// secrets by value.
pub fn changed_fields(
    old: &DeploymentSpec,
    old_labels: &BTreeMap<String, String>,
    new: &DeploymentSpec,
    new_labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let differs = [
        old.runtime != new.runtime,
        old.command != new.command,
        old.build != new.build,
        old.env != new.env,
        old.listen != new.listen,
        old.readiness != new.readiness,
        old.stop_grace_period != new.stop_grace_period,
        old.startup_timeout != new.startup_timeout,
        old.image != new.image,
        old.dockerfile != new.dockerfile,
        old.resources != new.resources,
        old.restart_policy != new.restart_policy,
        old.liveness != new.liveness,
        old.secret_env != new.secret_env,
        old.stop_signal != new.stop_signal,
        old.min_ready != new.min_ready,
        old.user != new.user,
        old.max_open_files != new.max_open_files,
        old.node_selector != new.node_selector,
        old.update_strategy != new.update_strategy,
    ];
    let mut changed: Vec<String> = SPEC_FIELDS
        .iter()
        .zip(differs)
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if old_labels != new_labels {
        changed.push("labels".to_owned());
    }
    changed
}

/// Sets `key` of `map` to its value in `from`, or removes it when `from` has none.
fn patch_key<V: Clone>(map: &mut BTreeMap<String, V>, from: &BTreeMap<String, V>, key: &str) {
    match from.get(key) {
        Some(value) => {
            map.insert(key.to_owned(), value.clone());
        }
        None => {
            map.remove(key);
        }
    }
}

/// Applies the fields of `new` (and `new_labels`) that `paths` name to
/// `spec` and `labels`; empty `paths`: the whole spec (labels unchanged). A
/// secret sent back masked (`********`, as the API shows it) keeps its
/// current value. Every unknown path, and a masked secret with no current
/// value, is a violation; then nothing is applied.
pub fn apply_mask(
    spec: &mut DeploymentSpec,
    labels: &mut BTreeMap<String, String>,
    mut new: DeploymentSpec,
    new_labels: &BTreeMap<String, String>,
    paths: &[String],
) -> Result<(), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    for (name, value) in new.secret_env.iter_mut() {
        if value.expose() == REDACTED {
            match spec.secret_env.get(name) {
                Some(current) => *value = current.clone(),
                None => violations.push(FieldViolation::new(
                    format!("spec.secret_env[{name}]"),
                    "is the masked value: give the secret's value (it has none yet)",
                )),
            }
        }
    }
    for path in paths {
        let known = SPEC_FIELDS.contains(&path.as_str())
            || path == "labels"
            || path
                .split_once('.')
                .is_some_and(|(field, key)| MAP_FIELDS.contains(&field) && !key.is_empty());
        if !known {
            violations.push(FieldViolation::new(
                "update_mask",
                format!(
                    "unknown path {path:?}: use a field of the spec ({}), \"labels\", or a map key such as \"env.NAME\"",
                    SPEC_FIELDS.join(", ")
                ),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let mut next = spec.clone();
    if paths.is_empty() {
        next = new;
        keep_effective_defaults(spec, &mut next);
        *spec = next;
        return Ok(());
    }
    for path in paths {
        if let Some((field, key)) = path.split_once('.') {
            match field {
                "env" => patch_key(&mut next.env, &new.env, key),
                "secret_env" => patch_key(&mut next.secret_env, &new.secret_env, key),
                "node_selector" => patch_key(&mut next.node_selector, &new.node_selector, key),
                _ => patch_key(labels, new_labels, key),
            }
            continue;
        }
        match path.as_str() {
            "runtime" => next.runtime = new.runtime,
            "command" => next.command = new.command.clone(),
            "build" => next.build = new.build.clone(),
            "env" => next.env = new.env.clone(),
            "listen" => next.listen = new.listen,
            "readiness" => next.readiness = new.readiness.clone(),
            "stop_grace_period_seconds" => next.stop_grace_period = new.stop_grace_period,
            "startup_timeout_seconds" => next.startup_timeout = new.startup_timeout,
            "image" => next.image = new.image.clone(),
            "dockerfile" => next.dockerfile = new.dockerfile.clone(),
            "resources" => next.resources = new.resources,
            "restart_policy" => next.restart_policy = new.restart_policy,
            "liveness" => next.liveness = new.liveness.clone(),
            "secret_env" => next.secret_env = new.secret_env.clone(),
            "stop_signal" => next.stop_signal = new.stop_signal.clone(),
            "min_ready_ms" => next.min_ready = new.min_ready,
            "user" => next.user = new.user.clone(),
            "max_open_files" => next.max_open_files = new.max_open_files,
            "node_selector" => next.node_selector = new.node_selector.clone(),
            "update_strategy" => next.update_strategy = new.update_strategy,
            _ => *labels = new_labels.clone(),
        }
    }
    keep_effective_defaults(spec, &mut next);
    *spec = next;
    Ok(())
}

/// A field the API shows at its effective value (`min_ready_ms`, a default
/// that depends on the readiness check) is no change when sent back as
/// shown: the spec read, edited and sent whole changes only what was edited.
fn keep_effective_defaults(current: &DeploymentSpec, next: &mut DeploymentSpec) {
    if next.min_ready != current.min_ready && next.min_ready() == current.min_ready() {
        next.min_ready = current.min_ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DeploymentSpec {
        let mut spec = DeploymentSpec::process(vec!["true".to_owned()]);
        spec.env.insert("KEEP".to_owned(), "1".to_owned());
        spec.env.insert("OLD".to_owned(), "2".to_owned());
        spec.secret_env
            .insert("TOKEN".to_owned(), Secret::from("s3cr3t"));
        spec
    }

    #[test]
    fn a_mask_changes_only_the_named_fields() {
        let mut current = spec();
        let mut labels = BTreeMap::new();
        let mut new = DeploymentSpec::process(vec!["false".to_owned()]);
        new.env.insert("NEW".to_owned(), "3".to_owned());
        let paths = vec!["env.NEW".to_owned(), "env.OLD".to_owned()];
        apply_mask(&mut current, &mut labels, new, &BTreeMap::new(), &paths).unwrap();
        assert_eq!(current.command, vec!["true"]);
        assert_eq!(
            current.env.keys().collect::<Vec<_>>(),
            vec!["KEEP", "NEW"],
            "OLD removed, NEW set, KEEP kept"
        );
        assert_eq!(current.secret_env["TOKEN"].expose(), "s3cr3t");
    }

    #[test]
    fn unknown_paths_and_masked_new_secrets_are_refused_and_change_nothing() {
        let mut current = spec();
        let before = current.clone();
        let mut labels = BTreeMap::new();
        let mut new = spec();
        new.secret_env
            .insert("OTHER".to_owned(), Secret::from(REDACTED));
        let paths = vec!["nope".to_owned(), "secret_env".to_owned()];
        let violations =
            apply_mask(&mut current, &mut labels, new, &BTreeMap::new(), &paths).unwrap_err();
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations[1].description.contains("\"nope\""));
        assert_eq!(current, before);
    }

    #[test]
    fn a_masked_secret_keeps_its_value_and_digests_tell_values_apart() {
        let mut current = spec();
        let mut labels = BTreeMap::new();
        let mut new = spec();
        new.secret_env
            .insert("TOKEN".to_owned(), Secret::from(REDACTED));
        apply_mask(&mut current, &mut labels, new, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(current.secret_env["TOKEN"].expose(), "s3cr3t");
        let id = DeploymentId::generate();
        let before = secret_digests(&id, &current.secret_env);
        current
            .secret_env
            .insert("TOKEN".to_owned(), Secret::from("other"));
        let after = secret_digests(&id, &current.secret_env);
        assert_ne!(before, after);
        assert!(!before["TOKEN"].contains("s3cr3t"));
    }

    #[test]
    fn changed_fields_name_what_differs() {
        let old = spec();
        let mut new = spec();
        new.env.remove("OLD");
        new.update_strategy = UpdateStrategy::Recreate;
        let labels = BTreeMap::from([("tier".to_owned(), "web".to_owned())]);
        assert_eq!(
            changed_fields(&old, &BTreeMap::new(), &new, &labels),
            vec!["env", "update_strategy", "labels"]
        );
        assert!(changed_fields(&old, &BTreeMap::new(), &old.clone(), &BTreeMap::new()).is_empty());
    }
}
