//! Retrieval quality on a catalog of real tools and natural queries (`xtask/data/tool-search/`):
//! recall@1, recall@5 and mean reciprocal rank. A query counts as found at k when any of its
//! expected tools (several servers may serve it) is among the first k.

use serde_json::Value;

use crate::{Document, Index, Ranking};

/// The catalog (`catalog.json`) as documents; each tool's id is `server/tool`.
pub fn catalog(catalog: &Value) -> (Vec<String>, Vec<Document>, Vec<Value>) {
    let mut ids = Vec::new();
    let mut docs = Vec::new();
    let mut tools = Vec::new();
    for server in catalog["servers"].as_array().into_iter().flatten() {
        let name = server["server"].as_str().unwrap_or_default();
        for tool in server["tools"].as_array().into_iter().flatten() {
            ids.push(format!(
                "{name}/{}",
                tool["name"].as_str().unwrap_or_default()
            ));
            // Exposed as a vMCP with the default naming would expose it.
            let mut exposed = tool.clone();
            exposed["name"] = Value::String(format!(
                "{name}.{}",
                tool["name"].as_str().unwrap_or_default()
            ));
            docs.push(Document::from_tool(name, &exposed));
            tools.push(exposed);
        }
    }
    (ids, docs, tools)
}

/// A query that was not found first: where its first expected tool came (None: not in the
/// first 50), and what came first.
#[derive(Debug, Clone)]
pub struct Miss {
    pub query: String,
    pub expected: Vec<String>,
    pub rank: Option<usize>,
    pub first: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Quality {
    pub queries: usize,
    pub tools: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr: f64,
    pub misses: Vec<Miss>,
}

/// Which queries to run: all, or one half (the even-numbered ones tune, the odd ones check
/// that the tuning holds on queries it never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    All,
    Tuning,
    HeldOut,
}

/// Runs every query of `queries.json` against the index of `catalog.json`.
pub fn evaluate(catalog_json: &Value, queries_json: &Value) -> Quality {
    evaluate_split(catalog_json, queries_json, Split::All)
}

pub fn evaluate_split(catalog_json: &Value, queries_json: &Value, split: Split) -> Quality {
    evaluate_ranked(catalog_json, queries_json, split, Ranking::Blended)
}

/// `evaluate_split` with one ranking alone (or both, as the search does).
pub fn evaluate_ranked(
    catalog_json: &Value,
    queries_json: &Value,
    split: Split,
    ranking: Ranking,
) -> Quality {
    let (ids, docs, _) = catalog(catalog_json);
    let index = Index::build(&docs);
    let queries: Vec<Value> = queries_json["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(i, _)| match split {
            Split::All => true,
            Split::Tuning => i % 2 == 0,
            Split::HeldOut => i % 2 == 1,
        })
        .map(|(_, q)| q.clone())
        .collect();
    tally(&queries, docs.len(), |text, _| {
        index
            .search_ranked(text, 50, ranking)
            .iter()
            .map(|h| ids[h.index].clone())
            .collect()
    })
}

/// The same queries, each in a smaller vMCP, as most are: the servers of its expected tools and
/// others drawn at random (seeded: the same draw every run) up to `servers`.
pub fn evaluate_in_vmcps_of(catalog_json: &Value, queries_json: &Value, servers: usize) -> Quality {
    let (ids, docs, _) = catalog(catalog_json);
    let all_servers: Vec<String> = catalog_json["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["server"].as_str().map(String::from))
        .collect();
    let queries = queries_json["queries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    tally(&queries, docs.len(), |text, expected| {
        let mut chosen: Vec<&str> = expected
            .iter()
            .filter_map(|e| e.split('/').next())
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        while chosen.len() < servers.min(all_servers.len()) {
            let pick = &all_servers[(next() % all_servers.len() as u64) as usize];
            if !chosen.contains(&pick.as_str()) {
                chosen.push(pick);
            }
        }
        let members: Vec<usize> = (0..docs.len())
            .filter(|i| chosen.contains(&docs[*i].server.as_str()))
            .collect();
        let index = Index::build(members.iter().map(|i| &docs[*i]));
        index
            .search(text, 50)
            .iter()
            .map(|h| ids[members[h.index]].clone())
            .collect()
    })
}

/// Runs each query through `ranked` (its text and expected ids → the ids found, best first)
/// and scores where the first expected one came.
fn tally(
    queries: &[Value],
    tools: usize,
    mut ranked: impl FnMut(&str, &[String]) -> Vec<String>,
) -> Quality {
    let (mut at1, mut at5, mut rr) = (0usize, 0usize, 0f64);
    let mut misses = Vec::new();
    for q in queries {
        let text = q["query"].as_str().unwrap_or_default();
        let expected: Vec<String> = q["expected"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        let found = ranked(text, &expected);
        let rank = found
            .iter()
            .position(|id| expected.contains(id))
            .map(|p| p + 1);
        match rank {
            Some(1) => at1 += 1,
            _ => misses.push(Miss {
                query: text.to_string(),
                expected: expected.clone(),
                rank,
                first: found.first().cloned(),
            }),
        }
        if rank.is_some_and(|r| r <= 5) {
            at5 += 1;
        }
        if let Some(r) = rank {
            rr += 1.0 / r as f64;
        }
    }
    let n = queries.len().max(1) as f64;
    Quality {
        queries: queries.len(),
        tools,
        recall_at_1: at1 as f64 / n,
        recall_at_5: at5 as f64 / n,
        mrr: rr / n,
        misses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(file: &str) -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../xtask/data/tool-search/");
        let text = std::fs::read_to_string(format!("{path}{file}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The quality measured on the evaluation set, and published in docs/benchmarks.md, does not
    /// fall (the targets, recall@5 ≥ 0.9 and MRR ≥ 0.75, are not met on this set:
    /// docs/tool-search.md says where search misses). Words alone measured recall@5 0.709 and
    /// MRR 0.533; with meaning blended in, 0.745 and 0.584.
    #[test]
    fn the_search_finds_the_right_tool_on_real_catalogs() {
        for split in [Split::Tuning, Split::HeldOut] {
            let q = evaluate_split(&data("catalog.json"), &data("queries.json"), split);
            eprintln!(
                "{split:?}: recall@1 {:.3}, recall@5 {:.3}, MRR {:.3}",
                q.recall_at_1, q.recall_at_5, q.mrr
            );
        }
        let small = evaluate_in_vmcps_of(&data("catalog.json"), &data("queries.json"), 10);
        eprintln!(
            "in vMCPs of 10 servers: recall@1 {:.3}, recall@5 {:.3}, MRR {:.3}",
            small.recall_at_1, small.recall_at_5, small.mrr
        );
        let q = evaluate(&data("catalog.json"), &data("queries.json"));
        eprintln!(
            "{} tools, {} queries: recall@1 {:.3}, recall@5 {:.3}, MRR {:.3}",
            q.tools, q.queries, q.recall_at_1, q.recall_at_5, q.mrr
        );
        for m in q.misses.iter().filter(|m| m.rank.is_none_or(|r| r > 5)) {
            eprintln!(
                "  miss (rank {:?}): {:?} expected {:?}, first {:?}",
                m.rank, m.query, m.expected, m.first
            );
        }
        assert!(q.tools >= 500 && q.queries >= 150);
        assert!(q.recall_at_5 >= 0.74, "recall@5 {:.3}", q.recall_at_5);
        assert!(q.mrr >= 0.58, "MRR {:.3}", q.mrr);
        assert!(
            small.recall_at_5 >= 0.83,
            "recall@5 {:.3}",
            small.recall_at_5
        );
        // Each ranking brings something: the blend beats either alone.
        for ranking in [Ranking::Words, Ranking::Meaning] {
            let alone = evaluate_ranked(
                &data("catalog.json"),
                &data("queries.json"),
                Split::All,
                ranking,
            );
            eprintln!(
                "{ranking:?} alone: recall@1 {:.3}, recall@5 {:.3}, MRR {:.3}",
                alone.recall_at_1, alone.recall_at_5, alone.mrr
            );
            assert!(alone.mrr < q.mrr && alone.recall_at_5 < q.recall_at_5);
        }
    }
}
