//! The grammar: a string is text with patterns in it.
//!
//! ```text
//! @@                          a literal @
//! @param:NAME                 NAME: [A-Za-z0-9_-] and inner dots (a trailing dot is text)
//! @config:PATH                same shape; a dot path into active_config
//! @tool(NAME)                 NAME: up to the first ',' or ')'
//! @tool(NAME, {JSON})         the tool's arguments, a JSON object
//! @prompt(NAME) / @prompt(NAME, {JSON})
//! @resource(TARGET)           TARGET: everything up to the matching ')' (parentheses nest),
//!                             commas included: `server.uri` or a bare URI
//! ```
//!
//! Any other `@` is text (`a@b.com` stays as it is).

use serde_json::{Map, Value};

/// A part of a parsed string.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text(String),
    Pattern(Pattern),
}

/// One pattern, with where it starts (a char offset) and its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub kind: Kind,
    pub position: usize,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Param(String),
    Config(String),
    Tool {
        name: String,
        args: Map<String, Value>,
    },
    Resource(String),
    Prompt {
        name: String,
        args: Map<String, Value>,
    },
}

/// A syntax error: where (char offset) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub pattern: String,
    pub reason: String,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Parses a string into text and patterns.
pub fn parse(input: &str) -> Result<Vec<Segment>, ParseError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(input.len(), |(b, _)| *b);
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c != '@' {
            text.push(c);
            i += 1;
            continue;
        }
        let rest = &input[byte_at(i + 1)..];
        if rest.starts_with('@') {
            text.push('@');
            i += 2;
            continue;
        }
        let keyword = ["param:", "config:", "tool(", "resource(", "prompt("]
            .into_iter()
            .find(|k| rest.starts_with(k));
        let Some(keyword) = keyword else {
            text.push('@');
            i += 1;
            continue;
        };
        let start = i;
        let body = i + 1 + keyword.chars().count();
        let (kind, end) = if keyword.ends_with(':') {
            let mut j = body;
            while j < chars.len() && name_char(chars[j].1) {
                j += 1;
            }
            // A trailing dot is punctuation, not part of the name.
            while j > body && chars[j - 1].1 == '.' {
                j -= 1;
            }
            let name = input[byte_at(body)..byte_at(j)].to_string();
            if name.is_empty() {
                return Err(ParseError {
                    position: start,
                    pattern: format!("@{keyword}"),
                    reason: format!("expected a name after @{keyword}"),
                });
            }
            let kind = if keyword == "param:" {
                Kind::Param(name)
            } else {
                Kind::Config(name)
            };
            (kind, j)
        } else {
            parse_call(input, &chars, keyword, start, body)?
        };
        if !text.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut text)));
        }
        out.push(Segment::Pattern(Pattern {
            kind,
            position: start,
            source: input[byte_at(start)..byte_at(end)].to_string(),
        }));
        i = end;
    }
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// `@tool(`, `@prompt(`, `@resource(`: returns the kind and the char index after `)`.
fn parse_call(
    input: &str,
    chars: &[(usize, char)],
    keyword: &str,
    start: usize,
    body: usize,
) -> Result<(Kind, usize), ParseError> {
    let byte_at = |i: usize| chars.get(i).map_or(input.len(), |(b, _)| *b);
    let head: String = format!("@{keyword}");
    let unclosed = |what: &str| ParseError {
        position: start,
        pattern: input[byte_at(start)..].chars().take(60).collect(),
        reason: format!("{what}: missing ')'"),
    };
    if keyword == "resource(" {
        let mut depth = 1;
        let mut j = body;
        while j < chars.len() {
            match chars[j].1 {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if j >= chars.len() {
            return Err(unclosed(&format!("{head}...)")));
        }
        let target = input[byte_at(body)..byte_at(j)].trim().to_string();
        if target.is_empty() {
            return Err(ParseError {
                position: start,
                pattern: format!("{head})"),
                reason: "expected a resource: @resource(server.uri)".into(),
            });
        }
        return Ok((Kind::Resource(target), j + 1));
    }
    let mut j = body;
    while j < chars.len() && !matches!(chars[j].1, ',' | ')') {
        j += 1;
    }
    if j >= chars.len() {
        return Err(unclosed(&format!("{head}...)")));
    }
    let name = input[byte_at(body)..byte_at(j)].trim().to_string();
    if name.is_empty() {
        return Err(ParseError {
            position: start,
            pattern: format!("{head})"),
            reason: format!("expected a name: {head}server.name)"),
        });
    }
    let mut args = Map::new();
    if chars[j].1 == ',' {
        let json_start = byte_at(j + 1);
        let mut stream =
            serde_json::Deserializer::from_str(&input[json_start..]).into_iter::<Value>();
        let value = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(ParseError {
                    position: start,
                    pattern: input[byte_at(start)..].chars().take(60).collect(),
                    reason: format!("the arguments after ',' are not valid JSON: {e}"),
                });
            }
            None => {
                return Err(unclosed(&format!("{head}{name}, ...)")));
            }
        };
        let Value::Object(map) = value else {
            return Err(ParseError {
                position: start,
                pattern: input[byte_at(start)..].chars().take(60).collect(),
                reason: "the arguments after ',' must be a JSON object".into(),
            });
        };
        args = map;
        let after = json_start + stream.byte_offset();
        let rest = &input[after..];
        let trimmed = rest.trim_start();
        if !trimmed.starts_with(')') {
            return Err(unclosed(&format!("{head}{name}, {{...}}")));
        }
        let close_byte = after + (rest.len() - trimmed.len());
        let close = chars
            .iter()
            .position(|(b, _)| *b == close_byte)
            .expect("a char boundary");
        j = close;
    }
    let kind = if keyword == "tool(" {
        Kind::Tool { name, args }
    } else {
        Kind::Prompt { name, args }
    };
    Ok((kind, j + 1))
}
