//! Each view at 80×24, compared with the screen stored in `ui/snapshots/`.

use std::path::PathBuf;

use ratatui::crossterm::event::KeyCode;

use super::{WEB, WORKER_STOPPED, ctrl, fixture, press, screen, type_text, with_detail_streams};
use crate::cli::ui::app::{App, Connection, Update};

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/cli/ui/snapshots")
        .join(format!("{name}.txt"))
}

/// Compares the app's screen with the stored one (writes it with
/// `SLIPWAY_UPDATE_SNAPSHOTS=1`).
fn assert_screen(name: &str, app: &App) {
    let actual = screen(app);
    let path = snapshot_path(name);
    if std::env::var_os("SLIPWAY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "no snapshot {} ({error}); the screen is:\n{actual}",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "screen {name} differs from {}:\n{actual}",
        path.display()
    );
}

#[test]
fn workloads_view_shows_marks_selection_and_an_operation_inline() {
    let mut app = fixture(false);
    // Restart the failed workload (the oldest, at the bottom), then mark the
    // web workload (at the top; the cursor moves on).
    press(&mut app, KeyCode::Char('G'));
    press(&mut app, KeyCode::Char('r'));
    press(&mut app, KeyCode::Char('y'));
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char(' '));
    app.apply(Update::Progress {
        target: super::WORKER_FAILED.to_owned(),
        stage: slipway_sdk::proto::Stage::Build,
    });
    assert_screen("workloads", &app);
}

#[test]
fn deployments_view_counts_running_workloads() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "dep");
    press(&mut app, KeyCode::Enter);
    assert_screen("deployments", &app);
}

#[test]
fn nodes_view_shows_state_load_and_node_keys() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "nodes");
    press(&mut app, KeyCode::Enter);
    assert_screen("nodes", &app);
}

#[test]
fn events_view_lists_newest_first() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(':'));
    type_text(&mut app, "e");
    press(&mut app, KeyCode::Enter);
    assert_screen("events", &app);
}

#[test]
fn detail_view_shows_fields_history_and_the_log_tail() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char('l'));
    with_detail_streams(&mut app);
    assert_screen("detail", &app);
}

#[test]
fn stop_confirmation_states_the_impact() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char('s'));
    assert_screen("confirm_stop", &app);
}

#[test]
fn batch_delete_confirmation_lists_the_workloads() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    ctrl(&mut app, 'd');
    assert_screen("confirm_batch_delete", &app);
}

#[test]
fn help_lists_the_keys() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char('?'));
    assert_screen("help", &app);
}

#[test]
fn filtered_view_while_disconnected_says_so() {
    let mut app = fixture(false);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "worker");
    app.apply(Update::Connection(Connection::Disconnected {
        reason: "the event stream broke: transport error".to_owned(),
        attempt: 3,
    }));
    assert_screen("disconnected_filtered", &app);
    assert!(
        app.visible_workloads()
            .iter()
            .all(|workload| workload.id != WEB)
    );
    assert!(
        app.visible_workloads()
            .iter()
            .any(|workload| workload.id == WORKER_STOPPED)
    );
}

#[test]
fn no_colour_draws_no_colour() {
    use ratatui::style::Color;
    let coloured = |app: &App| {
        let terminal = super::draw(app);
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|cell| cell.fg != Color::Reset || cell.bg != Color::Reset)
    };
    let mut plain = fixture(false);
    let mut colour = fixture(true);
    assert!(!coloured(&plain), "NO_COLOR: no cell has a colour");
    assert!(coloured(&colour), "with colour, stages are coloured");
    press(&mut plain, KeyCode::Char('l'));
    press(&mut colour, KeyCode::Char('l'));
    with_detail_streams(&mut plain);
    assert!(!coloured(&plain), "NO_COLOR: the detail view has no colour");
}

#[test]
fn every_view_draws_at_any_size() {
    use ratatui::{Terminal, backend::TestBackend};
    let mut app = fixture(true);
    press(&mut app, KeyCode::Char('l'));
    with_detail_streams(&mut app);
    let views: [&[KeyCode]; 7] = [
        &[KeyCode::Char('q')],
        &[KeyCode::Char(':'), KeyCode::Char('d'), KeyCode::Enter],
        &[KeyCode::Char(':'), KeyCode::Char('n'), KeyCode::Enter],
        &[KeyCode::Char(':'), KeyCode::Char('e'), KeyCode::Enter],
        &[
            KeyCode::Char(':'),
            KeyCode::Char('w'),
            KeyCode::Enter,
            KeyCode::Enter,
        ],
        &[KeyCode::Char('s')],
        &[KeyCode::Char('?')],
    ];
    for keys in views {
        for key in keys {
            press(&mut app, *key);
        }
        for (width, height) in [(1, 1), (12, 3), (40, 10), (80, 24), (200, 60)] {
            let mut terminal =
                Terminal::new(TestBackend::new(width, height)).expect("test terminal");
            terminal
                .draw(|frame| crate::cli::ui::render::draw(frame, &app))
                .expect("draw");
        }
    }
}
