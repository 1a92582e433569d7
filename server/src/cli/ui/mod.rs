//! `slipway ui`: a terminal UI on the SDK's calls and streams, in the spirit
//! of k9s and lazydocker. The state machine ([`app::App`], keys in
//! `keys.rs`) knows nothing of the terminal or the network; `render.rs` and
//! `views.rs` draw it; `client.rs` is the one task that talks to the server.

mod actions;
mod app;
mod client;
mod keys;
mod render;
mod views;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

use ratatui::crossterm::event::{self, Event as TerminalEvent, KeyEventKind};
use slipway_sdk::ClientBuilder;
use tokio::sync::mpsc;

use self::app::App;
use super::error::{CliError, EXIT_OK};

/// Runs the UI until the user quits; `server` is shown in the header.
pub async fn run(builder: ClientBuilder, server: String) -> Result<u8, CliError> {
    let colour = std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let mut app = App::new(server, colour, SystemTime::now());
    let mut terminal = ratatui::try_init().map_err(|error| CliError::Failed {
        message: format!("cannot set up the terminal: {error}"),
    })?;
    let (update_sender, mut updates) = mpsc::channel(1024);
    let (command_sender, commands) = mpsc::unbounded_channel();
    let client_task = tokio::spawn(client::run(builder, update_sender, commands));
    let (key_sender, mut keys) = mpsc::unbounded_channel();
    // Terminal input blocks: read it on a thread of its own, checking now and
    // then whether the UI is gone.
    let input = tokio::task::spawn_blocking(move || {
        while !key_sender.is_closed() {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(event) => {
                        if key_sender.send(event).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let outcome = loop {
        if let Err(error) = terminal.draw(|frame| render::draw(frame, &app)) {
            break Err(CliError::Failed {
                message: format!("cannot draw: {error}"),
            });
        }
        tokio::select! {
            update = updates.recv() => match update {
                Some(update) => {
                    app.apply(update);
                    // Take what else is waiting before drawing again.
                    while let Ok(update) = updates.try_recv() {
                        app.apply(update);
                    }
                }
                None => break Err(CliError::Failed { message: "the client task ended".to_owned() }),
            },
            key = keys.recv() => match key {
                Some(TerminalEvent::Key(key)) if key.kind == KeyEventKind::Press => {
                    for command in app.handle_key(key) {
                        let _ = command_sender.send(command);
                    }
                }
                Some(_) => {}
                None => break Err(CliError::Failed { message: "the terminal input ended".to_owned() }),
            },
            _ = clock.tick() => app.now = SystemTime::now(),
        }
        if app.quit {
            break Ok(EXIT_OK);
        }
    };
    ratatui::restore();
    drop(keys);
    drop(command_sender);
    client_task.abort();
    let _ = input.await;
    outcome
}
