//! Reading a pipe line by line into the log, with a cap on line length.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::{domain::LogStream, logs::LogSink};

/// Longer lines are cut here, with a marker saying how much was cut.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads `pipe` to its end, one log line per line of output. A line longer than
/// [`MAX_LINE_BYTES`] is cut and marked; invalid UTF-8 is replaced.
pub async fn forward_lines<R: AsyncRead + Unpin>(pipe: R, stream: LogStream, logs: LogSink) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line: Vec<u8> = Vec::new();
    let mut cut_bytes: usize = 0;
    loop {
        let available = match reader.fill_buf().await {
            Ok(available) => available,
            Err(error) => {
                tracing::warn!(%error, workload_id = %logs.workload_id(), "reading output failed");
                break;
            }
        };
        if available.is_empty() {
            break;
        }
        let (chunk, found_newline) = match available.iter().position(|byte| *byte == b'\n') {
            Some(index) => (&available[..index], true),
            None => (available, false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        let taken = chunk.len().min(room);
        line.extend_from_slice(&chunk[..taken]);
        cut_bytes += chunk.len() - taken;
        let consumed = chunk.len() + usize::from(found_newline);
        reader.consume(consumed);
        if found_newline {
            emit(&logs, stream, &mut line, &mut cut_bytes).await;
        }
    }
    if !line.is_empty() || cut_bytes > 0 {
        emit(&logs, stream, &mut line, &mut cut_bytes).await;
    }
}

async fn emit(logs: &LogSink, stream: LogStream, line: &mut Vec<u8>, cut_bytes: &mut usize) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut message = String::from_utf8_lossy(line).into_owned();
    if *cut_bytes > 0 {
        message.push_str(&format!(" [slipway: line cut, {} more bytes]", *cut_bytes));
    }
    logs.output(stream, message).await;
    line.clear();
    *cut_bytes = 0;
}
