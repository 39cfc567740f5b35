//! Variable substitution in tool and prompt arguments: `@param:name`, `@config:key`,
//! `@tool(server.tool)`, `@resource(server.uri)`, `@prompt(server.prompt)` and the `@@` escape.
//!
//! Pure: no IO. Values come from a [`Resolver`] (params and config synchronously, nested tool,
//! resource and prompt calls asynchronously), which the gateway implements over a vMCP.
//!
//! Semantics: a string that is exactly one pattern takes the pattern's JSON value (a number stays
//! a number); a pattern inside a longer string is interpolated as text (strings as they are, other
//! values as JSON). Objects and arrays are walked; keys are never substituted. Results of nested
//! calls are never scanned for patterns. Errors name the argument's path, the pattern, its
//! position in the string and the reason; the whole substitution fails on the first error.

mod eval;
mod parse;

pub use eval::{Limits, Resolver, SubstitutionError, substitute, substitute_map};
pub use parse::{Kind, ParseError, Pattern, Segment, parse};

/// Whether a string may hold a pattern (cheap pre-check: it has an `@`).
pub fn may_contain_patterns(s: &str) -> bool {
    s.contains('@')
}
