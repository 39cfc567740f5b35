//! Matching a URI against an RFC 6570 URI template, enough to route `resources/read`: literal
//! text must match exactly; a `{var}` expression matches one or more characters other than `/`,
//! `?` and `#`; a reserved (`{+var}`) or fragment (`{#var}`) expression matches anything; path
//! (`{/var}`), label (`{.var}`) and query (`{?a,b}`, `{&a}`) expressions match their prefix
//! character followed by what a simple expression matches (query ones: the rest of the URI).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// An expression: the operator (if any).
    Expr(Option<char>),
}

/// A parsed URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

impl UriTemplate {
    pub fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            match rest[open..].find('}') {
                Some(close) => {
                    let expr = &rest[open + 1..open + close];
                    let op = expr
                        .chars()
                        .next()
                        .filter(|c| matches!(c, '+' | '#' | '/' | '.' | ';' | '?' | '&'));
                    parts.push(Part::Expr(op));
                    rest = &rest[open + close + 1..];
                }
                None => {
                    // An unclosed brace is literal text.
                    parts.push(Part::Literal(rest[open..].to_string()));
                    rest = "";
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Self { parts }
    }

    /// Whether the template has no expression (it names one URI).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn matches(&self, uri: &str) -> bool {
        match_parts(&self.parts, uri)
    }
}

fn simple_char(c: char) -> bool {
    !matches!(c, '/' | '?' | '#')
}

fn match_parts(parts: &[Part], uri: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return uri.is_empty();
    };
    match first {
        Part::Literal(l) => uri
            .strip_prefix(l.as_str())
            .is_some_and(|tail| match_parts(rest, tail)),
        Part::Expr(op) => {
            let (body, any) = match op {
                Some('+' | '#') => (uri, true),
                Some('?' | '&') => {
                    // Optional: the query may be absent.
                    if match_parts(rest, uri) {
                        return true;
                    }
                    match uri.strip_prefix(op.unwrap()) {
                        Some(b) => (b, true),
                        None => return false,
                    }
                }
                Some(p @ ('/' | '.' | ';')) => match uri.strip_prefix(*p) {
                    Some(b) => (b, false),
                    // Path-style expressions may expand to nothing.
                    None => return match_parts(rest, uri),
                },
                _ => (uri, false),
            };
            // Try every split of one or more characters, longest last.
            let mut ends: Vec<usize> = body
                .char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain(std::iter::once(body.len()))
                .collect();
            if body.is_empty() {
                ends.clear();
            }
            for end in ends {
                let value = &body[..end];
                if !any && !value.chars().all(simple_char) {
                    break;
                }
                if match_parts(rest, &body[end..]) {
                    return true;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UriTemplate;

    fn m(t: &str, uri: &str) -> bool {
        UriTemplate::parse(t).matches(uri)
    }

    #[test]
    fn simple_expressions_match_one_segment() {
        assert!(m("test://template/{id}/data", "test://template/42/data"));
        assert!(!m("test://template/{id}/data", "test://template//data"));
        assert!(!m("test://template/{id}/data", "test://template/4/2/data"));
        assert!(m("fixture://{name}/items/{id}", "fixture://a/items/7"));
        assert!(!m("fixture://{name}/items/{id}", "fixture://a/things/7"));
        assert!(m("file:///{path}", "file:///notes.txt"));
        assert!(!m("file:///{path}", "file:///dir/notes.txt"));
    }

    #[test]
    fn reserved_and_path_expressions() {
        assert!(m("file:///{+path}", "file:///dir/notes.txt"));
        assert!(m("repo://{owner}{/name}", "repo://me/project"));
        assert!(m("repo://{owner}{/name}", "repo://me"));
        assert!(m("search://items{?q,limit}", "search://items?q=x&limit=3"));
        assert!(m("search://items{?q,limit}", "search://items"));
    }

    #[test]
    fn literal_templates() {
        assert!(UriTemplate::parse("test://static-text").is_literal());
        assert!(m("test://static-text", "test://static-text"));
        assert!(!m("test://static-text", "test://static-text2"));
        assert!(m("odd://{unclosed", "odd://{unclosed"));
    }
}
