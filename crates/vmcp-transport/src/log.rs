//! A bounded log of what a server wrote to stderr (and what it wrote to stdout that was not
//! JSON-RPC), kept across reconnects so that a server that fails to start can be diagnosed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use vmcp_domain::{Timestamp, time};

/// Lines kept per server.
pub const MAX_LINES: usize = 500;
/// Longest line kept, in bytes; longer lines are cut.
pub const MAX_LINE_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: Timestamp,
    pub text: String,
}

/// Cheap to clone; clones share the buffer. Every line is scrubbed of the secret values set
/// with `set_secrets` before it is kept (the server's own secrets and those of the vMCPs that
/// use it: a server may echo what it was given).
#[derive(Debug, Clone, Default)]
pub struct LogBuffer {
    lines: Arc<Mutex<VecDeque<LogLine>>>,
    secrets: Arc<RwLock<Arc<[String]>>>,
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE_BYTES {
        return s.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

impl LogBuffer {
    /// Keeps `text` (scrubbed, cut).
    pub fn push(&self, text: &str) {
        self.keep(text);
    }

    /// Keeps `text` (scrubbed, cut) and returns what was kept.
    pub fn keep(&self, text: &str) -> String {
        let line = LogLine {
            at: time::now(),
            text: cut(&self.scrub(text.trim_end())),
        };
        let kept = line.text.clone();
        let mut lines = self.lines.lock().expect("log lock");
        if lines.len() == MAX_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
        kept
    }

    /// The secret values to mask in lines pushed from now on.
    pub fn set_secrets(&self, secrets: Arc<[String]>) {
        *self.secrets.write().expect("log secrets lock") = secrets;
    }

    /// `text` with the secret values masked (for any text that comes from the server).
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.read().expect("log secrets lock").clone();
        vmcp_domain::secrets::scrub(text, &secrets).unwrap_or_else(|| text.to_string())
    }

    /// All kept lines, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .expect("log lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The last `n` lines' text, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().expect("log lock");
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .map(|l| l.text.clone())
            .collect()
    }

    pub fn clear(&self) {
        self.lines.lock().expect("log lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_and_cuts_long_ones() {
        let log = LogBuffer::default();
        for i in 0..(MAX_LINES + 10) {
            log.push(&format!("line {i}\n"));
        }
        let lines = log.lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0].text, "line 10");
        assert_eq!(log.tail(2), ["line 508", "line 509"]);
        log.push(&"é".repeat(MAX_LINE_BYTES));
        let last = log.tail(1).pop().unwrap();
        assert!(
            last.ends_with(&format!("… ({} bytes)", 2 * MAX_LINE_BYTES)),
            "{last}"
        );
    }

    #[test]
    fn masks_secret_values() {
        let log = LogBuffer::default();
        log.set_secrets(vec!["hunter2-s3cret".to_string()].into());
        assert_eq!(
            log.keep("token=hunter2-s3cret and again hunter2-s3cret"),
            "token=******** and again ********"
        );
        assert_eq!(log.tail(1), ["token=******** and again ********"]);
    }
}
