//! Tool search: which of a vMCP's tools fits a sentence like "take a screenshot of the checkout
//! page". Two rankings, blended:
//! - words: a BM25 index (Robertson and Zaragoza's probabilistic relevance framework;
//!   BM25F-style field weights) over each tool's exposed name, its server's name, its
//!   description and its parameters' names and descriptions (following local `$ref`s), with
//!   light stemming and a small table of general-purpose synonyms for the verbs and nouns tools
//!   are named with;
//! - meaning: static embeddings (`semantic.rs`) of the query and of each tool's name, server
//!   and the start of its description, compared by cosine, which finds tools that share no
//!   word with the query.
//!
//! Why our own few hundred lines and not a dependency: the full-text engines on crates.io
//! (tantivy, and the SQLite FTS5 that ToolHive uses) are built for documents on disk and bring
//! tens of crates or a C library for what is, here, a thousand short documents in memory that
//! are rebuilt whenever a catalog changes; and a sentence-embedding runtime (ONNX, candle) with
//! a transformer model would weigh more than vMCP itself and could not be fetched at run time.
//! Static embeddings are a table lookup and a mean: 8 MB of data in the binary, no dependency,
//! and a search still answers in well under a millisecond at 1,000 tools (docs/benchmarks.md).
//! The evaluation in docs/tool-search.md says what each part brings and where search misses.
//!
//! Pure: no IO, no runtime; the gateway feeds it its aggregated catalog.

use std::collections::HashMap;

use serde_json::Value;

pub mod eval;
mod semantic;

/// A tool as the index sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// The name clients call it by (the vMCP's exposed name).
    pub name: String,
    /// The member server's name.
    pub server: String,
    pub description: String,
    /// Parameter names and descriptions.
    pub parameters: Vec<(String, String)>,
}

impl Document {
    /// A document from an MCP tool definition (`name`, `description`, `inputSchema`).
    pub fn from_tool(server: &str, tool: &Value) -> Self {
        let mut parameters = Vec::new();
        if let Some(schema) = tool.get("inputSchema") {
            collect_parameters(schema, schema, 0, &mut parameters);
        }
        Self {
            name: tool["name"].as_str().unwrap_or_default().to_string(),
            server: server.to_string(),
            description: tool["description"].as_str().unwrap_or_default().to_string(),
            parameters,
        }
    }
}

/// The properties of a schema (and of the schemas it nests or references locally), up to a
/// small depth.
fn collect_parameters(root: &Value, schema: &Value, depth: usize, out: &mut Vec<(String, String)>) {
    if depth > 3 || out.len() > 64 {
        return;
    }
    let schema = resolve(root, schema);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let prop = resolve(root, prop);
            let description = prop["description"].as_str().unwrap_or_default().to_string();
            out.push((name.clone(), description));
            collect_parameters(root, prop, depth + 1, out);
            if let Some(items) = prop.get("items") {
                collect_parameters(root, items, depth + 1, out);
            }
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            for s in list {
                collect_parameters(root, s, depth + 1, out);
            }
        }
    }
}

/// A local `$ref` (`#/$defs/X`, `#/definitions/X`), followed once.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => root.pointer(&r[1..]).unwrap_or(schema),
        _ => schema,
    }
}

/// How much a term counts in each field (BM25F-style: a field's weight multiplies its term
/// frequencies).
const NAME: f32 = 3.0;
const SERVER: f32 = 1.5;
const DESCRIPTION: f32 = 1.0;
const PARAMETER_NAME: f32 = 1.0;
const PARAMETER_DESCRIPTION: f32 = 0.4;
/// A synonym's weight in a query, against the word the user typed.
const SYNONYM: f32 = 0.35;
/// The first sentence of a description says what the tool does; the rest is usage notes.
const FIRST_SENTENCE_BONUS: f32 = 0.6;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Which ranking a search uses (`Index::search` blends both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Blended,
    /// BM25 alone.
    Words,
    /// The embeddings' cosine alone.
    Meaning,
}

/// A match: the document's position in the input, and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub index: usize,
    pub score: f32,
}

/// How much the word ranking counts in the blend (the meaning ranking counts the rest). Each
/// ranking is scaled first: BM25 by the query's best score, the cosine from the catalog's mean
/// (0) to the query's best (1). Chosen on the tuning half of the evaluation set (0.4 to 0.7
/// differ by a point or two).
const WORDS: f32 = 0.6;
/// What the meaning ranking sees of a description: its start says what the tool does.
const MEANING_DESCRIPTION_CHARS: usize = 200;

/// An index over a set of tools.
#[derive(Default)]
pub struct Index {
    /// term -> (document, weighted term frequency)
    postings: HashMap<String, Vec<(u32, f32)>>,
    lengths: Vec<f32>,
    average_length: f32,
    /// Each document's embedding, unit length (zero for a document without text).
    vectors: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("documents", &self.lengths.len())
            .field("terms", &self.postings.len())
            .finish()
    }
}

/// The text the meaning ranking embeds for a tool: its name's words, its server, and the start
/// of its description.
fn meaning_text(doc: &Document) -> String {
    let mut text = words(&doc.name).join(" ");
    text.push_str(" . ");
    text.push_str(&doc.server);
    text.push_str(" . ");
    let description = match doc
        .description
        .char_indices()
        .nth(MEANING_DESCRIPTION_CHARS)
    {
        Some((end, _)) => &doc.description[..end],
        None => &doc.description,
    };
    text.push_str(description);
    text
}

impl Index {
    pub fn build<'a>(documents: impl IntoIterator<Item = &'a Document>) -> Self {
        let mut postings: HashMap<String, Vec<(u32, f32)>> = HashMap::new();
        let mut lengths = Vec::new();
        // Tool texts repeat their words: each is stemmed once.
        let mut stems: HashMap<String, String> = HashMap::new();
        let model = &*semantic::MODEL;
        let mut tokens = semantic::take_word_tokens();
        let mut vectors = Vec::new();
        for (i, doc) in documents.into_iter().enumerate() {
            vectors.push(
                model
                    .embed(&meaning_text(doc), &mut tokens)
                    .unwrap_or_else(|| vec![0.0; model.dimensions]),
            );
            let mut tf: HashMap<String, f32> = HashMap::new();
            // Summed as the words come (not over the map, whose order changes between runs).
            let mut length = 0f32;
            let mut add = |text: &str, weight: f32| {
                for word in words(text) {
                    let lower = word.to_lowercase();
                    if !keep(&lower) {
                        continue;
                    }
                    let t = match stems.get(&lower) {
                        Some(t) => t.clone(),
                        None => {
                            let t = stem(&lower);
                            stems.insert(lower, t.clone());
                            t
                        }
                    };
                    *tf.entry(t).or_default() += weight;
                    length += weight;
                }
            };
            add(&doc.name, NAME);
            add(&doc.server, SERVER);
            add(&doc.description, DESCRIPTION);
            add(first_sentence(&doc.description), FIRST_SENTENCE_BONUS);
            for (name, description) in &doc.parameters {
                add(name, PARAMETER_NAME);
                add(description, PARAMETER_DESCRIPTION);
            }
            lengths.push(length);
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            for (term, f) in tf {
                postings.entry(term).or_default().push((id, f));
            }
        }
        semantic::keep_word_tokens(tokens);
        let average_length = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<f32>() / lengths.len() as f32).max(1.0)
        };
        Self {
            postings,
            lengths,
            average_length,
            vectors,
        }
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The best `limit` matches of `query`, best first (ties: the earlier document first). A
    /// query without terms (only stopwords) matches nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        self.search_ranked(query, limit, Ranking::Blended)
    }

    /// `search` with one ranking alone, or both (what the evaluation compares).
    pub fn search_ranked(&self, query: &str, limit: usize, ranking: Ranking) -> Vec<Hit> {
        let query_terms = terms(query);
        if query_terms.is_empty() || self.is_empty() {
            return Vec::new();
        }
        let (words_weight, meaning_weight) = match ranking {
            Ranking::Blended => (WORDS, 1.0 - WORDS),
            Ranking::Words => (1.0, 0.0),
            Ranking::Meaning => (0.0, 1.0),
        };
        let words = if words_weight > 0.0 {
            self.word_scores(&query_terms)
        } else {
            HashMap::new()
        };
        let best_words = words.values().copied().fold(0f32, f32::max);
        let meaning = (meaning_weight > 0.0)
            .then(|| semantic::MODEL.embed(query, &mut HashMap::new()))
            .flatten();
        let mut scores: Vec<f32> = vec![0.0; self.len()];
        if let Some(q) = &meaning {
            let cosines: Vec<f32> = self.vectors.iter().map(|v| semantic::dot(q, v)).collect();
            let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
            let best = cosines.iter().copied().fold(f32::MIN, f32::max);
            if best > mean {
                // From the catalog's mean (0) to the query's best (1); below the mean, nothing
                // (so a word match is never outweighed by a tool's distance in meaning).
                for (s, c) in scores.iter_mut().zip(&cosines) {
                    *s = meaning_weight * ((c - mean) / (best - mean)).max(0.0);
                }
            }
        }
        if best_words > 0.0 {
            for (&doc, &w) in &words {
                scores[doc as usize] += words_weight * w / best_words;
            }
        }
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .enumerate()
            .filter(|&(_, score)| score > 0.0)
            .map(|(index, score)| Hit { index, score })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.index.cmp(&b.index))
        });
        hits.truncate(limit);
        hits
    }

    /// BM25 scores of the documents that hold any of the terms (or their synonyms).
    fn word_scores(&self, query_terms: &[String]) -> HashMap<u32, f32> {
        let n = self.lengths.len() as f32;
        // Ordered, so that scores are summed in the same order every time (equal scores then
        // rank alike on every run).
        let mut weights: std::collections::BTreeMap<String, f32> = Default::default();
        for t in query_terms.iter().cloned() {
            for s in synonyms(&t) {
                // The index holds stems: so must the synonyms.
                let s = stem(s);
                if s != t {
                    let w = weights.entry(s).or_default();
                    *w = w.max(SYNONYM);
                }
            }
            weights.insert(t, 1.0);
        }
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for (term, weight) in &weights {
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let length = self.lengths[doc as usize];
                let norm =
                    tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / self.average_length));
                *scores.entry(doc).or_default() += weight * idf * norm;
            }
        }
        scores
    }
}

fn first_sentence(text: &str) -> &str {
    let end = text
        .find(". ")
        .or_else(|| text.find('\n'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Words that say nothing about what a tool does.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "already",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "e",
    "eg",
    "etc",
    "few",
    "for",
    "from",
    "further",
    "g",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "ie",
    "if",
    "im",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "ll",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "please",
    "re",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "ve",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "yes",
    "you",
    "your",
    "yours",
    "yourself",
    "want",
    "need",
    "tell",
    "give",
    "using",
    "use",
    "used",
    "whether",
    "d",
    "m",
    "like",
    "still",
    "thing",
    "things",
    "something",
    "anything",
    "everything",
    "ever",
    "every",
    "really",
    "right",
    "okay",
];

/// The terms of a text: words split at case changes, digits and punctuation (so `getFileInfo`,
/// `get_file_info` and `get-file-info` read alike), lowercased, without stopwords, stemmed.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(str::to_lowercase)
        .filter(|w| keep(w))
        .map(|w| stem(&w))
        .collect()
}

/// Whether a (lowercased) word is a term: not a single letter, a number or a stopword.
fn keep(word: &str) -> bool {
    word.len() >= 2 && !word.chars().all(|c| c.is_ascii_digit()) && !STOPWORDS.contains(&word)
}

/// Words, split at non-alphanumerics and at camelCase boundaries (`HTTPServer` → `HTTP`,
/// `Server`).
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for chunk in text.split(|c: char| !c.is_alphanumeric()) {
        if chunk.is_empty() {
            continue;
        }
        let chars: Vec<(usize, char)> = chunk.char_indices().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (at, c) = chars[i];
            let prev = chars[i - 1].1;
            let next_lower = chars.get(i + 1).is_some_and(|(_, n)| n.is_lowercase());
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_uppercase() && c.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && c.is_ascii_digit())
                || (prev.is_ascii_digit() && c.is_alphabetic());
            if boundary {
                out.push(&chunk[start..at]);
                start = at;
            }
        }
        out.push(&chunk[start..]);
    }
    out
}

/// Snowball's English stemmer (Porter 2), the same for queries and tools: `reviewers`,
/// `reviewed` and `review` meet.
fn stem(word: &str) -> String {
    static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> = std::sync::LazyLock::new(|| {
        rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English)
    });
    STEMMER.stem(word).into_owned()
}

/// General-purpose synonyms of the words tools are named with (stemmed forms). Each group is a
/// set of interchangeable words; a query word adds the others at a lower weight.
const SYNONYMS: &[&[&str]] = &[
    &["find", "search", "lookup", "look", "query", "locate"],
    &["delete", "remove", "erase", "drop", "destroy", "discard"],
    &["create", "add", "new", "make", "insert", "register"],
    &[
        "update", "edit", "modify", "change", "set", "patch", "rename",
    ],
    &["list", "show", "enumerate", "browse"],
    &[
        "get", "fetch", "retrieve", "read", "load", "download", "open",
    ],
    &["run", "execute", "exec", "invoke", "start", "launch"],
    &["stop", "kill", "terminate", "cancel", "end"],
    &["screenshot", "capture", "snapshot"],
    &["navigate", "visit", "go", "browse", "url", "page"],
    &["click", "press", "tap"],
    &["type", "fill", "enter", "input"],
    &["write", "save", "store", "put"],
    &["send", "post", "message", "notify"],
    &["file", "document", "doc"],
    &["folder", "directory", "dir"],
    &["repo", "repository", "project"],
    &["issue", "ticket", "bug", "task"],
    &["pr", "pull", "merge"],
    &["comment", "reply", "note"],
    &["user", "member", "person", "people", "account"],
    &["channel", "room", "chat"],
    &["email", "mail"],
    &["image", "picture", "photo"],
    &["log", "logs", "event"],
    &["error", "exception", "failure", "crash"],
    &["database", "db", "sql", "table"],
    &["deploy", "release", "ship"],
    &["price", "pricing", "cost"],
    &["weather", "forecast"],
    &["direction", "route", "distance"],
    &["place", "location", "address"],
    &["time", "clock", "timezone"],
    &["calculate", "compute", "math"],
    &["summary", "summarize"],
    &["web", "internet", "online"],
];

fn synonyms(term: &str) -> impl Iterator<Item = &'static str> + '_ {
    SYNONYMS
        .iter()
        .filter(move |group| group.iter().any(|w| stem(w) == term))
        .flat_map(|group| group.iter().copied())
        .filter(move |w| *w != term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_split_alike_in_every_style() {
        assert_eq!(terms("getFileInfo"), ["get", "file", "info"]);
        assert_eq!(terms("get_file_info"), ["get", "file", "info"]);
        assert_eq!(terms("get-file.info"), ["get", "file", "info"]);
        assert_eq!(terms("HTTPServer2Go"), ["http", "server", "go"]);
        assert_eq!(
            terms("Listing the pull requests"),
            ["list", "pull", "request"]
        );
        assert_eq!(terms("stopped running branches"), ["stop", "run", "branch"]);
        assert_eq!(terms("reviewers reviewed"), ["review", "review"]);
    }

    #[test]
    fn parameters_are_read_through_local_refs() {
        let tool = json!({
            "name": "create_page",
            "description": "Create a page",
            "inputSchema": {
                "type": "object",
                "properties": {"parent": {"$ref": "#/$defs/parent"}},
                "$defs": {"parent": {"type": "object", "description": "Where it goes",
                          "properties": {"database_id": {"type": "string"}}}}
            }
        });
        let doc = Document::from_tool("notion", &tool);
        let names: Vec<&str> = doc.parameters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["parent", "database_id"]);
        assert_eq!(doc.parameters[0].1, "Where it goes");
    }

    fn docs() -> Vec<Document> {
        let tool = |server: &str, name: &str, description: &str| Document {
            name: format!("{server}.{name}"),
            server: server.into(),
            description: description.into(),
            parameters: vec![],
        };
        vec![
            tool(
                "browser",
                "take_screenshot",
                "Capture the current page as a PNG image",
            ),
            tool("browser", "navigate", "Open a URL in the browser"),
            tool("git", "git_status", "Show the working tree status"),
            tool(
                "github",
                "list_pull_requests",
                "List pull requests of a repository",
            ),
            tool("time", "get_current_time", "The current time in a timezone"),
        ]
    }

    #[test]
    fn the_best_match_comes_first_and_limit_holds() {
        let docs = docs();
        let index = Index::build(&docs);
        let hits = index.search("take a screenshot of the checkout page", 3);
        assert_eq!(docs[hits[0].index].name, "browser.take_screenshot");
        assert!(hits.len() <= 3);
        let hits = index.search("which pull requests are open in vmcp", 5);
        assert_eq!(docs[hits[0].index].name, "github.list_pull_requests");
        let hits = index.search("what time is it in Tokyo", 1);
        assert_eq!(docs[hits[0].index].name, "time.get_current_time");
        // A synonym finds what the words alone do not (and is stemmed like the index).
        let hits = index.search("snapshot of the screen", 1);
        assert_eq!(docs[hits[0].index].name, "browser.take_screenshot");
        let hits = index.search("visit vmcp.dev", 1);
        assert_eq!(docs[hits[0].index].name, "browser.navigate");
        // Meaning finds what shares no word with the query (no term of it is in the index).
        let hits = index.search("is it already morning in Auckland?", 1);
        assert_eq!(docs[hits[0].index].name, "time.get_current_time");
        let hits = index.search("which files did I modify but not commit", 1);
        assert_eq!(docs[hits[0].index].name, "git.git_status");
        assert!(index.search("the of and", 5).is_empty());
    }

    #[test]
    fn words_and_meaning_each_count() {
        let docs = docs();
        let index = Index::build(&docs);
        let ids = |q: &str| -> Vec<usize> { index.search(q, 5).iter().map(|h| h.index).collect() };
        // Words only: a name the embeddings know nothing of still finds its tool first.
        assert_eq!(ids("git_status")[0], 2);
        // A word match is never dropped, however far in meaning; no score passes 1.
        for q in [
            "open pull requests",
            "current page image",
            "tree",
            "zzz qqq",
        ] {
            let blended = index.search(q, 10);
            for h in index.search_ranked(q, 10, Ranking::Words) {
                assert!(blended.iter().any(|b| b.index == h.index), "{q}: {h:?}");
            }
            assert!(
                blended.iter().all(|h| h.score <= 1.0 + 1e-6),
                "{q}: {blended:?}"
            );
        }
        assert!(Index::build(&[]).search("anything", 5).is_empty());
    }
}
