//! The substitution parser on arbitrary input: it must never panic; each pattern's `source` must
//! be the input's text at its `position`; and rendering a parse back (text with `@` escaped as
//! `@@`, patterns as their source) must parse to the same segments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcp_substitution::{Segment, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(segments) = parse(input) else {
        return;
    };
    let chars: Vec<char> = input.chars().collect();
    let mut rendered = String::new();
    for s in &segments {
        match s {
            Segment::Text(t) => rendered.push_str(&t.replace('@', "@@")),
            Segment::Pattern(p) => {
                let at: String = chars[p.position..].iter().take(p.source.chars().count()).collect();
                assert_eq!(at, p.source, "source and position disagree in {input:?}");
                rendered.push_str(&p.source);
            }
        }
    }
    let again = parse(&rendered).expect("a rendered parse parses");
    let strip = |v: &[Segment]| -> Vec<String> {
        v.iter()
            .map(|s| match s {
                Segment::Text(t) => format!("T{t}"),
                Segment::Pattern(p) => format!("P{:?}", p.kind),
            })
            .collect()
    };
    assert_eq!(strip(&segments), strip(&again), "round trip differs for {input:?}");
});
