//! The level a line of a workload's output names for itself.
//!
//! Programs say how serious a line is in a handful of common ways; a line that
//! says it gets that level, whatever stream it came on. A line that says
//! nothing is info, on stdout and on stderr alike: many programs (Python's
//! `http.server`, most loggers by default) write ordinary lines to stderr.

use super::LogLevel;

/// JSON and logfmt keys that carry a level.
const LEVEL_KEYS: [&str; 6] = [
    "level",
    "severity",
    "lvl",
    "levelname",
    "loglevel",
    "log.level",
];

/// How many leading timestamp-like tokens are skipped before a level word.
const MAX_SKIPPED_TOKENS: usize = 4;

/// The level `message` names, if it names one: a JSON object with a level
/// field (`{"level":"warn"}`, pino's numbers too), a logfmt `level=warn`, or a
/// level word at the start, possibly after a timestamp (`ERROR …`, `[error] …`,
/// `WARN: …`, `WARNING:root:…`, `2024-01-01T00:00:00Z  INFO …`, glog's `E1203 …`).
/// A bare word must be upper case unless a colon or brackets mark it, so that
/// `Error handling is on` stays unnamed.
pub fn named_level(message: &str) -> Option<LogLevel> {
    let text = message.trim_start();
    if text.starts_with('{') {
        if let Some(level) = json_level(text) {
            return Some(level);
        }
    }
    logfmt_level(text).or_else(|| prefix_level(text))
}

/// The level of an output line: the one it names, else info.
pub fn output_level(message: &str) -> LogLevel {
    named_level(message).unwrap_or(LogLevel::Info)
}

/// A level word, in any case.
fn level_word(word: &str) -> Option<LogLevel> {
    let level = match word.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "dbg" => LogLevel::Debug,
        "info" | "inf" | "information" | "notice" => LogLevel::Info,
        "warn" | "warning" | "wrn" => LogLevel::Warn,
        "error" | "err" | "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg"
        | "emergency" | "severe" => LogLevel::Error,
        _ => return None,
    };
    Some(level)
}

/// Pino's and Bunyan's numeric levels (10 trace … 60 fatal).
fn numeric_level(number: f64) -> LogLevel {
    if number < 30.0 {
        LogLevel::Debug
    } else if number < 40.0 {
        LogLevel::Info
    } else if number < 50.0 {
        LogLevel::Warn
    } else {
        LogLevel::Error
    }
}

fn json_level(text: &str) -> Option<LogLevel> {
    let serde_json::Value::Object(fields) = serde_json::from_str(text).ok()? else {
        return None;
    };
    LEVEL_KEYS.iter().find_map(|key| {
        let value = fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))?
            .1;
        match value {
            serde_json::Value::String(word) => level_word(word.trim()),
            serde_json::Value::Number(number) => number.as_f64().map(numeric_level),
            _ => None,
        }
    })
}

fn logfmt_level(text: &str) -> Option<LogLevel> {
    text.split_whitespace().find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if !LEVEL_KEYS
            .iter()
            .any(|known| key.eq_ignore_ascii_case(known))
        {
            return None;
        }
        level_word(value.trim_matches(|c| c == '"' || c == '\''))
    })
}

/// Whether a token is part of a timestamp or a separator before the level.
fn skippable(token: &str) -> bool {
    let bare = token.trim_start_matches(['[', '(']);
    bare.starts_with(|c: char| c.is_ascii_digit()) || matches!(token, "-" | "|" | "::")
}

fn prefix_level(text: &str) -> Option<LogLevel> {
    let token = text
        .split_whitespace()
        .take(MAX_SKIPPED_TOKENS + 1)
        .find(|token| !skippable(token))?;
    if let Some(level) = glog_level(token) {
        return Some(level);
    }
    let opened = token.starts_with(['[', '(', '<']);
    let inner = token.trim_start_matches(['[', '(', '<']);
    let word_end = inner
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(inner.len());
    let (word, rest) = inner.split_at(word_end);
    let level = level_word(word)?;
    let marked = (opened && rest.starts_with([']', ')', '>'])) || rest.starts_with(':');
    let shouted = word.chars().all(|c| c.is_ascii_uppercase());
    let ends_word = rest.is_empty() || rest.starts_with([':', ']', ')', '>', '|', ',', '-']);
    ((marked || shouted) && ends_word).then_some(level)
}

/// glog and klog: `I1203`, `W1203`, `E1203`, `F1203` (level letter, month, day).
fn glog_level(token: &str) -> Option<LogLevel> {
    let level = match token.chars().next()? {
        'I' => LogLevel::Info,
        'W' => LogLevel::Warn,
        'E' | 'F' => LogLevel::Error,
        _ => return None,
    };
    let date = token.get(1..5)?;
    let after = token.get(5..)?;
    let dated = date.bytes().all(|byte| byte.is_ascii_digit())
        && !after.starts_with(|c: char| c.is_ascii_digit());
    dated.then_some(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_name_their_level_get_it() {
        let cases = [
            ("ERROR something broke", LogLevel::Error),
            ("[error] upstream timed out", LogLevel::Error),
            ("[ERROR] x", LogLevel::Error),
            ("error: missing semicolon", LogLevel::Error),
            ("WARN: disk almost full", LogLevel::Warn),
            ("WARNING:root:deprecated call", LogLevel::Warn),
            ("INFO:werkzeug:started", LogLevel::Info),
            ("DEBUG cache miss", LogLevel::Debug),
            ("<warn> low memory", LogLevel::Warn),
            ("FATAL could not bind", LogLevel::Error),
            ("CRITICAL:app:down", LogLevel::Error),
            ("level=warn msg=\"slow query\"", LogLevel::Warn),
            (
                "time=2024-01-01T00:00:00Z level=error msg=x",
                LogLevel::Error,
            ),
            ("ts=1 lvl=\"debug\" msg=x", LogLevel::Debug),
            (r#"{"level":"warn","msg":"slow"}"#, LogLevel::Warn),
            (r#"{"severity":"ERROR","message":"x"}"#, LogLevel::Error),
            (r#"{"level":30,"msg":"pino info"}"#, LogLevel::Info),
            (r#"{"level":50,"msg":"pino error"}"#, LogLevel::Error),
            (r#"{"levelname": "DEBUG", "message": "x"}"#, LogLevel::Debug),
            (
                "2024-01-01T12:00:00.123456Z  INFO slipway: listening",
                LogLevel::Info,
            ),
            ("2024-01-01 12:00:00,123 WARNING retrying", LogLevel::Warn),
            (
                "2024/01/01 12:00:00 [error] 7#7: connect() failed",
                LogLevel::Error,
            ),
            ("[2024-01-01 12:00:00] ERROR app: x", LogLevel::Error),
            ("2024-01-01 12:00:00 - WARNING - x", LogLevel::Warn),
            (
                "E1203 08:00:00.000000 1 main.go:10] failed",
                LogLevel::Error,
            ),
            ("W1203 08:00:00.000000 1 main.go:10] slow", LogLevel::Warn),
            ("   ERROR indented", LogLevel::Error),
        ];
        for (line, level) in cases {
            assert_eq!(named_level(line), Some(level), "{line}");
        }
    }

    #[test]
    fn lines_that_name_no_level_are_info() {
        for line in [
            "127.0.0.1 - - [03/Dec/2026 08:00:00] \"GET / HTTP/1.1\" 200 -",
            "Error handling is enabled",
            "Information superhighway",
            "listening on 127.0.0.1:3100",
            "Traceback (most recent call last):",
            "ERRORS=0",
            "Debugging is off",
            "{not json",
            r#"{"msg":"no level here"}"#,
            "",
            "E12 short",
        ] {
            assert_eq!(named_level(line), None, "{line}");
            assert_eq!(output_level(line), LogLevel::Info, "{line}");
        }
    }
}
