//! Framing of newline-delimited JSON-RPC from a stdio server: bytes in, lines out, each line at
//! most a bound long (a longer one is skipped whole and reported). No IO and no dependencies, so
//! the fuzz target (`crates/vmcp-transport/fuzz`) checks this very code.

/// What one call to `Lines::feed` completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the bound, dropped.
    TooLong,
}

/// The line being read. Kept between reads, so that a cancelled read loses nothing.
#[derive(Debug)]
pub struct Lines {
    line: Vec<u8>,
    /// Whether the current line went over the bound and is being skipped.
    discarding: bool,
    max: usize,
}

impl Lines {
    pub fn new(max: usize) -> Self {
        Self {
            line: Vec::new(),
            discarding: false,
            max,
        }
    }

    /// Takes bytes of `available` up to and including the first newline. Returns how many it
    /// took, and the line they completed, if they did.
    pub fn feed(&mut self, available: &[u8]) -> (usize, Option<Frame>) {
        let (chunk, end) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !self.discarding {
            if self.line.len() + chunk.len() > self.max {
                self.discarding = true;
                self.line = Vec::new();
            } else {
                self.line.extend_from_slice(chunk);
            }
        }
        match end {
            Some(consumed) => {
                let frame = if std::mem::replace(&mut self.discarding, false) {
                    Frame::TooLong
                } else {
                    Frame::Line(std::mem::take(&mut self.line))
                };
                (consumed, Some(frame))
            }
            None => (available.len(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (n, frame) = lines.feed(rest);
                out.extend(frame);
                rest = &rest[n..];
            }
        }
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_skips_long_ones() {
        assert_eq!(
            frames(5, &[b"ab", b"c\nde", b"\n\n0123456789", b"\nxy"]),
            [
                Frame::Line(b"abc".to_vec()),
                Frame::Line(b"de".to_vec()),
                Frame::Line(vec![]),
                Frame::TooLong,
            ]
        );
        assert_eq!(
            frames(3, &[b"abc\nabcd\n"]),
            [Frame::Line(b"abc".to_vec()), Frame::TooLong]
        );
    }
}
