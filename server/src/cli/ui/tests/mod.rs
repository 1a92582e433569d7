//! The UI's tests: each view rendered to an 80×24 `TestBackend` and compared
//! with the screen stored under `ui/snapshots/` (`SLIPWAY_UPDATE_SNAPSHOTS=1`
//! writes them anew), the keys' behaviour on the state machine, and the
//! client task against a real server that restarts.

mod keys;
mod live;
mod snapshots;

use std::time::{Duration, SystemTime};

use prost_types::Timestamp;
use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
};
use slipway_sdk::proto::{
    Action, Deployment, Event, EventType, Health, HealthCheckResult, HealthHistory, LogEntry, Node,
    NodeScheduling, NodeState, Stage, Stream, Workload,
};

use super::app::{App, Update};

/// The fixed "now" of every test screen.
const NOW_SECONDS: i64 = 1_750_000_000;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECONDS as u64)
}

fn at(seconds_ago: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: NOW_SECONDS - seconds_ago,
        nanos: 0,
    })
}

pub const WEB: &str = "3f2a9c8d1e0b44c0a1b2c3d4e5f60718";
pub const WORKER_STOPPED: &str = "81bd04aa77e34c1f9d0e1f2a3b4c5d6e";
pub const WORKER_FAILED: &str = "c0ffee00112233445566778899aabbcc";
const WEB_DEPLOYMENT: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
const WORKER_DEPLOYMENT: &str = "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2";

fn workload(id: &str, deployment: &str, stage: Stage, created_ago: i64) -> Workload {
    let allowed = match stage {
        Stage::Running => vec![Action::Stop, Action::Restart, Action::Delete],
        Stage::Pending => vec![Action::Start, Action::Delete],
        _ => vec![Action::Restart, Action::Delete],
    };
    Workload {
        id: id.to_owned(),
        deployment_id: deployment.to_owned(),
        stage: stage as i32,
        health: Health::Unknown as i32,
        generation: 1,
        allowed_actions: allowed.into_iter().map(|action| action as i32).collect(),
        created_at: at(created_ago),
        updated_at: at(created_ago),
        revision: 10,
        ..Workload::default()
    }
}

fn deployment(id: &str, name: &str, created_ago: i64) -> Deployment {
    Deployment {
        id: id.to_owned(),
        name: name.to_owned(),
        created_at: at(created_ago),
        ..Deployment::default()
    }
}

fn node(id: &str, name: &str, paused: bool) -> Node {
    Node {
        id: id.to_owned(),
        name: name.to_owned(),
        address: format!("http://10.0.0.{}:50051", name.len()),
        state: NodeState::Active as i32,
        scheduling: if paused {
            NodeScheduling::Paused as i32
        } else {
            NodeScheduling::Eligible as i32
        },
        last_heartbeat: at(2),
        capacity: 10,
        active_workloads: if paused { 0 } else { 1 },
        ..Node::default()
    }
}

fn event(revision: u64, kind: EventType, workload: &Workload, seconds_ago: i64) -> Event {
    Event {
        revision,
        timestamp: at(seconds_ago),
        r#type: kind as i32,
        deployment_id: workload.deployment_id.clone(),
        workload_id: workload.id.clone(),
        workload: Some(workload.clone()),
        message: String::new(),
        actor: String::new(),
    }
}

fn log(seq: u64, message: &str) -> LogEntry {
    LogEntry {
        seq,
        generation: 2,
        timestamp: at(60 - seq as i64),
        stage: Stage::Running as i32,
        stream: Stream::Stdout as i32,
        message: message.to_owned(),
        workload_id: WEB.to_owned(),
        ..LogEntry::default()
    }
}

/// An app that knows three workloads of two deployments, two nodes and a few events.
pub fn fixture(colour: bool) -> App {
    let mut app = App::new("unix:///srv/slipway/slipway.sock", colour, now());
    let mut web = workload(WEB, WEB_DEPLOYMENT, Stage::Running, 300);
    web.health = Health::Healthy as i32;
    web.generation = 2;
    web.port = 3100;
    web.node_id = "aaaabbbbccccddddeeeeffff00001111".to_owned();
    web.runtime_id = "41234".to_owned();
    web.started_at = at(120);
    web.restart_count = 0;
    let stopped = workload(WORKER_STOPPED, WORKER_DEPLOYMENT, Stage::Stopped, 3_600);
    let mut failed = workload(WORKER_FAILED, WORKER_DEPLOYMENT, Stage::Failed, 7_200);
    failed.error = "exited with code 1 during deploy".to_owned();
    failed.exit_code = Some(1);
    app.apply(Update::Connection(super::app::Connection::Connected));
    app.apply(Update::Snapshot {
        workloads: vec![web.clone(), stopped.clone(), failed.clone()],
        deployments: vec![
            deployment(WEB_DEPLOYMENT, "web", 400),
            deployment(WORKER_DEPLOYMENT, "worker", 8_000),
        ],
        nodes: vec![
            {
                let mut first = node("aaaabbbbccccddddeeeeffff00001111", "node-a", false);
                first.answering = true;
                first
            },
            node("2222333344445555666677778888999a", "node-b", true),
        ],
        revision: 40,
    });
    for (revision, kind, workload, ago) in [
        (41, EventType::WorkloadUpdated, &failed, 90),
        (42, EventType::WorkloadUpdated, &stopped, 80),
        (43, EventType::WorkloadUpdated, &web, 70),
    ] {
        app.apply(Update::Event(event(revision, kind, workload, ago)));
    }
    app
}

/// Adds the web workload's history and log to an app whose detail view shows it.
pub fn with_detail_streams(app: &mut App) {
    let mut step = workload(WEB, WEB_DEPLOYMENT, Stage::Deploy, 300);
    step.generation = 2;
    for (revision, stage, health, ago) in [
        (30, Stage::Deploy, Health::Unknown, 130),
        (31, Stage::Running, Health::Unknown, 120),
        (35, Stage::Running, Health::Unhealthy, 100),
        (36, Stage::Running, Health::Healthy, 95),
    ] {
        step.stage = stage as i32;
        step.health = health as i32;
        app.apply(Update::History {
            workload_id: WEB.to_owned(),
            event: event(revision, EventType::WorkloadUpdated, &step, ago),
        });
    }
    // Liveness checks, newest first: two passed after one that failed.
    let checks = [
        (true, 4, ""),
        (true, 9, ""),
        (false, 14, "GET /health: status 503"),
    ]
    .into_iter()
    .map(|(passed, ago, reason)| HealthCheckResult {
        checked_at: at(ago),
        passed,
        response_time_us: 1500,
        reason: reason.to_owned(),
        generation: 2,
    })
    .collect();
    app.apply(Update::Checks {
        workload_id: WEB.to_owned(),
        history: HealthHistory {
            workload_id: WEB.to_owned(),
            checks,
            since: at(3600),
            total_checks: 120,
            passed_checks: 90,
            uptime: Some(0.75),
            mean_response_time_us: 1500,
            health: Health::Healthy as i32,
        },
    });
    for (seq, line) in [
        (1, "listening on 127.0.0.1:3100"),
        (2, "GET /health 200"),
        (3, "\u{1b}[31mWARN slow request\u{1b}[0m"),
    ] {
        app.apply(Update::Log {
            workload_id: WEB.to_owned(),
            entry: log(seq, line),
        });
    }
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<super::app::Command> {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn type_text(app: &mut App, text: &str) {
    for character in text.chars() {
        assert!(press(app, KeyCode::Char(character)).is_empty());
    }
}

pub fn ctrl(app: &mut App, character: char) -> Vec<super::app::Command> {
    app.handle_key(KeyEvent::new(
        KeyCode::Char(character),
        KeyModifiers::CONTROL,
    ))
}

/// The app drawn on an 80×24 test terminal.
pub fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    terminal
        .draw(|frame| super::render::draw(frame, app))
        .expect("draw");
    terminal
}

/// The screen as text: one line per row, trailing spaces cut.
pub fn screen(app: &App) -> String {
    let terminal = draw(app);
    let buffer = terminal.backend().buffer();
    let mut lines = Vec::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        lines.push(line.trim_end().to_owned());
    }
    lines.join("\n") + "\n"
}
