//! How results are printed: aligned tables for people (coloured on a terminal),
//! JSON for scripts, and the time formats both use.

use std::{
    borrow::Cow,
    io::{IsTerminal, Write},
    time::{Duration, SystemTime},
};

use chrono::{DateTime, SecondsFormat, Utc};
use prost_types::Timestamp;
use serde::Serialize;
use slipway_sdk::proto::Stage;

use super::error::CliError;

/// `println!` that ignores a closed stdout (`slipway ps | head -1`) instead of panicking.
macro_rules! outln {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, $($argument)*);
        let _ = stdout.flush();
    }};
}
pub(crate) use outln;

/// The output format chosen with `-o`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts: one object, or an array (streams: one object per line).
    Json,
}

/// Where and how a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: OutputFormat,
    /// Colour on stdout (a terminal, and `NO_COLOR` unset).
    pub colour: bool,
    /// Whether stdout is a terminal.
    pub terminal: bool,
}

impl Printer {
    /// A printer for `format`, with colour only when stdout is a terminal.
    pub fn new(format: OutputFormat) -> Printer {
        let terminal = std::io::stdout().is_terminal();
        Printer {
            format,
            colour: colour_wanted(terminal),
            terminal,
        }
    }

    /// Whether to print JSON.
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)?;
        outln!("{text}");
        Ok(())
    }

    /// Prints `value` as one line of JSON on stdout (for streams).
    pub fn print_json_line<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string(value)?;
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a message.
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
        Ok(())
    }

    /// `text` in the colour for `stage`, when colour is on.
    pub fn stage(&self, stage: Stage) -> String {
        paint(self.colour, stage_colour(stage), stage.label())
    }

    /// `text` dimmed, when colour is on.
    pub fn dim(&self, text: &str) -> String {
        paint(self.colour, DIM, text)
    }

    /// `text` in red, when colour is on.
    pub fn red(&self, text: &str) -> String {
        paint(self.colour, RED, text)
    }
}

/// Colour when writing to a terminal and `NO_COLOR` is not set.
pub fn colour_wanted(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";

fn stage_colour(stage: Stage) -> &'static str {
    match stage {
        Stage::Running => GREEN,
        Stage::Failed => RED,
        Stage::Stopped | Stage::Unspecified => DIM,
        _ => YELLOW,
    }
}

/// `text` wrapped in an ANSI colour when `colour` is on.
pub fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("{code}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// `text` with the characters that drive a terminal shown as text, as `less` and
/// `cat -v` show them: C0 controls in caret notation (ESC as `^[`, so
/// `\x1b[31m` prints as `^[[31m`; a carriage return as `^M`), DEL as `^?`, and
/// C1 controls and the bidirectional overrides as `<U+009B>`. Tabs stay.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let shown_as_is = |character: char| character == '\t' || !is_terminal_control(character);
    if text.chars().all(shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            character if shown_as_is(character) => escaped.push(character),
            '\u{7f}' => escaped.push_str("^?"),
            character if u32::from(character) < 0x20 => {
                escaped.push('^');
                escaped.push(char::from(b'@' + character as u8));
            }
            character => escaped.push_str(&format!("<U+{:04X}>", u32::from(character))),
        }
    }
    Cow::Owned(escaped)
}

/// Whether a terminal acts on `character` rather than showing it.
fn is_terminal_control(character: char) -> bool {
    character.is_control() || matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// How control characters in a workload's output reach stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlChars {
    /// Shown as text (see [`escape_controls`]): on a terminal, or with `--escape`.
    Escape,
    /// Passed on as they are: to a pipe or a file, or with `--raw`.
    Raw,
}

impl ControlChars {
    /// Escaped on a terminal unless `raw`; raw elsewhere unless `escape`.
    pub fn choose(stdout_is_terminal: bool, raw: bool, escape: bool) -> ControlChars {
        if escape || (stdout_is_terminal && !raw) {
            ControlChars::Escape
        } else {
            ControlChars::Raw
        }
    }

    /// `text` as it is to be printed.
    pub fn apply(self, text: &str) -> Cow<'_, str> {
        match self {
            ControlChars::Escape => escape_controls(text),
            ControlChars::Raw => Cow::Borrowed(text),
        }
    }
}

/// The width of `text` as shown, without ANSI colour codes.
fn visible_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for character in text.chars() {
        match (in_escape, character) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// Prints `rows` under `headers` in aligned columns, separated by three spaces.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(visible_width(cell));
            }
        }
    }
    let header_cells: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    let mut stdout = std::io::stdout().lock();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            let last = index + 1 == row.len();
            line.push_str(cell);
            if !last {
                let width = widths.get(index).copied().unwrap_or(0);
                let padding = width.saturating_sub(visible_width(cell)) + 3;
                line.push_str(&" ".repeat(padding));
            }
        }
        let _ = writeln!(stdout, "{}", line.trim_end());
    }
    let _ = stdout.flush();
}

/// A protobuf timestamp as a UTC time.
pub fn to_datetime(timestamp: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// A protobuf timestamp in RFC 3339 (`2025-01-31T12:00:00.123Z`).
pub fn rfc3339(timestamp: Option<&Timestamp>) -> Option<String> {
    timestamp
        .and_then(to_datetime)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// How long ago `timestamp` was, kubectl style: `42s`, `5m`, `3h`, `2d`.
pub fn age(timestamp: Option<&Timestamp>) -> String {
    let Some(time) = timestamp.and_then(to_datetime) else {
        return "-".to_owned();
    };
    let elapsed = SystemTime::now()
        .duration_since(SystemTime::from(time))
        .unwrap_or(Duration::ZERO);
    short_duration(elapsed)
}

/// A duration in its largest whole unit: `42s`, `5m`, `3h`, `2d`.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// The first 12 digits of an id, as people read them.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(300)), "5m");
        assert_eq!(short_duration(Duration::from_secs(3 * 3_600 + 5)), "3h");
        assert_eq!(short_duration(Duration::from_secs(2 * 86_400)), "2d");
    }

    #[test]
    fn colour_codes_do_not_count_towards_width() {
        assert_eq!(visible_width(&paint(true, GREEN, "running")), 7);
        assert_eq!(paint(false, GREEN, "running"), "running");
    }

    #[test]
    fn control_characters_are_shown_as_text() {
        assert_eq!(
            escape_controls("\x1b[31mred\x1b[0m\tok\r\x07\x7f"),
            "^[[31mred^[[0m\tok^M^G^?"
        );
        assert_eq!(
            escape_controls("\u{9b}2J \u{202e}txt"),
            "<U+009B>2J <U+202E>txt"
        );
        assert!(matches!(escape_controls("plain — text"), Cow::Borrowed(_)));
        assert_eq!(
            ControlChars::choose(true, false, false),
            ControlChars::Escape
        );
        assert_eq!(ControlChars::choose(true, true, false), ControlChars::Raw);
        assert_eq!(ControlChars::choose(false, false, false), ControlChars::Raw);
        assert_eq!(
            ControlChars::choose(false, false, true),
            ControlChars::Escape
        );
    }

    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        let timestamp = Timestamp {
            seconds: 1_700_000_000,
            nanos: 5_000_000,
        };
        assert_eq!(
            rfc3339(Some(&timestamp)).as_deref(),
            Some("2023-11-14T22:13:20.005Z")
        );
    }
}
