//! Rows to domain types and back.

use std::collections::BTreeMap;

use super::{StoreError, StoreResult, entities};
use crate::domain::{
    Deployment, DeploymentRevision, Event, EventKind, Health, LogLevel, LogLine, LogStream, Secret,
    Stage, Timestamp, Workload,
};

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

fn stage(text: &str) -> StoreResult<Stage> {
    Stage::parse(text).ok_or_else(|| corrupt("stage", text))
}

/// The deployment's row. Its spec JSON never holds the secrets (see `secrets.rs`).
pub fn deployment_row(deployment: &Deployment) -> StoreResult<entities::deployment::Model> {
    Ok(entities::deployment::Model {
        id: deployment.id.clone(),
        name: deployment.name.clone(),
        project: deployment.project.clone(),
        service_path: deployment.service_path.clone(),
        spec: serde_json::to_string(&deployment.spec).map_err(|error| corrupt("spec", error))?,
        labels: serde_json::to_string(&deployment.labels)
            .map_err(|error| corrupt("labels", error))?,
        created_at: deployment.created_at.0,
        updated_at: deployment.updated_at.0,
        revision: deployment.revision as i64,
    })
}

/// The deployment of `row`, with its secrets put back into its spec.
pub fn deployment(
    row: entities::deployment::Model,
    secrets: BTreeMap<String, Secret>,
) -> StoreResult<Deployment> {
    let mut spec: crate::domain::DeploymentSpec =
        serde_json::from_str(&row.spec).map_err(|error| corrupt("spec", error))?;
    spec.secret_env = secrets;
    Ok(Deployment {
        id: row.id,
        name: row.name,
        project: row.project,
        service_path: row.service_path,
        spec,
        labels: serde_json::from_str::<BTreeMap<String, String>>(&row.labels)
            .map_err(|error| corrupt("labels", error))?,
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
        revision: row.revision.max(1) as u64,
    })
}

pub fn workload_row(workload: &Workload) -> entities::workload::Model {
    entities::workload::Model {
        id: workload.id.clone(),
        deployment_id: workload.deployment_id.clone(),
        stage: workload.stage.as_str().to_owned(),
        health: workload.health.as_str().to_owned(),
        generation: workload.generation as i64,
        port: workload.port.map(i32::from),
        runtime_id: workload.runtime_id.clone(),
        process_start_time: workload.process_start_time.map(|ticks| ticks as i64),
        error: workload.error.clone(),
        failed_stage: workload.failed_stage.map(|stage| stage.as_str().to_owned()),
        exit_code: workload.exit_code,
        created_at: workload.created_at.0,
        updated_at: workload.updated_at.0,
        started_at: workload.started_at.map(|time| time.0),
        stopped_at: workload.stopped_at.map(|time| time.0),
        revision: workload.revision as i64,
        restart_count: workload.restart_count as i32,
        next_restart_at: workload.next_restart_at.map(|time| time.0),
        warnings: (!workload.warnings.is_empty())
            .then(|| serde_json::to_string(&workload.warnings).ok())
            .flatten(),
        node_id: workload.node_id.clone(),
        owner_epoch: workload.owner_epoch as i64,
        pending_reason: workload.pending_reason.clone(),
        spec_revision: workload.spec_revision.map(|revision| revision as i64),
    }
}

pub fn workload(row: entities::workload::Model) -> StoreResult<Workload> {
    Ok(Workload {
        id: row.id,
        deployment_id: row.deployment_id,
        stage: stage(&row.stage)?,
        health: Health::parse(&row.health).ok_or_else(|| corrupt("health", &row.health))?,
        generation: row.generation as u64,
        port: row.port.and_then(|port| u16::try_from(port).ok()),
        runtime_id: row.runtime_id,
        process_start_time: row.process_start_time.map(|ticks| ticks as u64),
        error: row.error,
        failed_stage: row.failed_stage.as_deref().map(stage).transpose()?,
        exit_code: row.exit_code,
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
        started_at: row.started_at.map(Timestamp),
        stopped_at: row.stopped_at.map(Timestamp),
        revision: row.revision as u64,
        restart_count: row.restart_count.max(0) as u32,
        next_restart_at: row.next_restart_at.map(Timestamp),
        warnings: row
            .warnings
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|error| corrupt("warnings", error))?
            .unwrap_or_default(),
        node_id: row.node_id,
        owner_epoch: row.owner_epoch.max(0) as u64,
        pending_reason: row.pending_reason,
        spec_revision: row.spec_revision.map(|revision| revision.max(0) as u64),
    })
}

pub fn log_line_row(line: &LogLine) -> entities::log_line::Model {
    entities::log_line::Model {
        workload_id: line.workload_id.clone(),
        seq: line.seq as i64,
        generation: line.generation as i64,
        ts: line.timestamp.0,
        stage: line.stage.as_str().to_owned(),
        level: line.level.as_str().to_owned(),
        stream: line.stream.as_str().to_owned(),
        message: line.message.clone(),
    }
}

pub fn log_line(row: entities::log_line::Model) -> StoreResult<LogLine> {
    Ok(LogLine {
        workload_id: row.workload_id,
        seq: row.seq as u64,
        generation: row.generation as u64,
        timestamp: Timestamp(row.ts),
        stage: stage(&row.stage)?,
        level: LogLevel::parse(&row.level).ok_or_else(|| corrupt("log level", &row.level))?,
        stream: LogStream::parse(&row.stream).ok_or_else(|| corrupt("log stream", &row.stream))?,
        message: row.message,
    })
}

pub fn event_row(event: &Event) -> StoreResult<entities::event::Model> {
    Ok(entities::event::Model {
        revision: event.revision as i64,
        ts: event.timestamp.0,
        kind: event.kind.as_str().to_owned(),
        deployment_id: event.deployment_id.clone(),
        workload_id: event.workload_id.clone(),
        workload: event
            .workload
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| corrupt("event workload", error))?,
        message: event.message.clone(),
        actor: event.actor.clone(),
    })
}

pub fn event(row: entities::event::Model) -> StoreResult<Event> {
    Ok(Event {
        revision: row.revision as u64,
        timestamp: Timestamp(row.ts),
        kind: EventKind::parse(&row.kind).ok_or_else(|| corrupt("event kind", &row.kind))?,
        deployment_id: row.deployment_id,
        workload_id: row.workload_id,
        workload: row
            .workload
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|error| corrupt("event workload", error))?,
        message: row.message,
        actor: row.actor,
    })
}

/// A revision's row: the spec's JSON holds no secret (see `secrets.rs`),
/// the digests stand for them.
pub fn revision_row(
    revision: &DeploymentRevision,
) -> StoreResult<entities::deployment_revision::Model> {
    Ok(entities::deployment_revision::Model {
        deployment_id: revision.deployment_id.clone(),
        revision: revision.revision as i64,
        spec: serde_json::to_string(&revision.spec).map_err(|error| corrupt("spec", error))?,
        secrets: revision
            .secrets
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| corrupt("revision secrets", error))?,
        labels: serde_json::to_string(&revision.labels)
            .map_err(|error| corrupt("labels", error))?,
        changed: serde_json::to_string(&revision.changed)
            .map_err(|error| corrupt("revision changes", error))?,
        actor: revision.actor.clone(),
        created_at: revision.created_at.0,
        rolled_back_from: revision.rolled_back_from.map(|from| from as i64),
    })
}

pub fn revision(row: entities::deployment_revision::Model) -> StoreResult<DeploymentRevision> {
    Ok(DeploymentRevision {
        deployment_id: row.deployment_id,
        revision: row.revision.max(0) as u64,
        spec: serde_json::from_str(&row.spec).map_err(|error| corrupt("spec", error))?,
        secrets: row
            .secrets
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|error| corrupt("revision secrets", error))?,
        labels: serde_json::from_str(&row.labels).map_err(|error| corrupt("labels", error))?,
        changed: serde_json::from_str(&row.changed)
            .map_err(|error| corrupt("revision changes", error))?,
        actor: row.actor,
        created_at: Timestamp(row.created_at),
        rolled_back_from: row.rolled_back_from.map(|from| from.max(0) as u64),
    })
}
