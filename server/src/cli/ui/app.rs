//! The UI's state: what the server said (workloads, deployments, nodes,
//! events), what the user looks at (view, selection, filter, marks) and what
//! is under way (confirmations, operations). It changes only through
//! [`App::apply`] (news from the client task) and [`App::handle_key`] (in
//! `keys.rs`); it does no I/O and draws nothing, so tests drive it directly.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::SystemTime,
};

use slipway_sdk::proto::{
    Deployment, Event, EventType, HealthHistory, LogEntry, Node, Stage, Workload,
};

use super::actions::{NodeActionKind, WorkloadAction};

/// How many events the events view keeps.
const EVENTS_KEPT: usize = 500;
/// How many log lines the detail view keeps.
const LOG_LINES_KEPT: usize = 1000;

/// The lists the UI shows, and the detail of one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    Workloads,
    Deployments,
    Nodes,
    Events,
    Detail,
}

impl View {
    /// The views `:` jumps to, by name (a unique prefix does).
    pub const NAMED: [(&'static str, View); 4] = [
        ("workloads", View::Workloads),
        ("deployments", View::Deployments),
        ("nodes", View::Nodes),
        ("events", View::Events),
    ];

    pub fn name(self) -> &'static str {
        match self {
            View::Workloads => "workloads",
            View::Deployments => "deployments",
            View::Nodes => "nodes",
            View::Events => "events",
            View::Detail => "detail",
        }
    }
}

/// The link to the server, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected,
    /// The watch broke; the client task retries (`attempt` so far).
    Disconnected {
        reason: String,
        attempt: u32,
    },
}

/// What the client task does for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run `action` on each workload (each allows it).
    Workloads {
        action: WorkloadAction,
        workload_ids: Vec<String>,
    },
    /// Run a node control; `confirm` is the typed name when `force` is set.
    Node {
        action: NodeActionKind,
        node: String,
        force: bool,
        confirm: String,
    },
    /// Follow this workload's log and history (replacing any other).
    OpenDetail { workload_id: String },
    /// Stop following the detail's streams.
    CloseDetail,
}

/// News from the client task.
#[derive(Debug, Clone)]
pub enum Update {
    Connection(Connection),
    /// Everything as listed at `revision` (after a (re)connect without a resumable watch).
    Snapshot {
        workloads: Vec<Workload>,
        deployments: Vec<Deployment>,
        nodes: Vec<Node>,
        revision: u64,
    },
    Event(Event),
    Deployment(Box<Deployment>),
    Nodes(Vec<Node>),
    /// A line of the detail workload's log.
    Log {
        workload_id: String,
        entry: LogEntry,
    },
    /// An event of the detail workload's history.
    History {
        workload_id: String,
        event: Event,
    },
    /// The detail workload's liveness checks of the last hour, as last read.
    Checks {
        workload_id: String,
        history: HealthHistory,
    },
    /// An operation's workload (or node) reached `stage`.
    Progress {
        target: String,
        stage: Stage,
    },
    /// How far a fleet operation acting on `target` (a node) got.
    Note {
        target: String,
        note: String,
    },
    /// An operation ended: a sentence saying how.
    Done {
        target: String,
        outcome: Result<String, String>,
    },
}

/// A question the user answers before an action runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub title: String,
    /// What will happen, one sentence a line.
    pub impact: Vec<String>,
    /// The text the user must type (a node's name), when y/n is not enough.
    pub typed: Option<String>,
    pub input: String,
    pub command: Command,
}

/// Where keys go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing a filter after `/`.
    Filter,
    /// Typing a view name after `:`.
    Jump(String),
    Help,
    Confirm(Confirmation),
}

/// An operation under way, shown inline on its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub verb: &'static str,
    /// The last stage its progress reported.
    pub stage: Option<Stage>,
    /// How far a fleet operation (a drain) got, as it says.
    pub note: Option<String>,
}

/// One step of a workload's history: a stage or health it entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    pub revision: u64,
    pub at: Option<prost_types::Timestamp>,
    pub generation: u64,
    pub stage: i32,
    pub health: i32,
}

/// The workload the detail view shows, its log tail and history.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub workload_id: String,
    pub logs: VecDeque<LogEntry>,
    pub history: Vec<HistoryPoint>,
    /// Its liveness checks of the last hour, once read.
    pub checks: Option<HealthHistory>,
}

/// The whole state of the UI.
#[derive(Debug)]
pub struct App {
    /// The server, as the header shows it.
    pub server: String,
    /// Colours (off with `NO_COLOR`).
    pub colour: bool,
    /// The time ages are measured against (fixed in tests).
    pub now: SystemTime,
    pub connection: Connection,
    /// The last event revision seen.
    pub revision: u64,
    pub workloads: BTreeMap<String, Workload>,
    pub deployments: BTreeMap<String, Deployment>,
    pub nodes: Vec<Node>,
    pub events: VecDeque<Event>,
    pub view: View,
    /// The list view the detail view returns to.
    pub list_view: View,
    pub mode: Mode,
    /// The filter of the current view (`/`), case-insensitive.
    pub filter: String,
    /// The selected row of each list view.
    pub cursor: BTreeMap<View, usize>,
    /// Workloads marked with space for a batch action.
    pub marked: BTreeSet<String>,
    pub detail: Option<Detail>,
    /// Operations under way, by workload id or node id.
    pub operations: BTreeMap<String, Operation>,
    /// The last outcome or refusal, and whether it is an error.
    pub message: Option<(String, bool)>,
    pub quit: bool,
}

impl App {
    pub fn new(server: impl Into<String>, colour: bool, now: SystemTime) -> App {
        App {
            server: server.into(),
            colour,
            now,
            connection: Connection::Connecting,
            revision: 0,
            workloads: BTreeMap::new(),
            deployments: BTreeMap::new(),
            nodes: Vec::new(),
            events: VecDeque::new(),
            view: View::Workloads,
            list_view: View::Workloads,
            mode: Mode::Normal,
            filter: String::new(),
            cursor: BTreeMap::new(),
            marked: BTreeSet::new(),
            detail: None,
            operations: BTreeMap::new(),
            message: None,
            quit: false,
        }
    }

    /// Takes in news from the client task. The selected workload stays
    /// selected when rows come and go around it.
    pub fn apply(&mut self, update: Update) {
        let anchor = self.workload_under_cursor();
        self.apply_update(update);
        if let Some(id) = anchor {
            if let Some(index) = self
                .visible_workloads()
                .iter()
                .position(|workload| workload.id == id)
            {
                self.cursor.insert(View::Workloads, index);
            }
        }
    }

    /// The id of the workloads view's selected row, whichever view shows.
    fn workload_under_cursor(&self) -> Option<String> {
        let rows = self.visible_workloads();
        let cursor = self.cursor.get(&View::Workloads).copied().unwrap_or(0);
        rows.get(cursor.min(rows.len().saturating_sub(1)))
            .map(|workload| workload.id.clone())
    }

    fn apply_update(&mut self, update: Update) {
        match update {
            Update::Connection(connection) => self.connection = connection,
            Update::Snapshot {
                workloads,
                deployments,
                nodes,
                revision,
            } => {
                self.workloads = workloads
                    .into_iter()
                    .map(|workload| (workload.id.clone(), workload))
                    .collect();
                self.deployments = deployments
                    .into_iter()
                    .map(|deployment| (deployment.id.clone(), deployment))
                    .collect();
                self.nodes = nodes;
                self.revision = revision;
                let workloads = &self.workloads;
                self.marked.retain(|id| workloads.contains_key(id));
            }
            Update::Event(event) => self.apply_event(event),
            Update::Deployment(deployment) => {
                self.deployments.insert(deployment.id.clone(), *deployment);
            }
            Update::Nodes(nodes) => self.nodes = nodes,
            Update::Log { workload_id, entry } => {
                if let Some(detail) = self.detail_of(&workload_id) {
                    detail.logs.push_back(entry);
                    if detail.logs.len() > LOG_LINES_KEPT {
                        detail.logs.pop_front();
                    }
                }
            }
            Update::History { workload_id, event } => {
                if let (Some(detail), Some(workload)) =
                    (self.detail_of(&workload_id), event.workload.as_ref())
                {
                    record_history(detail, &event, workload);
                }
            }
            Update::Checks {
                workload_id,
                history,
            } => {
                if let Some(detail) = self.detail_of(&workload_id) {
                    detail.checks = Some(history);
                }
            }
            Update::Progress { target, stage } => {
                if let Some(operation) = self.operations.get_mut(&target) {
                    operation.stage = Some(stage);
                }
            }
            Update::Note { target, note } => {
                if let Some(operation) = self.operations.get_mut(&target) {
                    operation.note = Some(note);
                }
            }
            Update::Done { target, outcome } => {
                self.operations.remove(&target);
                self.message = Some(match outcome {
                    Ok(text) => (text, false),
                    Err(text) => (text, true),
                });
            }
        }
    }

    fn apply_event(&mut self, event: Event) {
        self.revision = self.revision.max(event.revision);
        let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
        match kind {
            EventType::Bookmark | EventType::Unspecified => return,
            EventType::WorkloadCreated | EventType::WorkloadUpdated => {
                if let Some(workload) = &event.workload {
                    let newer = self
                        .workloads
                        .get(&workload.id)
                        .is_none_or(|known| known.revision <= workload.revision);
                    if newer {
                        self.workloads.insert(workload.id.clone(), workload.clone());
                    }
                }
            }
            EventType::WorkloadDeleted => {
                self.workloads.remove(&event.workload_id);
                self.marked.remove(&event.workload_id);
            }
            EventType::DeploymentDeleted => {
                self.deployments.remove(&event.deployment_id);
            }
            EventType::DeploymentCreated | EventType::DeploymentUpdated => {}
        }
        self.events.push_back(event);
        if self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
    }

    fn detail_of(&mut self, workload_id: &str) -> Option<&mut Detail> {
        self.detail
            .as_mut()
            .filter(|detail| detail.workload_id == workload_id)
    }

    /// The deployment's name, or its short id when unknown.
    pub fn deployment_name(&self, deployment_id: &str) -> String {
        self.deployments.get(deployment_id).map_or_else(
            || super::super::output::short_id(deployment_id).to_owned(),
            |deployment| deployment.name.clone(),
        )
    }

    fn matches(&self, fields: &[&str]) -> bool {
        let filter = self.filter.to_lowercase();
        filter.is_empty()
            || fields
                .iter()
                .any(|field| field.to_lowercase().contains(&filter))
    }

    /// The workloads the list shows, newest first (as `docker ps`), filtered.
    pub fn visible_workloads(&self) -> Vec<&Workload> {
        let mut rows: Vec<&Workload> = self
            .workloads
            .values()
            .filter(|workload| {
                let stage = Stage::try_from(workload.stage).map_or("", Stage::label);
                self.matches(&[
                    &workload.id,
                    &self.deployment_name(&workload.deployment_id),
                    stage,
                ])
            })
            .collect();
        rows.sort_by_key(|workload| {
            std::cmp::Reverse((
                workload.created_at.map(|time| (time.seconds, time.nanos)),
                workload.id.clone(),
            ))
        });
        rows
    }

    /// The deployments the list shows, by name, filtered.
    pub fn visible_deployments(&self) -> Vec<&Deployment> {
        let mut rows: Vec<&Deployment> = self
            .deployments
            .values()
            .filter(|deployment| {
                self.matches(&[&deployment.name, &deployment.id, &deployment.project])
            })
            .collect();
        rows.sort_by(|left, right| left.name.cmp(&right.name));
        rows
    }

    /// The nodes the list shows, as the server ordered them, filtered.
    pub fn visible_nodes(&self) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|node| self.matches(&[&node.name, &node.id, &node.address]))
            .collect()
    }

    /// The events the list shows, newest first, filtered.
    pub fn visible_events(&self) -> Vec<&Event> {
        self.events
            .iter()
            .rev()
            .filter(|event| {
                let kind = EventType::try_from(event.r#type).map_or("", |kind| kind.as_str_name());
                self.matches(&[
                    &event.workload_id,
                    &self.deployment_name(&event.deployment_id),
                    kind,
                    &event.message,
                ])
            })
            .collect()
    }

    /// How many rows the current view has.
    pub fn row_count(&self) -> usize {
        match self.view {
            View::Workloads => self.visible_workloads().len(),
            View::Deployments => self.visible_deployments().len(),
            View::Nodes => self.visible_nodes().len(),
            View::Events => self.visible_events().len(),
            View::Detail => 0,
        }
    }

    /// The selected row of the current view (clamped to the rows there are).
    pub fn selected_index(&self) -> usize {
        let rows = self.row_count();
        let cursor = self.cursor.get(&self.view).copied().unwrap_or(0);
        cursor.min(rows.saturating_sub(1))
    }

    /// The workload under the cursor in the workloads view.
    pub fn selected_workload(&self) -> Option<&Workload> {
        self.visible_workloads().get(self.selected_index()).copied()
    }

    /// The node under the cursor in the nodes view.
    pub fn selected_node(&self) -> Option<&Node> {
        self.visible_nodes().get(self.selected_index()).copied()
    }
}

/// Adds the point when the event moved the workload to another stage or health.
fn record_history(detail: &mut Detail, event: &Event, workload: &Workload) {
    if detail
        .history
        .iter()
        .any(|point| point.revision == event.revision)
    {
        return;
    }
    let changed = detail.history.last().is_none_or(|last| {
        last.stage != workload.stage
            || last.health != workload.health
            || last.generation != workload.generation
    });
    if changed {
        detail.history.push(HistoryPoint {
            revision: event.revision,
            at: event.timestamp,
            generation: workload.generation,
            stage: workload.stage,
            health: workload.health,
        });
    }
}
