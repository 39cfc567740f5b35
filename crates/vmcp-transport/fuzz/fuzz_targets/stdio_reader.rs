//! The stdio JSON-RPC reader: arbitrary bytes from a server's stdout, arriving in arbitrary
//! chunks. The framer never panics, gives exactly the newline-separated lines of the input
//! (those over the bound reported as too long, the unterminated tail held back) whatever the
//! chunking, and each line either parses as a JSON-RPC message that re-serializes and parses
//! again, or is refused with an error: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmcp::model::ServerJsonRpcMessage;

#[path = "../../src/lines.rs"]
#[allow(dead_code)]
mod lines;

use lines::{Frame, Lines};

const MAX: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    // Chunk sizes from the seed: 1..=16, cycling.
    let mut framer = Lines::new(MAX);
    let mut frames = Vec::new();
    let mut rest = bytes;
    let mut step = usize::from(seed % 16) + 1;
    while !rest.is_empty() {
        let mut chunk = &rest[..step.min(rest.len())];
        rest = &rest[chunk.len()..];
        while !chunk.is_empty() {
            let (n, frame) = framer.feed(chunk);
            assert!(n >= 1 && n <= chunk.len());
            frames.extend(frame);
            chunk = &chunk[n..];
        }
        step = step % 16 + 1;
    }

    let mut expected: Vec<Frame> = bytes
        .split(|b| *b == b'\n')
        .map(|l| if l.len() > MAX { Frame::TooLong } else { Frame::Line(l.to_vec()) })
        .collect();
    expected.pop(); // the part after the last newline is not a line yet
    assert_eq!(frames, expected);

    for frame in frames {
        if let Frame::Line(line) = frame
            && let Ok(message) = serde_json::from_slice::<ServerJsonRpcMessage>(&line)
        {
            let text = serde_json::to_vec(&message).expect("a parsed message serializes");
            serde_json::from_slice::<ServerJsonRpcMessage>(&text)
                .expect("a serialized message parses again");
        }
    }
});
