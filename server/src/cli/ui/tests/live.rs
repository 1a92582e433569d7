//! The client task against a real server, without a terminal: it lists,
//! follows the events, runs a confirmed stop, and after the server restarts it
//! shows the disconnection, reconnects and resumes from its last revision.

use std::time::SystemTime;

use ratatui::crossterm::event::KeyCode;
use slipway_sdk::{Client, DeploymentBuilder, proto::Stage};
use slipway_testkit::{PATIENCE, TestServer};
use tokio::sync::mpsc;

use super::press;
use crate::cli::ui::{
    app::{App, Command, Connection, Update},
    client,
};

/// Applies updates to `app` until `done` holds; fails after the testkit's patience.
/// Returns every update applied, for the test to look at.
async fn drive(
    app: &mut App,
    updates: &mut mpsc::Receiver<Update>,
    what: &str,
    mut done: impl FnMut(&App) -> bool,
) -> Vec<Update> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done(app) {
        match tokio::time::timeout_at(deadline, updates.recv()).await {
            Ok(Some(update)) => {
                seen.push(update.clone());
                app.apply(update);
            }
            Ok(None) => panic!("the client task ended while waiting: {what}"),
            Err(_) => panic!("gave up waiting: {what}; the app: {app:?}"),
        }
    }
    seen
}

fn stage_of(app: &App, workload_id: &str) -> Option<Stage> {
    app.workloads
        .get(workload_id)
        .map(|workload| workload.stage())
}

fn send_all(commands: &mpsc::UnboundedSender<Command>, issued: Vec<Command>) {
    for command in issued {
        commands
            .send(command)
            .expect("the client task takes commands");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_task_follows_events_and_resumes_after_a_server_restart() {
    let server = TestServer::start().await;
    // The local socket keeps its path across restarts (and needs no token).
    let socket = server.socket_path().expect("the server's socket");
    let builder = Client::builder(format!("unix://{}", socket.display()));
    server.service_dir("ui-live");
    let spec = |name: &str| {
        DeploymentBuilder::new(name)
            .service_path("ui-live")
            .command(["sleep", "300"])
    };
    let (_, first) = server.deploy(spec("ui-live")).await;
    server.start_workload(&first.id).await;

    let (update_sender, mut updates) = mpsc::channel(1024);
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let task = tokio::spawn(client::run(builder, update_sender, command_receiver));
    let mut app = App::new("test", false, SystemTime::now());
    let mut seen = drive(
        &mut app,
        &mut updates,
        "the running workload listed",
        |app| {
            app.connection == Connection::Connected
                && stage_of(app, &first.id) == Some(Stage::Running)
        },
    )
    .await;

    // Stop it through the UI: key, confirmation, progress, outcome.
    press(&mut app, KeyCode::Char('s'));
    let issued = press(&mut app, KeyCode::Char('y'));
    assert_eq!(issued.len(), 1, "one stop command: {issued:?}");
    send_all(&commands, issued);
    seen.extend(
        drive(&mut app, &mut updates, "the stop done", |app| {
            app.operations.is_empty() && app.message.is_some()
        })
        .await,
    );
    assert_eq!(
        app.message,
        Some((format!("stop {}: stopped", &first.id[..12]), false))
    );
    seen.extend(
        drive(
            &mut app,
            &mut updates,
            "the stopped stage from the events",
            |app| stage_of(app, &first.id) == Some(Stage::Stopped),
        )
        .await,
    );
    let revision_before = app.revision;
    assert!(revision_before > 0);

    // The server goes away and comes back on the same data: the UI says it is
    // disconnected, reconnects, and resumes from its last revision.
    let server = server.restart().await;
    seen.extend(
        drive(&mut app, &mut updates, "the disconnection shown", |app| {
            matches!(app.connection, Connection::Disconnected { .. })
        })
        .await,
    );
    // Made while the UI reconnects (or right after): it arrives as an event.
    let (_, second) = server.deploy(spec("ui-live-again")).await;
    seen.extend(
        drive(
            &mut app,
            &mut updates,
            "reconnected, and the new workload seen",
            |app| {
                app.connection == Connection::Connected
                    && stage_of(app, &second.id) == Some(Stage::Pending)
            },
        )
        .await,
    );
    let snapshots = seen
        .iter()
        .filter(|update| matches!(update, Update::Snapshot { .. }))
        .count();
    assert_eq!(
        snapshots, 1,
        "resumed from revision {revision_before}, not listed again"
    );
    assert!(app.revision > revision_before);

    // Commands work on the new link: start the new workload (the newest, at
    // the top) through the UI.
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(
        app.selected_workload().map(|w| w.id.clone()),
        Some(second.id.clone())
    );
    press(&mut app, KeyCode::Char('u'));
    send_all(&commands, press(&mut app, KeyCode::Char('y')));
    drive(
        &mut app,
        &mut updates,
        "the started workload running",
        |app| app.operations.is_empty() && stage_of(app, &second.id) == Some(Stage::Running),
    )
    .await;
    let on_server = server
        .client
        .get_workload(&second.id)
        .await
        .expect("workload");
    assert_eq!(on_server.stage(), Stage::Running);

    drop(commands);
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the client task ends with the UI")
        .expect("the client task ran");
    server.stop_workload(&second.id).await;
    server.stop().await;
}
