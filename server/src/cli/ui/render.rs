//! Draws an [`App`]: a header (server, view, revision, connection), the view's
//! body, a line for outcomes and operations, and a line of keys or the prompt.
//! Fits 80×24; without colour (`NO_COLOR`) only reverse video marks the
//! selection.

use std::time::{Duration, SystemTime};

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Wrap},
};
use slipway_sdk::proto::{Health, Stage};

use super::{
    actions::NODE_ACTIONS,
    app::{App, Connection, Mode, View},
    views,
};

/// Styles, or none of them without colour.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub colour: bool,
}

impl Theme {
    fn paint(self, colour: Color) -> Style {
        if self.colour {
            Style::default().fg(colour)
        } else {
            Style::default()
        }
    }

    pub fn stage(self, stage: i32) -> Style {
        match Stage::try_from(stage).unwrap_or(Stage::Unspecified) {
            Stage::Running => self.paint(Color::Green),
            Stage::Failed => self.paint(Color::Red),
            Stage::Stopped | Stage::Unspecified => self.paint(Color::DarkGray),
            _ => self.paint(Color::Yellow),
        }
    }

    pub fn health(self, health: i32) -> Style {
        match Health::try_from(health).unwrap_or(Health::Unknown) {
            Health::Healthy => self.paint(Color::Green),
            Health::Unhealthy => self.paint(Color::Red),
            _ => Style::default(),
        }
    }

    pub fn deployment(self, state: slipway_server::domain::DeploymentHealthState) -> Style {
        match state {
            slipway_server::domain::DeploymentHealthState::Healthy => self.paint(Color::Green),
            slipway_server::domain::DeploymentHealthState::Degraded => self.paint(Color::Yellow),
            slipway_server::domain::DeploymentHealthState::Unavailable => self.paint(Color::Red),
        }
    }

    pub fn error(self) -> Style {
        self.paint(Color::Red)
    }

    pub fn dim(self) -> Style {
        self.paint(Color::DarkGray)
    }

    pub fn heading(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let theme = Theme { colour: app.colour };
    let [header, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_line(app, theme)), header);
    match app.view {
        View::Workloads => views::workloads(frame, body, app, theme),
        View::Deployments => views::deployments(frame, body, app, theme),
        View::Nodes => views::nodes(frame, body, app, theme),
        View::Events => views::events(frame, body, app, theme),
        View::Detail => views::detail(frame, body, app, theme),
    }
    frame.render_widget(Paragraph::new(status_line(app, theme)), status);
    frame.render_widget(Paragraph::new(keys_line(app)), keys);
    match &app.mode {
        Mode::Help => help(frame, body),
        Mode::Confirm(confirmation) => {
            let mut lines: Vec<Line> = vec![
                Line::styled(confirmation.title.clone(), theme.heading()),
                Line::raw(""),
            ];
            lines.extend(
                confirmation
                    .impact
                    .iter()
                    .map(|text| Line::raw(text.clone())),
            );
            lines.push(Line::raw(""));
            match &confirmation.typed {
                Some(expected) => {
                    lines.push(Line::raw(format!(
                        "Type {expected} and press enter (esc: cancel):"
                    )));
                    lines.push(Line::raw(format!("> {}", confirmation.input)));
                }
                None => lines.push(Line::raw("y: confirm    n/esc: cancel")),
            }
            popup(frame, body, "confirm", lines);
        }
        _ => {}
    }
}

fn header_line(app: &App, theme: Theme) -> Line<'static> {
    let connection = match &app.connection {
        Connection::Connecting => Span::styled("connecting", theme.dim()),
        Connection::Connected => Span::raw("connected"),
        Connection::Disconnected { attempt, .. } => Span::styled(
            format!("disconnected — reconnecting (attempt {attempt})"),
            theme.error(),
        ),
    };
    let view = match app.view {
        View::Detail => "detail".to_owned(),
        view => format!("{} ({})", view.name(), app.row_count()),
    };
    Line::from(vec![
        Span::styled(" slipway ", theme.heading()),
        Span::raw(format!("{view} · rev {} · ", app.revision)),
        connection,
        Span::styled(format!(" · {}", app.server), theme.dim()),
    ])
}

fn status_line(app: &App, theme: Theme) -> Line<'static> {
    if let Connection::Disconnected { reason, .. } = &app.connection {
        return Line::styled(format!(" {reason}"), theme.error());
    }
    if !app.operations.is_empty() {
        let running: Vec<String> = app
            .operations
            .iter()
            .map(|(target, operation)| {
                let stage = match (&operation.note, operation.stage) {
                    (Some(note), _) => note.clone(),
                    (None, Some(stage)) => stage.label().to_owned(),
                    (None, None) => "accepted".to_owned(),
                };
                format!(
                    "{} {}: {stage}",
                    operation.verb,
                    crate::cli::output::short_id(target)
                )
            })
            .collect();
        return Line::raw(format!(" under way: {}", running.join(" · ")));
    }
    match &app.message {
        Some((text, true)) => Line::styled(format!(" {text}"), theme.error()),
        Some((text, false)) => Line::raw(format!(" {text}")),
        None if !app.marked.is_empty() => {
            Line::raw(format!(" {} marked (space: mark/unmark)", app.marked.len()))
        }
        None => Line::raw(""),
    }
}

fn keys_line(app: &App) -> Line<'static> {
    let text = match &app.mode {
        Mode::Filter => format!("/{}▏ (enter: keep, esc: clear)", app.filter),
        Mode::Jump(text) => format!(":{text}▏ (workloads, deployments, nodes, events)"),
        Mode::Help => "any key: close help".to_owned(),
        Mode::Confirm(_) => "confirm or cancel".to_owned(),
        Mode::Normal => {
            let filter = if app.filter.is_empty() {
                String::new()
            } else {
                format!("[/{}] ", app.filter)
            };
            let keys = match app.view {
                View::Workloads => {
                    "enter/l logs s stop r restart u start ^d delete space mark".to_owned()
                }
                View::Detail => "s stop r restart u start ^d delete q back".to_owned(),
                View::Nodes => node_keys(),
                View::Deployments | View::Events => ": view / filter".to_owned(),
            };
            format!("{filter}{keys} ? help")
        }
    };
    Line::raw(format!(" {text}"))
}

/// The nodes view's keys: one per node action.
fn node_keys() -> String {
    let mut keys: Vec<String> = NODE_ACTIONS
        .iter()
        .map(|action| format!("{} {}", action.key, action.verb))
        .collect();
    keys.push(": view / filter".to_owned());
    keys.join(" ")
}

fn help(frame: &mut Frame, area: Rect) {
    let node_keys: Vec<String> = NODE_ACTIONS
        .iter()
        .map(|action| action.key.to_string())
        .collect();
    let node_verbs: Vec<&str> = NODE_ACTIONS.iter().map(|action| action.verb).collect();
    let node_help = format!("nodes view: {} a node (confirmed)", node_verbs.join(", "));
    let rows = [
        ("↑↓ j k g G".to_owned(), "move (PgUp/PgDn: a page)"),
        (
            "enter l".to_owned(),
            "workload detail: fields, health history, live log",
        ),
        (
            "space".to_owned(),
            "mark a workload (batch stop/restart/start/delete)",
        ),
        (
            "s r u".to_owned(),
            "stop, restart, start (confirmed; only where allowed)",
        ),
        ("ctrl-d".to_owned(), "delete the workload (confirmed)"),
        (node_keys.join(" "), node_help.as_str()),
        ("/".to_owned(), "filter the view (esc clears)"),
        (
            ":".to_owned(),
            "jump to a view: workloads deployments nodes events",
        ),
        (
            "q esc".to_owned(),
            "back (clear the filter or marks, leave the view, quit)",
        ),
        ("ctrl-c".to_owned(), "quit"),
    ];
    let lines = rows
        .iter()
        .map(|(keys, what)| Line::raw(format!("{keys:<11} {what}")))
        .collect();
    popup(frame, area, "help", lines);
}

fn popup(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    let width = area.width.min(76);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title} ")),
        ),
        popup,
    );
}

/// `text` cut or padded to `width` characters.
pub fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count > width {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        format!("{text:<width$}")
    }
}

/// How long before `now` a timestamp was: `42s`, `5m`, `3h`, `2d`, or `-`.
pub fn age(now: SystemTime, timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(time) = timestamp.and_then(crate::cli::output::to_datetime) else {
        return "-".to_owned();
    };
    let elapsed = now
        .duration_since(SystemTime::from(time))
        .unwrap_or(Duration::ZERO);
    crate::cli::output::short_duration(elapsed)
}
