//! Reading a pipe line by line into the log, holding at most about one line's
//! maximum size (the sink's `max_line_bytes`) whatever the output.

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::{domain::LogStream, logs::LogSink};

/// Reads `pipe` to its end, one log line per line of output; invalid UTF-8 is
/// replaced. A line longer than the sink's maximum is stored as pieces, each but
/// the last ending with [`crate::logs::LINE_CONTINUES`]; secrets are masked
/// before a line is cut, so that no piece holds part of one.
pub async fn forward_lines<R: AsyncRead + Unpin>(pipe: R, stream: LogStream, logs: LogSink) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line: Vec<u8> = Vec::new();
    let max = logs.max_line_bytes();
    // Bytes kept past a cut so that a secret crossing it is seen whole.
    let hold = max + logs.secret_overlap();
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
        line.extend_from_slice(chunk);
        let consumed = chunk.len() + usize::from(found_newline);
        reader.consume(consumed);
        if line.len() > hold {
            // Masked once here: what is cut below holds no secret, and a
            // secret that starts in the bytes kept is masked with the next chunk.
            logs.mask_bytes(&mut line);
        }
        while line.len() > hold {
            let piece = cut(&mut line, max);
            logs.output_continued(stream, piece).await;
        }
        if found_newline {
            emit(&logs, stream, &mut line).await;
        }
    }
    if !line.is_empty() {
        emit(&logs, stream, &mut line).await;
    }
}

/// Takes the first piece of at most `max` bytes off `line`, not cutting a UTF-8
/// character in two when there is a boundary to cut at.
fn cut(line: &mut Vec<u8>, max: usize) -> String {
    let mut at = max.min(line.len());
    let is_continuation = |byte: u8| byte & 0b1100_0000 == 0b1000_0000;
    while at > 0 && at < line.len() && is_continuation(line[at]) && max - at < 3 {
        at -= 1;
    }
    if at == 0 {
        at = max.min(line.len());
    }
    let piece: Vec<u8> = line.drain(..at).collect();
    String::from_utf8_lossy(&piece).into_owned()
}

async fn emit(logs: &LogSink, stream: LogStream, line: &mut Vec<u8>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let message = String::from_utf8_lossy(line).into_owned();
    logs.output(stream, message).await;
    line.clear();
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn a_cut_keeps_utf8_characters_whole() {
        let mut line = "aé€".as_bytes().to_vec();
        assert_eq!(cut(&mut line, 2), "a");
        assert_eq!(cut(&mut line, 2), "é");
        assert_eq!(cut(&mut line, 3), "€");
        assert!(line.is_empty());
        let mut ascii = b"abcdef".to_vec();
        assert_eq!(cut(&mut ascii, 4), "abcd");
        assert_eq!(ascii, b"ef");
    }
}
