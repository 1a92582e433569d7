//! Pure types of Slipway: ids, stages and their transitions, specs and their
//! validation, log lines and events. No I/O.

mod event;
mod fleet;
mod health;
mod ids;
mod level;
mod lifecycle;
mod limits;
mod log;
mod node;
mod policy;
mod revision;
mod secret;
mod spec;
mod stage;
mod time;
mod user;
mod workload;

pub use event::{Event, EventKind, NewEvent, acting_as, current_actor};
pub use fleet::{
    FailurePolicy, FleetItem, FleetKind, FleetOperation, FleetParams, FleetState, ItemState,
    MaxUnavailable,
};
pub use health::{
    CheckRecord, DeploymentHealth, DeploymentHealthState, Uptime, WorkloadState, deployment_health,
};
pub use ids::{DeploymentId, IdError, NodeId, WorkloadId};
pub use level::{named_level, output_level};
pub use lifecycle::{
    Action, Admission, Condition, Goal, Operation, Verdict, admit, allowed_actions,
};
pub use limits::{
    MAX_ARG_BYTES, MAX_ARGV_ENV_BYTES, MAX_POSITION, MAX_PROJECT_LENGTH, validate_position,
    validate_project,
};
pub use log::{LogFilter, LogItem, LogLevel, LogLine, LogStream, NewLogLine};
pub use node::{Node, NodeRegistration, NodeState, Scheduling};
pub use policy::{HealthCheck, Probe, RestartMode, RestartPolicy, STOP_SIGNALS};
pub use revision::{
    DeploymentRevision, SPEC_FIELDS, UpdateStrategy, apply_mask, changed_fields, secret_digests,
};
pub use secret::{REDACTED, Secret};
pub use spec::{
    BuildStep, Deployment, DeploymentSpec, FieldViolation, Listen, Readiness, Resources,
    RuntimeKind, validate_deployment_name, validate_spec,
};
pub use stage::{Health, Stage, can_transition};
pub use time::{Timestamp, now};
pub use user::{MAX_OPEN_FILES, NameOrId, UserSpec};
pub use workload::Workload;
