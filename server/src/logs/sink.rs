//! Where a run's log lines go: NUL bytes replaced, secrets masked, long lines
//! split into marked pieces, in that order (a secret is masked before any cut,
//! so no piece holds part of one).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::Message;
use crate::domain::{LogLevel, LogStream, NewLogLine, Stage, WorkloadId};

/// Ends every piece of a split line but the last.
pub const LINE_CONTINUES: &str = " [slipway: line continues]";

/// What a secret is replaced by.
const MASK: &str = "********";

/// Sends the lines of one run of a workload into the pipeline. Cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    messages: mpsc::Sender<Message>,
    workload_id: WorkloadId,
    generation: u64,
    stage: watch::Receiver<Stage>,
    /// Secret values, masked in every line.
    redactions: Arc<Vec<String>>,
    max_line_bytes: usize,
}

impl LogSink {
    pub(super) fn new(
        messages: mpsc::Sender<Message>,
        workload_id: WorkloadId,
        generation: u64,
        stage: watch::Receiver<Stage>,
        max_line_bytes: usize,
    ) -> Self {
        Self {
            messages,
            workload_id,
            generation,
            stage,
            redactions: Arc::new(Vec::new()),
            max_line_bytes,
        }
    }

    /// The same sink, masking these values wherever they appear in a line.
    pub fn with_redactions(mut self, values: Vec<String>) -> Self {
        self.redactions = Arc::new(
            values
                .into_iter()
                .filter(|value| !value.is_empty())
                .collect(),
        );
        self
    }

    /// Lines are stored in pieces of at most this many bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// How many bytes past a cut a secret that starts before it may reach: a
    /// reader of raw output keeps this many more bytes than a piece before
    /// cutting, and masks them first ([`LogSink::mask_bytes`]).
    pub fn secret_overlap(&self) -> usize {
        self.redactions
            .iter()
            .map(|secret| secret.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
    }

    /// Masks every secret in raw output bytes.
    pub fn mask_bytes(&self, bytes: &mut Vec<u8>) {
        for secret in self.redactions.iter() {
            let secret = secret.as_bytes();
            if bytes.len() < secret.len() {
                continue;
            }
            let mut masked = Vec::with_capacity(bytes.len());
            let mut rest: &[u8] = bytes;
            let mut found = false;
            while let Some(at) = rest
                .windows(secret.len())
                .position(|window| window == secret)
            {
                found = true;
                masked.extend_from_slice(&rest[..at]);
                masked.extend_from_slice(MASK.as_bytes());
                rest = &rest[at + secret.len()..];
            }
            if found {
                masked.extend_from_slice(rest);
                *bytes = masked;
            }
        }
    }

    /// Hands a line over: NUL bytes become U+FFFD (PostgreSQL text cannot hold
    /// NUL; both databases store the same), secrets are masked, and a line
    /// longer than the maximum goes as pieces, each but the last ending with
    /// [`LINE_CONTINUES`]. Waits while the pipeline is full (back-pressure on
    /// the workload's output rather than a lost line).
    pub async fn send(&self, line: NewLogLine) {
        self.send_marked(line, false).await;
    }

    /// A piece of a line of output that goes on in the next one (a reader of
    /// raw output that cuts a line too long to hold).
    pub async fn output_continued(&self, stream: LogStream, message: String) {
        self.send_marked(NewLogLine::output(stream, message), true)
            .await;
    }

    async fn send_marked(&self, mut line: NewLogLine, continues: bool) {
        if line.message.contains('\0') {
            line.message = line.message.replace('\0', "\u{FFFD}");
        }
        for secret in self.redactions.iter() {
            if line.message.contains(secret.as_str()) {
                line.message = line.message.replace(secret.as_str(), MASK);
            }
        }
        let pieces = split(&line.message, self.max_line_bytes);
        let count = pieces.len();
        if count == 1 && !continues {
            return self.deliver(line).await;
        }
        let pieces: Vec<String> = pieces.into_iter().map(str::to_owned).collect();
        for (index, piece) in pieces.into_iter().enumerate() {
            let mut message = piece;
            if continues || index + 1 < count {
                message.push_str(LINE_CONTINUES);
            }
            self.deliver(NewLogLine {
                message,
                ..line.clone()
            })
            .await;
        }
    }

    async fn deliver(&self, line: NewLogLine) {
        let stage = *self.stage.borrow();
        let message = Message::Line {
            workload_id: self.workload_id.clone(),
            generation: self.generation,
            stage,
            line,
        };
        if self.messages.send(message).await.is_err() {
            tracing::warn!(workload_id = %self.workload_id, "log pipeline closed, line dropped");
        }
    }

    /// A line of the workload's own output.
    pub async fn output(&self, stream: LogStream, message: String) {
        self.send(NewLogLine::output(stream, message)).await;
    }

    /// One of Slipway's own lines about the workload.
    pub async fn system(&self, level: LogLevel, message: impl Into<String>) {
        self.send(NewLogLine::system(level, message)).await;
    }

    pub fn workload_id(&self) -> &WorkloadId {
        &self.workload_id
    }
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries (one
/// piece, the text itself, when it fits).
fn split(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while cut > 0 && !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // A character longer than the maximum (max < 4): keep it whole.
            cut = rest
                .char_indices()
                .nth(1)
                .map_or(rest.len(), |(index, _)| index);
        }
        let (piece, after) = rest.split_at(cut);
        pieces.push(piece);
        rest = after;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn long_text_is_split_at_character_boundaries() {
        assert_eq!(split("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(split("abcd", 4), ["abcd"]);
        assert_eq!(split("", 4), [""]);
        // é is two bytes: never cut in the middle.
        assert_eq!(split("aéé", 2), ["a", "é", "é"]);
        assert_eq!(split("éé", 1), ["é", "é"]);
    }
}
