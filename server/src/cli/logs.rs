//! `slipway logs`: stored lines, then live ones with -f. The server filters by
//! time (`--since`) and stream (`--stderr-only`, `--stdout-only`,
//! `--no-system`) and takes the tail of what passes; `--until` ends the output
//! at the first line after it.

use std::io::Write;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use slipway_sdk::{
    Client,
    proto::{LogEntry, Stream, StreamLogsRequest},
};

use super::{
    args::{ControlCharArgs, LogsArgs},
    error::{CliError, EXIT_OK},
    output::{ControlChars, Printer, rfc3339, to_datetime},
    resolve::Catalog,
    view::LogView,
};

/// Which lines to show.
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    /// Only lines at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only lines before this time: the output ends at the first line after it.
    pub until: Option<DateTime<Utc>>,
    /// Only lines of these streams (all when empty).
    pub streams: Vec<Stream>,
}

impl LineFilter {
    /// Whether `entry` comes after `until`, where the output ends.
    fn is_past(&self, entry: &LogEntry) -> bool {
        match (&self.until, entry.timestamp.as_ref().and_then(to_datetime)) {
            (Some(until), Some(time)) => time > *until,
            _ => false,
        }
    }
}

/// How lines are printed.
#[derive(Debug, Clone, Copy)]
pub struct LineStyle {
    pub printer: Printer,
    pub timestamps: bool,
    /// What becomes of control characters in the workload's output.
    pub control_chars: ControlChars,
}

impl LineStyle {
    /// Lines for `printer`, control characters as `args` and stdout ask.
    pub fn new(printer: Printer, timestamps: bool, args: ControlCharArgs) -> LineStyle {
        LineStyle {
            printer,
            timestamps,
            control_chars: ControlChars::choose(printer.terminal, args.raw, args.escape),
        }
    }
}

/// `slipway logs`.
pub async fn logs(client: &Client, printer: Printer, args: LogsArgs) -> Result<u8, CliError> {
    let now = Utc::now();
    let streams = if args.stderr_only {
        vec![Stream::Stderr]
    } else if args.stdout_only {
        vec![Stream::Stdout]
    } else if args.no_system {
        vec![Stream::Stdout, Stream::Stderr]
    } else {
        Vec::new()
    };
    let filter = LineFilter {
        since: args
            .since
            .as_deref()
            .map(|text| parse_time("--since", text, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|text| parse_time("--until", text, now))
            .transpose()?,
        streams,
    };
    let catalog = Catalog::load(client).await?;
    let workload = catalog.resolve_workload(&args.target)?;
    let style = LineStyle::new(printer, args.timestamps, args.control_chars);
    print_logs(client, &workload.id, args.tail, args.follow, &filter, style).await?;
    Ok(EXIT_OK)
}

/// Prints the workload's log (the last `tail` lines that pass `filter`), then with
/// `follow` new lines until the workload is stopped or failed.
pub async fn print_logs(
    client: &Client,
    workload_id: &str,
    tail: Option<u32>,
    follow: bool,
    filter: &LineFilter,
    style: LineStyle,
) -> Result<(), CliError> {
    let stream_error = |error| CliError::server("cannot read the log", error);
    let request = StreamLogsRequest {
        workload_id: workload_id.to_owned(),
        follow,
        tail,
        since: filter.since.map(|since| prost_types::Timestamp {
            seconds: since.timestamp(),
            nanos: since.timestamp_subsec_nanos() as i32,
        }),
        streams: filter.streams.iter().map(|stream| *stream as i32).collect(),
        ..StreamLogsRequest::default()
    };
    let mut lines = Box::pin(client.stream_logs(request).await.map_err(stream_error)?);
    while let Some(entry) = lines.next().await {
        let entry = entry.map_err(stream_error)?;
        if filter.is_past(&entry) || !print_line(style, &entry)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Prints one line; `false` once stdout is closed (`| head`).
pub fn print_line(style: LineStyle, entry: &LogEntry) -> Result<bool, CliError> {
    if style.printer.json() {
        let text = serde_json::to_string(&LogView::new(entry))?;
        return Ok(write_stdout(&text));
    }
    let mut text = String::new();
    if style.timestamps {
        let time = rfc3339(entry.timestamp.as_ref()).unwrap_or_else(|| "-".to_owned());
        text.push_str(&time);
        text.push(' ');
    }
    let message = style.control_chars.apply(&entry.message);
    match entry.stream() {
        Stream::Stderr => text.push_str(&style.printer.red(&message)),
        Stream::System => text.push_str(&style.printer.dim(&format!("[slipway] {message}"))),
        _ => text.push_str(&message),
    }
    Ok(write_stdout(&text))
}

fn write_stdout(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").is_ok() && stdout.flush().is_ok()
}

/// Parses `--since` or `--until` (`flag`): a duration ago (`30s`, `10m`,
/// `2h`, `1d`, `1h30m`) or an RFC 3339 time.
pub fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let seconds = parse_duration_seconds(text).ok_or_else(|| {
        CliError::usage(format!(
            "{flag} {text:?}: expected a duration like 30s, 10m, 2h, 1d or 1h30m, or a time like 2025-01-31T12:00:00Z"
        ))
    })?;
    let ago = chrono::Duration::try_seconds(seconds)
        .ok_or_else(|| CliError::usage(format!("{flag} {text:?} is too long ago")))?;
    now.checked_sub_signed(ago)
        .ok_or_else(|| CliError::usage(format!("{flag} {text:?} is too long ago")))
}

/// `1h30m` → 5400; `None` unless the text is one or more NUMBER UNIT pairs.
pub fn parse_duration_seconds(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for character in text.trim().chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let unit: i64 = match character {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return None,
        };
        let value: i64 = number.parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
        number.clear();
        seen_unit = true;
    }
    (number.is_empty() && seen_unit).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_units() {
        assert_eq!(parse_duration_seconds("30s"), Some(30));
        assert_eq!(parse_duration_seconds("10m"), Some(600));
        assert_eq!(parse_duration_seconds("1h30m"), Some(5_400));
        assert_eq!(parse_duration_seconds("2d"), Some(172_800));
        assert_eq!(parse_duration_seconds("10"), None);
        assert_eq!(parse_duration_seconds("m"), None);
        assert_eq!(parse_duration_seconds("5x"), None);
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = DateTime::parse_from_rfc3339("2025-01-31T12:00:00Z")
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_default();
        let ago = parse_time("--since", "10m", now)
            .map(|time| time.to_rfc3339())
            .ok();
        assert_eq!(ago.as_deref(), Some("2025-01-31T11:50:00+00:00"));
        let at = parse_time("--since", "2025-01-30T08:00:00+01:00", now)
            .map(|time| time.to_rfc3339())
            .ok();
        assert_eq!(at.as_deref(), Some("2025-01-30T07:00:00+00:00"));
        assert!(parse_time("--since", "yesterday", now).is_err());
    }

    #[test]
    fn until_ends_the_output_after_its_time() {
        let entry = |seconds: i64| LogEntry {
            timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            ..LogEntry::default()
        };
        let filter = LineFilter {
            until: DateTime::from_timestamp(100, 0),
            ..LineFilter::default()
        };
        assert!(!filter.is_past(&entry(100)));
        assert!(filter.is_past(&entry(101)));
        assert!(!LineFilter::default().is_past(&entry(101)));
    }
}
