//! The protocol's messages as the JSON the REST endpoints send: camelCase
//! names, stages and actions as lowercase words, times in RFC 3339.

use serde_json::{Map, Value, json};
use slipway::v1 as proto;

/// `STAGE_RUNNING` → `running`: an enum value's name without its prefix.
fn name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn stage(value: i32) -> Value {
    match proto::Stage::try_from(value) {
        Ok(proto::Stage::Unspecified) | Err(_) => Value::Null,
        Ok(stage) => json!(name(stage.as_str_name(), "STAGE_")),
    }
}

pub fn time(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp
        .and_then(|timestamp| {
            chrono::DateTime::from_timestamp(
                timestamp.seconds,
                u32::try_from(timestamp.nanos).unwrap_or(0),
            )
        })
        .map_or(Value::Null, |time| {
            json!(time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        })
}

fn text(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        json!(value)
    }
}

/// A workload.
pub fn workload(workload: &proto::Workload) -> Value {
    let health = proto::Health::try_from(workload.health)
        .map(|health| name(health.as_str_name(), "HEALTH_"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let actions: Vec<String> = workload
        .allowed_actions
        .iter()
        .filter_map(|action| proto::Action::try_from(*action).ok())
        .map(|action| name(action.as_str_name(), "ACTION_"))
        .collect();
    json!({
        "id": workload.id,
        "deploymentId": workload.deployment_id,
        "stage": stage(workload.stage),
        "health": health,
        "generation": workload.generation,
        "port": (workload.port != 0).then_some(workload.port),
        "runtimeId": text(&workload.runtime_id),
        "error": text(&workload.error),
        "exitCode": workload.exit_code,
        "failedStage": stage(workload.failed_stage),
        "allowedActions": actions,
        "revision": workload.revision,
        "restartCount": workload.restart_count,
        "nextRestartAt": time(workload.next_restart_at.as_ref()),
        "warnings": workload.warnings,
        "nodeId": text(&workload.node_id),
        "pendingReason": text(&workload.pending_reason),
        "createdAt": time(workload.created_at.as_ref()),
        "updatedAt": time(workload.updated_at.as_ref()),
        "startedAt": time(workload.started_at.as_ref()),
        "stoppedAt": time(workload.stopped_at.as_ref()),
    })
}

/// A deployment, with what its spec runs (secret values are masked by the
/// server already; only their names are here).
pub fn deployment(deployment: &proto::Deployment) -> Value {
    let spec = deployment.spec.clone().unwrap_or_default();
    let runtime = proto::Runtime::try_from(spec.runtime)
        .ok()
        .filter(|runtime| *runtime != proto::Runtime::Unspecified)
        .map(|runtime| name(runtime.as_str_name(), "RUNTIME_"));
    let restart = spec.restart_policy.as_ref().map(|policy| {
        let mode = proto::restart_policy::Mode::try_from(policy.mode)
            .map(|mode| name(mode.as_str_name(), "MODE_").replace('_', "-"))
            .unwrap_or_else(|_| "never".to_owned());
        json!({ "mode": mode, "maxRestarts": policy.max_restarts })
    });
    let mut secret_names: Vec<&String> = spec.secret_env.keys().collect();
    secret_names.sort();
    json!({
        "id": deployment.id,
        "name": deployment.name,
        "health": deployment.health.as_ref().map(|health| {
            let state = proto::DeploymentHealthState::try_from(health.state)
                .map(|state| name(state.as_str_name(), "DEPLOYMENT_HEALTH_STATE_"))
                .unwrap_or_else(|_| "unknown".to_owned());
            json!({ "state": state, "wanted": health.wanted, "up": health.up, "reason": health.reason })
        }),
        "project": text(&deployment.project),
        "servicePath": deployment.service_path,
        "labels": deployment.labels,
        "spec": {
            "runtime": runtime,
            "command": spec.command,
            "build": spec.build.iter().map(|step| step.command.clone()).collect::<Vec<_>>(),
            "env": spec.env,
            "secretEnvNames": secret_names,
            "image": text(&spec.image),
            "dockerfile": text(&spec.dockerfile),
            "nodeSelector": spec.node_selector,
            "restart": restart,
        },
        "createdAt": time(deployment.created_at.as_ref()),
        "updatedAt": time(deployment.updated_at.as_ref()),
    })
}

/// A log line (or a marker standing for `dropped` lines not sent).
pub fn log_entry(entry: &proto::LogEntry) -> Value {
    let level = proto::Level::try_from(entry.level)
        .map(|level| name(level.as_str_name(), "LEVEL_"))
        .unwrap_or_else(|_| "info".to_owned());
    let stream = proto::Stream::try_from(entry.stream)
        .map(|stream| name(stream.as_str_name(), "STREAM_"))
        .unwrap_or_else(|_| "system".to_owned());
    let mut value = json!({
        "seq": entry.seq,
        "generation": entry.generation,
        "timestamp": time(entry.timestamp.as_ref()),
        "stage": stage(entry.stage),
        "level": level,
        "stream": stream,
        "message": entry.message,
        "workloadId": entry.workload_id,
    });
    if entry.dropped > 0
        && let Value::Object(map) = &mut value
    {
        map.insert("dropped".to_owned(), json!(entry.dropped));
    }
    value
}

/// An event of the event log.
pub fn event(event: &proto::Event) -> Value {
    let kind = proto::EventType::try_from(event.r#type)
        .map(|kind| name(kind.as_str_name(), "EVENT_TYPE_"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let mut map = Map::new();
    map.insert("revision".to_owned(), json!(event.revision));
    map.insert("type".to_owned(), json!(kind));
    map.insert("timestamp".to_owned(), time(event.timestamp.as_ref()));
    map.insert("deploymentId".to_owned(), text(&event.deployment_id));
    map.insert("workloadId".to_owned(), text(&event.workload_id));
    map.insert("message".to_owned(), text(&event.message));
    if let Some(snapshot) = &event.workload {
        map.insert("workload".to_owned(), workload(snapshot));
    }
    Value::Object(map)
}
