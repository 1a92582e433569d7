//! The keys on the state machine: actions only where allowed, confirmations,
//! batches, filter, views, node pause with the typed confirmation.

use ratatui::crossterm::event::KeyCode;
use slipway_sdk::proto::{EventType, Stage};

use super::{WEB, WORKER_FAILED, WORKER_STOPPED, ctrl, fixture, press, type_text};
use crate::cli::ui::{
    actions::{NodeActionKind, WorkloadAction},
    app::{Command, Mode, Update, View},
};

fn select(app: &mut crate::cli::ui::app::App, workload_id: &str) {
    press(app, KeyCode::Char('g'));
    while app.selected_workload().map(|workload| workload.id.as_str()) != Some(workload_id) {
        let before = app.selected_index();
        press(app, KeyCode::Down);
        assert_ne!(before, app.selected_index(), "{workload_id} is listed");
    }
}

#[test]
fn an_action_the_workload_does_not_allow_is_refused_without_a_confirmation() {
    let mut app = fixture(false);
    select(&mut app, WORKER_STOPPED);
    assert!(press(&mut app, KeyCode::Char('s')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    let (message, is_error) = app.message.clone().expect("a refusal");
    assert!(is_error);
    assert_eq!(message, "stop does not apply to 81bd04aa77e3 (stopped)");
}

#[test]
fn an_allowed_action_runs_only_once_confirmed() {
    let mut app = fixture(false);
    select(&mut app, WORKER_STOPPED);
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(press(&mut app, KeyCode::Char('n')).is_empty(), "n cancels");
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, KeyCode::Char('r'));
    let commands = press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        commands,
        vec![Command::Workloads {
            action: WorkloadAction::Restart,
            workload_ids: vec![WORKER_STOPPED.to_owned()],
        }]
    );
    // The operation shows until its outcome arrives; meanwhile it is not offered again.
    assert!(app.operations.contains_key(WORKER_STOPPED));
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    app.apply(Update::Done {
        target: WORKER_STOPPED.to_owned(),
        outcome: Ok("restart 81bd04aa77e3: running".to_owned()),
    });
    assert!(app.operations.is_empty());
    assert_eq!(
        app.message,
        Some(("restart 81bd04aa77e3: running".to_owned(), false))
    );
}

#[test]
fn a_batch_stop_skips_the_marked_workloads_that_do_not_allow_it() {
    let mut app = fixture(false);
    select(&mut app, WEB);
    press(&mut app, KeyCode::Char(' '));
    select(&mut app, WORKER_STOPPED);
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.marked.len(), 2);
    press(&mut app, KeyCode::Char('s'));
    let Mode::Confirm(confirmation) = app.mode.clone() else {
        panic!("a confirmation, got {:?}", app.mode);
    };
    assert!(
        confirmation
            .impact
            .iter()
            .any(|line| line.contains("Skipped") && line.contains("81bd04aa77e3")),
        "{confirmation:?}"
    );
    let commands = press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        commands,
        vec![Command::Workloads {
            action: WorkloadAction::Stop,
            workload_ids: vec![WEB.to_owned()],
        }]
    );
    assert!(app.marked.is_empty(), "marks are used up");
}

#[test]
fn delete_is_ctrl_d_and_confirmed() {
    let mut app = fixture(false);
    select(&mut app, WORKER_FAILED);
    assert!(press(&mut app, KeyCode::Char('d')).is_empty());
    assert_eq!(app.mode, Mode::Normal, "plain d does nothing");
    ctrl(&mut app, 'd');
    let commands = press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        commands,
        vec![Command::Workloads {
            action: WorkloadAction::Delete,
            workload_ids: vec![WORKER_FAILED.to_owned()],
        }]
    );
}

#[test]
fn filter_narrows_the_list_and_esc_clears_it() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "FAIL");
    press(&mut app, KeyCode::Enter);
    let shown: Vec<&str> = app
        .visible_workloads()
        .iter()
        .map(|w| w.id.as_str())
        .collect();
    assert_eq!(shown, vec![WORKER_FAILED]);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_workloads().len(), 3);
    assert!(!app.quit);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit, "q on the workloads view quits");
}

#[test]
fn detail_opens_and_closes_its_streams() {
    let mut app = fixture(false);
    select(&mut app, WEB);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::OpenDetail {
            workload_id: WEB.to_owned()
        }]
    );
    assert_eq!(app.view, View::Detail);
    // Actions apply to the detail's workload.
    press(&mut app, KeyCode::Char('s'));
    assert!(matches!(app.mode, Mode::Confirm(_)));
    press(&mut app, KeyCode::Esc);
    assert_eq!(
        press(&mut app, KeyCode::Char('q')),
        vec![Command::CloseDetail]
    );
    assert_eq!(app.view, View::Workloads);
    assert!(!app.quit);
}

#[test]
fn jump_to_an_unknown_view_is_refused() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "pods");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Workloads);
    assert!(app.message.as_ref().is_some_and(|(_, error)| *error));
}

#[test]
fn pausing_the_last_node_that_takes_work_needs_its_name_typed() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "no");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Nodes);
    // node-a is the only eligible node (node-b is paused).
    press(&mut app, KeyCode::Char('p'));
    type_text(&mut app, "node-x");
    assert!(
        press(&mut app, KeyCode::Enter).is_empty(),
        "a wrong name is refused"
    );
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, KeyCode::Char('p'));
    type_text(&mut app, "node-a");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Node {
            action: NodeActionKind::Pause,
            node: "aaaabbbbccccddddeeeeffff00001111".to_owned(),
            force: true,
            confirm: "node-a".to_owned(),
        }]
    );
    // Resume applies to the paused node only, with a y/n confirmation.
    press(&mut app, KeyCode::Char('u'));
    assert!(
        app.message
            .as_ref()
            .is_some_and(|(text, _)| text.contains("resume does not apply"))
    );
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('u'));
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        vec![Command::Node {
            action: NodeActionKind::Resume,
            node: "2222333344445555666677778888999a".to_owned(),
            force: false,
            confirm: String::new(),
        }]
    );
}

#[test]
fn events_update_the_list_and_an_older_snapshot_never_wins() {
    let mut app = fixture(false);
    let mut web = app.workloads[WEB].clone();
    web.stage = Stage::Stopping as i32;
    web.revision = 50;
    app.apply(Update::Event(super::event(
        50,
        EventType::WorkloadUpdated,
        &web,
        1,
    )));
    let mut stale = web.clone();
    stale.stage = Stage::Running as i32;
    stale.revision = 45;
    app.apply(Update::Event(super::event(
        45,
        EventType::WorkloadUpdated,
        &stale,
        1,
    )));
    assert_eq!(app.workloads[WEB].stage, Stage::Stopping as i32);
    assert_eq!(app.revision, 50);
    press(&mut app, KeyCode::Char(' '));
    app.apply(Update::Event(super::event(
        51,
        EventType::WorkloadDeleted,
        &web,
        0,
    )));
    assert!(!app.workloads.contains_key(WEB));
    assert!(app.marked.is_empty(), "a deleted workload is unmarked");
}

#[test]
fn the_selection_follows_its_workload_when_a_newer_one_appears() {
    let mut app = fixture(false);
    select(&mut app, WORKER_STOPPED);
    let mut newer = app.workloads[WEB].clone();
    newer.id = "99999999999999999999999999999999".to_owned();
    newer.created_at = Some(prost_types::Timestamp {
        seconds: super::NOW_SECONDS,
        nanos: 0,
    });
    newer.revision = 60;
    app.apply(Update::Event(super::event(
        60,
        EventType::WorkloadCreated,
        &newer,
        0,
    )));
    assert_eq!(app.visible_workloads()[0].id, newer.id, "newest first");
    assert_eq!(
        app.selected_workload().map(|workload| workload.id.as_str()),
        Some(WORKER_STOPPED)
    );
}

#[test]
fn draining_the_last_node_that_takes_work_needs_its_name_typed_and_shows_its_progress() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "no");
    press(&mut app, KeyCode::Enter);
    // node-a is the only eligible node (node-b is paused): its name is asked.
    press(&mut app, KeyCode::Char('d'));
    type_text(&mut app, "node-a");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Node {
            action: NodeActionKind::Drain,
            node: "aaaabbbbccccddddeeeeffff00001111".to_owned(),
            force: true,
            confirm: "node-a".to_owned(),
        }]
    );
    // The drain's progress shows on the node until it ends.
    app.apply(Update::Note {
        target: "aaaabbbbccccddddeeeeffff00001111".to_owned(),
        note: "1/3".to_owned(),
    });
    let operation = app
        .operations
        .get("aaaabbbbccccddddeeeeffff00001111")
        .expect("the drain under way");
    assert_eq!(operation.note.as_deref(), Some("1/3"));
    app.apply(Update::Done {
        target: "aaaabbbbccccddddeeeeffff00001111".to_owned(),
        outcome: Ok("drain op-1: drained node node-a: moved 3 workloads".to_owned()),
    });
    assert!(app.operations.is_empty());
    assert!(
        app.message
            .as_ref()
            .is_some_and(|(text, error)| text.contains("drained node node-a") && !error)
    );
}
