//! Log lines of a workload.

use super::{Stage, Timestamp, WorkloadId};

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Slipway's own lines about the workload.
    System,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<LogStream> {
        [LogStream::Stdout, LogStream::Stderr, LogStream::System]
            .into_iter()
            .find(|stream| stream.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<LogLevel> {
        [
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ]
        .into_iter()
        .find(|level| level.as_str() == text)
    }
}

/// A line as a runtime or the orchestrator hands it over, before it has a seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    pub timestamp: Timestamp,
    pub stream: LogStream,
    pub level: LogLevel,
    pub message: String,
}

impl NewLogLine {
    /// A line of the workload's output, at the level it names for itself
    /// (`ERROR …`, `level=warn`, `{"level":"debug"}`, see [`super::named_level`]),
    /// else info, on stdout and stderr alike. The stream is kept as it came.
    pub fn output(stream: LogStream, message: String) -> Self {
        let level = super::output_level(&message);
        Self {
            timestamp: super::now(),
            stream,
            level,
            message,
        }
    }

    /// One of Slipway's own lines.
    pub fn system(level: LogLevel, message: impl Into<String>) -> Self {
        Self {
            timestamp: super::now(),
            stream: LogStream::System,
            level,
            message: message.into(),
        }
    }
}

/// A stored line of a workload's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub workload_id: WorkloadId,
    /// 1, 2, 3, … per workload, across generations.
    pub seq: u64,
    pub generation: u64,
    pub timestamp: Timestamp,
    pub stage: Stage,
    pub level: LogLevel,
    pub stream: LogStream,
    pub message: String,
}

/// Which lines a reader wants. Empty lists and `None` mean no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub streams: Vec<LogStream>,
    pub min_level: Option<LogLevel>,
    pub stages: Vec<Stage>,
    pub generation: Option<u64>,
    pub since: Option<Timestamp>,
}

impl LogFilter {
    /// Whether the filter passes every line.
    pub fn is_empty(&self) -> bool {
        *self == LogFilter::default()
    }

    /// The levels at or above `min_level`.
    pub fn levels(&self) -> Vec<LogLevel> {
        let all = [
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ];
        match self.min_level {
            Some(min) => all.into_iter().filter(|level| *level >= min).collect(),
            None => Vec::new(),
        }
    }

    pub fn matches(&self, line: &LogLine) -> bool {
        (self.streams.is_empty() || self.streams.contains(&line.stream))
            && self.min_level.is_none_or(|min| line.level >= min)
            && (self.stages.is_empty() || self.stages.contains(&line.stage))
            && self
                .generation
                .is_none_or(|generation| line.generation == generation)
            && self.since.is_none_or(|since| line.timestamp >= since)
    }
}

/// What a log reader hands out: a line, or a marker saying that retention
/// dropped `count` lines, the last of which had seq `through`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    Line(LogLine),
    Dropped { through: u64, count: u64 },
}
