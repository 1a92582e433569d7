//! The body of each view: the four lists and the workload detail.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};
use slipway_sdk::proto::{
    Action, EventType, Health, LogEntry, Node, NodeScheduling, NodeState, Runtime, Stage, Stream,
    Workload,
};

use super::{
    app::{App, Detail},
    render::{Theme, age, fit},
};
use crate::cli::output::{escape_controls, short_id, to_datetime};
use slipway_server::domain::{self, DeploymentHealth, WorkloadState};

fn stage_label(stage: i32) -> &'static str {
    Stage::try_from(stage).map_or("unspecified", Stage::label)
}

fn health_label(health: i32) -> &'static str {
    Health::try_from(health).map_or("unknown", Health::label)
}

/// `HH:MM:SS` (UTC) of a timestamp, or `-`.
fn clock(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(to_datetime)
        .map_or("-".to_owned(), |time| time.format("%H:%M:%S").to_string())
}

/// Draws a header and the rows that fit, scrolled so the selected one shows
/// (marked `>` and in reverse video).
fn table(
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
    heading: String,
    rows: Vec<Line<'static>>,
    selected: Option<usize>,
    empty: &str,
) {
    let room = usize::from(area.height).saturating_sub(1).max(1);
    let offset = selected.map_or(0, |index| (index + 1).saturating_sub(room));
    let mut lines = vec![Line::styled(format!(" {heading}"), theme.heading())];
    if rows.is_empty() {
        lines.push(Line::styled(format!("   {empty}"), theme.dim()));
    }
    for (index, row) in rows.into_iter().enumerate().skip(offset).take(room) {
        if Some(index) == selected {
            let mut row = row.style(theme.selected());
            row.spans.insert(0, Span::raw(">"));
            lines.push(row);
        } else {
            let mut row = row;
            row.spans.insert(0, Span::raw(" "));
            lines.push(row);
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// What a workload's row says at its end: the operation under way, else why
/// it failed or waits.
fn workload_note(app: &App, workload: &Workload) -> String {
    if let Some(operation) = app.operations.get(&workload.id) {
        let stage = operation.stage.map_or("accepted", Stage::label);
        return format!("{}: {stage}…", operation.verb);
    }
    if !workload.error.is_empty() {
        return workload.error.clone();
    }
    workload.pending_reason.clone()
}

pub fn workloads(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app
        .visible_workloads()
        .into_iter()
        .map(|workload| {
            let mark = if app.marked.contains(&workload.id) {
                "*"
            } else {
                " "
            };
            let port = if workload.port == 0 {
                "-".to_owned()
            } else {
                workload.port.to_string()
            };
            Line::from(vec![
                Span::raw(format!("{mark} {} ", fit(short_id(&workload.id), 12))),
                Span::raw(format!(
                    "{} ",
                    fit(&app.deployment_name(&workload.deployment_id), 13)
                )),
                Span::styled(
                    fit(stage_label(workload.stage), 9),
                    theme.stage(workload.stage),
                ),
                Span::raw(" "),
                Span::styled(
                    fit(health_label(workload.health), 9),
                    theme.health(workload.health),
                ),
                Span::raw(format!(
                    " {:>3} {} {} {}",
                    workload.generation,
                    fit(&port, 5),
                    fit(&age(app.now, workload.created_at.as_ref()), 4),
                    fit(&escape_controls(&workload_note(app, workload)), 14)
                )),
            ])
        })
        .collect();
    table(
        frame,
        area,
        theme,
        format!(
            "  {} {} {} {} GEN {} {} NOTE",
            fit("ID", 12),
            fit("DEPLOYMENT", 13),
            fit("STAGE", 9),
            fit("HEALTH", 9),
            fit("PORT", 5),
            fit("AGE", 4)
        ),
        rows,
        Some(app.selected_index()),
        "no workloads (slipway run … creates one)",
    );
}

pub fn deployments(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app
        .visible_deployments()
        .into_iter()
        .map(|deployment| {
            let runtime = deployment
                .spec
                .as_ref()
                .and_then(|spec| Runtime::try_from(spec.runtime).ok())
                .map_or("process", |runtime| match runtime {
                    Runtime::Docker => "docker",
                    _ => "process",
                });
            let of_it: Vec<&Workload> = app
                .workloads
                .values()
                .filter(|workload| workload.deployment_id == deployment.id)
                .collect();
            let running = of_it
                .iter()
                .filter(|workload| workload.stage == Stage::Running as i32)
                .count();
            let health = deployment_health(&of_it);
            Line::from(vec![
                Span::raw(format!(
                    "  {} {} {} {} {} ",
                    fit(&deployment.name, 16),
                    fit(short_id(&deployment.id), 12),
                    fit(
                        if deployment.project.is_empty() {
                            "-"
                        } else {
                            &deployment.project
                        },
                        10
                    ),
                    fit(runtime, 8),
                    fit(&format!("{running}/{}", of_it.len()), 8),
                )),
                Span::styled(
                    fit(health.state.as_str(), 11),
                    theme.deployment(health.state),
                ),
                Span::raw(format!(
                    " {}",
                    fit(&age(app.now, deployment.created_at.as_ref()), 5)
                )),
            ])
        })
        .collect();
    table(
        frame,
        area,
        theme,
        format!(
            "  {} {} {} {} {} {} AGE",
            fit("NAME", 16),
            fit("ID", 12),
            fit("PROJECT", 10),
            fit("RUNTIME", 8),
            fit("RUNNING", 8),
            fit("HEALTH", 11)
        ),
        rows,
        Some(app.selected_index()),
        "no deployments",
    );
}

/// The detail's liveness checks: uptime over the last hour, and the last few
/// checks, oldest first (`+` passed, `x` failed), then why the last failed.
fn checks_line(detail: &Detail, theme: Theme) -> Line<'static> {
    let Some(history) = &detail.checks else {
        return Line::styled("  checks: reading…", theme.dim());
    };
    let Some(uptime) = history.uptime else {
        return Line::styled("  checks: no liveness check in the last hour", theme.dim());
    };
    let marks: String = history
        .checks
        .iter()
        .rev()
        .map(|check| if check.passed { '+' } else { 'x' })
        .collect();
    let mut spans = vec![Span::raw(format!(
        "  checks: {:.1}% of {} passed (1h), last {} ",
        uptime * 100.0,
        history.total_checks,
        history
            .checks
            .first()
            .map_or("-".to_owned(), |check| clock(check.checked_at.as_ref())),
    ))];
    spans.push(Span::styled(marks, theme.dim()));
    if let Some(failed) = history.checks.iter().find(|check| !check.passed) {
        spans.push(Span::styled(
            format!("  {}", escape_controls(&failed.reason)),
            theme.error(),
        ));
    }
    Line::from(spans)
}

/// A deployment's health from the workloads the UI holds (live from events),
/// by the server's own rule.
fn deployment_health(workloads: &[&Workload]) -> DeploymentHealth {
    let states: Vec<WorkloadState> = workloads
        .iter()
        .filter_map(|workload| {
            Some(WorkloadState {
                id: short_id(&workload.id),
                stage: domain::Stage::parse(stage_label(workload.stage))?,
                health: domain::Health::parse(health_label(workload.health)).unwrap_or_default(),
                restart_pending: workload.next_restart_at.is_some(),
                error: Some(workload.error.as_str()).filter(|error| !error.is_empty()),
                pending_reason: Some(workload.pending_reason.as_str())
                    .filter(|reason| !reason.is_empty()),
                updated_at: workload
                    .updated_at
                    .as_ref()
                    .map_or(0, |at| at.seconds * 1_000_000 + i64::from(at.nanos / 1000)),
            })
        })
        .collect();
    domain::deployment_health(&states)
}

fn node_state(node: &Node) -> &'static str {
    match NodeState::try_from(node.state) {
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Paused as i32 => "paused",
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Draining as i32 => "draining",
        Ok(NodeState::Active) if node.scheduling == NodeScheduling::Drained as i32 => "drained",
        Ok(NodeState::Active) => "active",
        Ok(NodeState::Down) => "down",
        Ok(NodeState::Left) => "left",
        _ => "unknown",
    }
}

pub fn nodes(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app
        .visible_nodes()
        .into_iter()
        .map(|node| {
            let capacity = if node.capacity == 0 {
                "-".to_owned()
            } else {
                node.capacity.to_string()
            };
            let note = match app.operations.get(&node.id) {
                Some(operation) => match &operation.note {
                    Some(note) => format!("{} {note}", operation.verb),
                    None => format!("{}…", operation.verb),
                },
                None if !node.reason.is_empty() => node.reason.clone(),
                None if node.answering => "this one".to_owned(),
                None => String::new(),
            };
            Line::raw(format!(
                "  {} {} {} {} {} {} {}",
                fit(&node.name, 13),
                fit(short_id(&node.id), 12),
                fit(node_state(node), 7),
                fit(&node.address, 21),
                fit(&format!("{}/{capacity}", node.active_workloads), 6),
                fit(&age(app.now, node.last_heartbeat.as_ref()), 4),
                fit(&note, 8),
            ))
        })
        .collect();
    table(
        frame,
        area,
        theme,
        format!(
            "  {} {} {} {} {} {} NOTE",
            fit("NAME", 13),
            fit("ID", 12),
            fit("STATE", 7),
            fit("ADDRESS", 21),
            fit("LOAD", 6),
            fit("BEAT", 4)
        ),
        rows,
        Some(app.selected_index()),
        "no nodes",
    );
}

pub fn events(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app
        .visible_events()
        .into_iter()
        .map(|event| {
            let kind = EventType::try_from(event.r#type).map_or("unspecified".to_owned(), |kind| {
                kind.as_str_name()
                    .trim_start_matches("EVENT_TYPE_")
                    .to_lowercase()
            });
            let what = match &event.workload {
                Some(workload) => format!(
                    "{} {}",
                    stage_label(workload.stage),
                    health_label(workload.health)
                ),
                None => event.message.clone(),
            };
            let workload = if event.workload_id.is_empty() {
                "-"
            } else {
                short_id(&event.workload_id)
            };
            Line::raw(format!(
                "  {:>6} {} {} {} {} {}",
                event.revision,
                clock(event.timestamp.as_ref()),
                fit(&kind, 18),
                fit(workload, 12),
                fit(&app.deployment_name(&event.deployment_id), 12),
                fit(&escape_controls(&what), 15),
            ))
        })
        .collect();
    table(
        frame,
        area,
        theme,
        format!(
            "  {:>6} {} {} {} {} DETAIL",
            "REV",
            fit("TIME", 8),
            fit("TYPE", 18),
            fit("WORKLOAD", 12),
            fit("DEPLOYMENT", 12)
        ),
        rows,
        Some(app.selected_index()),
        "no events yet",
    );
}

fn log_line(entry: &LogEntry, theme: Theme) -> Line<'static> {
    if entry.dropped > 0 {
        return Line::styled(
            format!("… {} earlier lines dropped by retention", entry.dropped),
            theme.dim(),
        );
    }
    let stream = match Stream::try_from(entry.stream) {
        Ok(Stream::Stderr) => "err",
        Ok(Stream::System) => "sys",
        _ => "out",
    };
    Line::from(vec![
        Span::styled(
            format!("{} {stream} ", clock(entry.timestamp.as_ref())),
            theme.dim(),
        ),
        Span::raw(escape_controls(&entry.message).into_owned()),
    ])
}

pub fn detail(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(detail) = &app.detail else {
        return;
    };
    let Some(workload) = app.workloads.get(&detail.workload_id) else {
        frame.render_widget(
            Paragraph::new(format!("workload {} is gone", detail.workload_id)),
            area,
        );
        return;
    };
    let optional = |value: String| {
        if value.is_empty() {
            "-".to_owned()
        } else {
            value
        }
    };
    let actions: Vec<&str> = workload
        .allowed_actions
        .iter()
        .filter_map(|action| Action::try_from(*action).ok())
        .map(Action::label)
        .collect();
    let mut lines = vec![
        Line::styled(
            format!(
                "Workload {} · deployment {}",
                workload.id,
                app.deployment_name(&workload.deployment_id)
            ),
            theme.heading(),
        ),
        Line::from(vec![
            Span::raw("stage "),
            Span::styled(stage_label(workload.stage), theme.stage(workload.stage)),
            Span::raw("  health "),
            Span::styled(health_label(workload.health), theme.health(workload.health)),
            Span::raw(format!(
                "  generation {}  port {}  restarts {}",
                workload.generation,
                if workload.port == 0 {
                    "-".to_owned()
                } else {
                    workload.port.to_string()
                },
                workload.restart_count
            )),
        ]),
        Line::raw(format!(
            "node {}  runtime id {}  started {}  exit code {}",
            optional(short_id(&workload.node_id).to_owned()),
            optional(fit(&workload.runtime_id, 12).trim_end().to_owned()),
            match workload.started_at {
                Some(_) => format!("{} ago", age(app.now, workload.started_at.as_ref())),
                None => "-".to_owned(),
            },
            workload
                .exit_code
                .map_or("-".to_owned(), |code| code.to_string()),
        )),
        Line::raw(format!(
            "actions {}",
            if actions.is_empty() {
                "none".to_owned()
            } else {
                actions.join(", ")
            }
        )),
    ];
    if !workload.error.is_empty() {
        lines.push(Line::styled(
            format!("error {}", escape_controls(&workload.error)),
            theme.error(),
        ));
    }
    lines.push(Line::styled(
        "Health and stage history (from the workload's events)",
        theme.heading(),
    ));
    const HISTORY_SHOWN: usize = 4;
    if detail.history.is_empty() {
        lines.push(Line::styled("  none yet", theme.dim()));
    }
    let skip = detail.history.len().saturating_sub(HISTORY_SHOWN);
    for point in detail.history.iter().skip(skip) {
        lines.push(Line::from(vec![
            Span::raw(format!(
                "  {}  gen {}  ",
                clock(point.at.as_ref()),
                point.generation
            )),
            Span::styled(fit(stage_label(point.stage), 9), theme.stage(point.stage)),
            Span::raw(" "),
            Span::styled(health_label(point.health), theme.health(point.health)),
        ]));
    }
    lines.push(checks_line(detail, theme));
    lines.push(Line::styled("Log (following)", theme.heading()));
    let room = usize::from(area.height).saturating_sub(lines.len());
    if detail.logs.is_empty() && room > 0 {
        lines.push(Line::styled("  no lines yet", theme.dim()));
    }
    let skip = detail.logs.len().saturating_sub(room);
    lines.extend(
        detail
            .logs
            .iter()
            .skip(skip)
            .map(|entry| log_line(entry, theme)),
    );
    frame.render_widget(Paragraph::new(lines), area);
}
