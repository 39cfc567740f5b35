//! Tool search figures: retrieval quality on the evaluation set (`xtask/data/tool-search/`),
//! the tokens an agent saves, and the search's latency at 1,000 and 10,000 tools.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use vmcp_search::eval::{self, Split};
use vmcp_search::{Document, Index, Ranking};

pub const BEGIN: &str = "<!-- search:begin -->";
pub const END: &str = "<!-- search:end -->";

fn load(dir: &Path, file: &str) -> Result<Value> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

/// Tokens, estimated as OpenAI's and Anthropic's guidance has it for English and JSON: about
/// four bytes per token (no tokenizer can be fetched here; the ratio is what matters).
fn tokens(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latency of one search (µs, p50 and p99) over `docs`, for every query.
fn latency(docs: &[Document], queries: &[String], rounds: usize) -> (f64, f64, f64) {
    let started = Instant::now();
    let index = Index::build(docs);
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut samples = Vec::new();
    for _ in 0..rounds {
        for q in queries {
            let t = Instant::now();
            std::hint::black_box(index.search(q, 5));
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    (
        build_ms,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
    )
}

pub fn section(data: &Path, quick: bool) -> Result<String> {
    let catalog = load(data, "catalog.json")?;
    let queries = load(data, "queries.json")?;
    let all = eval::evaluate(&catalog, &queries);
    let tuning = eval::evaluate_split(&catalog, &queries, Split::Tuning);
    let held = eval::evaluate_split(&catalog, &queries, Split::HeldOut);
    let small = eval::evaluate_in_vmcps_of(&catalog, &queries, 10);
    let words = eval::evaluate_ranked(&catalog, &queries, Split::All, Ranking::Words);
    let meaning = eval::evaluate_ranked(&catalog, &queries, Split::All, Ranking::Meaning);
    let servers = catalog["servers"].as_array().map_or(0, Vec::len);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BEGIN}\n## Tool search\n\n\
         {} real tool definitions of {servers} public MCP servers, named as a vMCP with the \
         default naming exposes them, and {} natural queries with the tools that serve them \
         (`xtask/data/tool-search/`, where each server's package and version is named). A \
         query is found at k when any of its expected tools is among the first k. The \
         even-numbered queries were the only ones looked at while choosing the weights and \
         synonyms; the odd-numbered ones were not, and say whether that choice generalizes. The \
         last row asks each query of a vMCP of 10 servers (those of its expected tools, and \
         others drawn at random with a fixed seed), as most vMCPs are. The search blends two \
         rankings (docs/tool-search.md); the last two rows show each alone.\n",
        all.tools, all.queries
    );
    let _ = writeln!(
        out,
        "| queries | recall@1 | recall@5 | MRR | target |\n| --- | --- | --- | --- | --- |"
    );
    for (label, q) in [
        ("all", &all),
        ("tuning half", &tuning),
        ("held-out half", &held),
        ("all, each in a vMCP of 10 servers", &small),
        ("all, words (BM25) alone", &words),
        ("all, meaning (embeddings) alone", &meaning),
    ] {
        let _ = writeln!(
            out,
            "| {label} ({}) | {:.3} | {:.3} | {:.3} | recall@5 ≥ 0.9, MRR ≥ 0.75: {} |",
            q.queries,
            q.recall_at_1,
            q.recall_at_5,
            q.mrr,
            if q.recall_at_5 >= 0.9 && q.mrr >= 0.75 {
                "met"
            } else {
                "**not met**"
            }
        );
    }

    // Token cost: the whole list against one search answer (as the MCP result carries it:
    // the structured content and the same JSON as text).
    let (_, docs, tools) = eval::catalog(&catalog);
    let list = serde_json::to_string(&json!({ "tools": tools }))?.len();
    let mut answers = Vec::new();
    let index = Index::build(&docs);
    for q in queries["queries"].as_array().into_iter().flatten() {
        let found: Vec<&Value> = index
            .search(q["query"].as_str().unwrap_or_default(), 5)
            .iter()
            .map(|h| &tools[h.index])
            .collect();
        let structured = json!({"tools": found, "of": tools.len()});
        let text = serde_json::to_string(&structured)?;
        answers.push(serde_json::to_string(&structured)?.len() + text.len());
    }
    answers.sort_unstable();
    let answer = answers[answers.len() / 2];
    let meta = 1_200; // the two meta-tools' definitions in tools/list, about
    let _ = writeln!(
        out,
        "\nWhat an agent carries: `tools/list` of all {} tools is {} KB (about {} tokens at \
         4 bytes a token); with `tool_search: search` the list is the two meta-tools (about \
         {} tokens), and a `search_tools` answer with 5 tools is {} KB at the median (about {} \
         tokens), {:.1}% of the full list.\n",
        tools.len(),
        list / 1024,
        tokens(list),
        tokens(meta),
        answer / 1024,
        tokens(answer),
        100.0 * answer as f64 / list as f64
    );

    // Latency at 1,000 and 10,000 tools (the catalog, repeated under other server names).
    let texts: Vec<String> = queries["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["query"].as_str().map(String::from))
        .collect();
    let grow = |n: usize| -> Vec<Document> {
        let mut v = Vec::with_capacity(n);
        let mut copy = 0;
        while v.len() < n {
            for d in &docs {
                if v.len() == n {
                    break;
                }
                let mut d = d.clone();
                if copy > 0 {
                    d.server = format!("{}{copy}", d.server);
                    d.name = format!("{}{copy}", d.name);
                }
                v.push(d);
            }
            copy += 1;
        }
        v
    };
    let rounds = if quick { 1 } else { 5 };
    let _ = writeln!(
        out,
        "| tools | index build | search p50 | search p99 | target (p50) |\n| --- | --- | --- | --- | --- |"
    );
    for (n, target_us) in [(1_000, 1_000.0), (10_000, 5_000.0)] {
        let (build, p50, p99) = latency(&grow(n), &texts, rounds);
        let _ = writeln!(
            out,
            "| {n} | {build:.1} ms | {p50:.0} µs | {p99:.0} µs | < {} ms: {} |",
            target_us / 1000.0,
            if p50 < target_us {
                "met"
            } else {
                "**not met**"
            }
        );
    }

    let _ = writeln!(
        out,
        "\nThe queries not found in the first 5 ({} of {}), with where the first expected tool \
         came (— : not in the first 50) and what came first:\n",
        all.misses
            .iter()
            .filter(|m| m.rank.is_none_or(|r| r > 5))
            .count(),
        all.queries
    );
    let _ = writeln!(
        out,
        "| query | expected | rank | first |\n| --- | --- | --- | --- |"
    );
    for m in all.misses.iter().filter(|m| m.rank.is_none_or(|r| r > 5)) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            m.query.replace('|', "\\|"),
            m.expected.join(", "),
            m.rank.map_or("—".to_string(), |r| r.to_string()),
            m.first.clone().unwrap_or_default()
        );
    }
    let _ = writeln!(out, "{END}");
    Ok(out)
}

/// Puts the section in the report file between its markers (replacing an earlier one).
pub fn splice(report: &Path, section: &str) -> Result<()> {
    let old = std::fs::read_to_string(report).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!(
            "{}{section}{}",
            &old[..b],
            old[e + END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    std::fs::write(report, new)?;
    Ok(())
}
