//! A bounded log of what a server wrote to stderr (and what it wrote to stdout that was not
//! JSON-RPC), kept across reconnects so that a server that fails to start can be diagnosed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

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

/// Cheap to clone; clones share the buffer.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<VecDeque<LogLine>>>);

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
    pub fn push(&self, text: &str) {
        let line = LogLine {
            at: time::now(),
            text: cut(text.trim_end()),
        };
        let mut lines = self.0.lock().expect("log lock");
        if lines.len() == MAX_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// All kept lines, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.0.lock().expect("log lock").iter().cloned().collect()
    }

    /// The last `n` lines' text, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.0.lock().expect("log lock");
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .map(|l| l.text.clone())
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().expect("log lock").clear();
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
}
