//! What each key does: the conventions of k9s and lazydocker (`/` filter, `:`
//! jump, `?` help, `q`/`esc` back), actions offered only where the
//! workload's `allowed_actions` (or the node's state) admits them, each behind
//! a confirmation that states its impact.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use slipway_sdk::proto::{Stage, Workload};

use super::{
    actions::{NODE_ACTIONS, WorkloadAction, node_action_for_key},
    app::{App, Command, Confirmation, Detail, Mode, View},
};
use crate::cli::output::short_id;

impl App {
    /// Handles one key press; returns what the client task must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Filter => {
                self.filter_key(key);
                Vec::new()
            }
            Mode::Jump(text) => {
                self.jump_key(key, text);
                Vec::new()
            }
            Mode::Confirm(confirmation) => self.confirm_key(key, confirmation),
            Mode::Normal => self.normal_key(key),
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(character) => self.filter.push(character),
            _ => {}
        }
        self.cursor.insert(self.view, 0);
    }

    fn jump_key(&mut self, key: KeyEvent, mut text: String) {
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                let wanted = text.trim().to_lowercase();
                let found: Vec<View> = View::NAMED
                    .iter()
                    .filter(|(name, _)| !wanted.is_empty() && name.starts_with(&wanted))
                    .map(|(_, view)| *view)
                    .collect();
                match found.as_slice() {
                    [view] => self.switch_to(*view),
                    _ => self.refuse(format!(
                        "no view {wanted:?}: workloads, deployments, nodes or events"
                    )),
                }
            }
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Jump(text);
            }
            KeyCode::Char(character) => {
                text.push(character);
                self.mode = Mode::Jump(text);
            }
            _ => {}
        }
    }

    fn confirm_key(&mut self, key: KeyEvent, mut confirmation: Confirmation) -> Vec<Command> {
        let Some(expected) = confirmation.typed.clone() else {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.confirmed(confirmation),
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
                _ => Vec::new(),
            };
        };
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            KeyCode::Enter if confirmation.input == expected => self.confirmed(confirmation),
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.refuse(format!("not confirmed: type {expected:?} exactly"));
                Vec::new()
            }
            KeyCode::Backspace => {
                confirmation.input.pop();
                self.mode = Mode::Confirm(confirmation);
                Vec::new()
            }
            KeyCode::Char(character) => {
                confirmation.input.push(character);
                self.mode = Mode::Confirm(confirmation);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Runs a confirmed command: its targets show the operation inline.
    fn confirmed(&mut self, confirmation: Confirmation) -> Vec<Command> {
        self.mode = Mode::Normal;
        self.message = None;
        match &confirmation.command {
            Command::Workloads {
                action,
                workload_ids,
            } => {
                for id in workload_ids {
                    self.operations.insert(
                        id.clone(),
                        super::app::Operation {
                            verb: action.verb(),
                            stage: None,
                            note: None,
                        },
                    );
                }
                self.marked.clear();
            }
            Command::Node { action, node, .. } => {
                let verb = NODE_ACTIONS
                    .iter()
                    .find(|entry| entry.kind == *action)
                    .map_or("", |entry| entry.verb);
                self.operations.insert(
                    node.clone(),
                    super::app::Operation {
                        verb,
                        stage: None,
                        note: None,
                    },
                );
            }
            Command::OpenDetail { .. } | Command::CloseDetail => {}
        }
        vec![confirmation.command]
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let control = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') if self.view != View::Detail => {
                self.filter.clear();
                self.mode = Mode::Filter;
            }
            KeyCode::Char(':') => self.mode = Mode::Jump(String::new()),
            KeyCode::Char('q') | KeyCode::Esc => return self.back(),
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(1),
            KeyCode::PageUp => self.move_cursor(-10),
            KeyCode::PageDown => self.move_cursor(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_cursor(-(self.row_count() as isize)),
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(self.row_count() as isize),
            KeyCode::Char('d') if control => return self.offer(WorkloadAction::Delete),
            _ if self.view == View::Nodes => self.node_key(key),
            KeyCode::Char(' ') if self.view == View::Workloads => self.toggle_mark(),
            KeyCode::Enter | KeyCode::Char('l') if self.view == View::Workloads => {
                return self.open_detail();
            }
            KeyCode::Char('s') => return self.offer(WorkloadAction::Stop),
            KeyCode::Char('r') => return self.offer(WorkloadAction::Restart),
            KeyCode::Char('u') => return self.offer(WorkloadAction::Start),
            _ => {}
        }
        Vec::new()
    }

    fn node_key(&mut self, key: KeyEvent) {
        let KeyCode::Char(character) = key.code else {
            return;
        };
        let Some(action) = node_action_for_key(character) else {
            return;
        };
        let Some(node) = self.selected_node().cloned() else {
            return;
        };
        if !(action.applies)(&node) {
            self.refuse(format!(
                "{} does not apply to node {}",
                action.verb, node.name
            ));
            return;
        }
        let typed = (action.needs_typed_confirmation)(&node, &self.nodes);
        let mut impact = vec![format!("Node {}: {}.", node.name, action.impact)];
        if typed {
            impact.push("No other node takes work: nothing new can be placed.".to_owned());
        }
        self.mode = Mode::Confirm(Confirmation {
            title: format!("{} node {}?", capitalised(action.verb), node.name),
            impact,
            typed: typed.then(|| node.name.clone()),
            input: String::new(),
            command: Command::Node {
                action: action.kind,
                node: node.id.clone(),
                force: typed,
                confirm: if typed {
                    node.name.clone()
                } else {
                    String::new()
                },
            },
        });
    }

    fn back(&mut self) -> Vec<Command> {
        if self.view == View::Detail {
            self.view = self.list_view;
            self.detail = None;
            return vec![Command::CloseDetail];
        }
        if !self.filter.is_empty() {
            self.filter.clear();
        } else if !self.marked.is_empty() {
            self.marked.clear();
        } else if self.view != View::Workloads {
            self.switch_to(View::Workloads);
        } else {
            self.quit = true;
        }
        Vec::new()
    }

    /// Shows another list view (closing the detail view's streams).
    pub fn switch_to(&mut self, view: View) {
        if self.view == view {
            return;
        }
        self.filter.clear();
        self.view = view;
        self.list_view = view;
        self.detail = None;
    }

    fn move_cursor(&mut self, by: isize) {
        let rows = self.row_count();
        if rows == 0 {
            return;
        }
        let current = self.selected_index() as isize;
        let next = (current + by).clamp(0, rows as isize - 1) as usize;
        self.cursor.insert(self.view, next);
    }

    fn toggle_mark(&mut self) {
        if let Some(id) = self.selected_workload().map(|workload| workload.id.clone()) {
            if !self.marked.remove(&id) {
                self.marked.insert(id);
            }
            self.move_cursor(1);
        }
    }

    fn open_detail(&mut self) -> Vec<Command> {
        let Some(workload_id) = self.selected_workload().map(|workload| workload.id.clone()) else {
            return Vec::new();
        };
        self.view = View::Detail;
        self.detail = Some(Detail {
            workload_id: workload_id.clone(),
            ..Detail::default()
        });
        vec![Command::OpenDetail { workload_id }]
    }

    /// The workloads an action is about: the marked ones, else the selected
    /// one (the detail view's in the detail view).
    fn targets(&self) -> Vec<&Workload> {
        match self.view {
            View::Detail => self
                .detail
                .as_ref()
                .and_then(|detail| self.workloads.get(&detail.workload_id))
                .into_iter()
                .collect(),
            View::Workloads if !self.marked.is_empty() => self
                .marked
                .iter()
                .filter_map(|id| self.workloads.get(id))
                .collect(),
            View::Workloads => self.selected_workload().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Asks to confirm `action` on the targets that allow it; refuses when none does.
    fn offer(&mut self, action: WorkloadAction) -> Vec<Command> {
        let targets = self.targets();
        if targets.is_empty() {
            return Vec::new();
        }
        let (allowed, refused): (Vec<&Workload>, Vec<&Workload>) =
            targets.into_iter().partition(|workload| {
                action.allowed_for(workload) && !self.operations.contains_key(&workload.id)
            });
        if allowed.is_empty() {
            let reason = match refused.as_slice() {
                [one] => format!(
                    "{} does not apply to {} ({})",
                    action.verb(),
                    short_id(&one.id),
                    self.state_of(one)
                ),
                _ => format!("{} applies to none of the marked workloads", action.verb()),
            };
            self.refuse(reason);
            return Vec::new();
        }
        let title = match allowed.as_slice() {
            [one] => format!(
                "{} workload {} ({}, {})?",
                capitalised(action.verb()),
                short_id(&one.id),
                self.deployment_name(&one.deployment_id),
                self.state_of(one)
            ),
            many => format!("{} {} workloads?", capitalised(action.verb()), many.len()),
        };
        let mut impact = vec![format!("Each: {}.", action.impact())];
        if allowed.len() > 1 {
            let names: Vec<&str> = allowed
                .iter()
                .map(|workload| short_id(&workload.id))
                .collect();
            impact.push(format!("Workloads: {}.", names.join(", ")));
        }
        if !refused.is_empty() {
            impact.push(format!(
                "Skipped ({} does not apply now): {}.",
                action.verb(),
                refused
                    .iter()
                    .map(|workload| short_id(&workload.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let workload_ids = allowed.iter().map(|workload| workload.id.clone()).collect();
        self.mode = Mode::Confirm(Confirmation {
            title,
            impact,
            typed: None,
            input: String::new(),
            command: Command::Workloads {
                action,
                workload_ids,
            },
        });
        Vec::new()
    }

    fn state_of(&self, workload: &Workload) -> &'static str {
        if self.operations.contains_key(&workload.id) {
            return "busy";
        }
        Stage::try_from(workload.stage).map_or("unspecified", Stage::label)
    }

    fn refuse(&mut self, message: String) {
        self.message = Some((message, true));
    }
}

fn capitalised(verb: &str) -> String {
    let mut characters = verb.chars();
    characters.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(characters).collect()
    })
}
