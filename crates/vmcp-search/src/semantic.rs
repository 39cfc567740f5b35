//! Meaning, roughly: a text's vector is the mean of its tokens' embeddings, and two texts are
//! close when their vectors point alike ("is it morning in Auckland" near "current time in a
//! timezone", with no word shared).
//!
//! The embeddings are WordLlama's (the `wordllama` package on PyPI, MIT licence): static
//! embeddings of the Llama 2 tokenizer's 32,000 tokens, trained for sentence similarity. They
//! are in the repository (`data/`, written by `xtask/python/export_embeddings.py`, int8) and
//! compiled into the binary: nothing is fetched at run time. The tokenizer is the Llama 2 BPE
//! (merge the adjacent pair whose merged token comes first in the vocabulary, until none merges;
//! bytes for what the vocabulary lacks), a few lines here, which gives the same tokens as the
//! reference tokenizer on every text of the evaluation set.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

static DATA: &[u8] = include_bytes!("../data/wordllama-l2-supercat-256.bin");

/// The model, read from the embedded file once.
pub(crate) static MODEL: LazyLock<Model> = LazyLock::new(|| Model::parse(DATA));

/// The tokens of the words seen, kept across index builds (a catalog rebuilt after a change
/// holds mostly the same words); emptied when it grows past `WORDS_KEPT`.
static WORD_TOKENS: LazyLock<Mutex<HashMap<String, Vec<u32>>>> = LazyLock::new(Mutex::default);
const WORDS_KEPT: usize = 200_000;

/// The kept word tokens, taken out for an index build (the lock is not held while it builds:
/// a search or another build never waits on it).
pub(crate) fn take_word_tokens() -> HashMap<String, Vec<u32>> {
    let mut kept = WORD_TOKENS.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() > WORDS_KEPT {
        kept.clear();
    }
    std::mem::take(&mut *kept)
}

/// Puts the word tokens back after a build.
pub(crate) fn keep_word_tokens(tokens: HashMap<String, Vec<u32>>) {
    let mut kept = WORD_TOKENS.lock().unwrap_or_else(PoisonError::into_inner);
    if tokens.len() >= kept.len() {
        let others = std::mem::replace(&mut *kept, tokens);
        kept.extend(others);
    } else {
        kept.extend(tokens);
    }
}

/// Only the start of a longer word is tokenized (the merge loop is quadratic in a word's
/// length, and a query or description can hold a long run without spaces: a URL, base64).
const LONGEST_WORD: usize = 48;

pub(crate) struct Model {
    vocabulary: HashMap<&'static str, u32>,
    scales: Vec<f32>,
    vectors: &'static [u8],
    pub(crate) dimensions: usize,
}

/// The token ids of `<0x00>`..`<0xFF>` start here (the byte fallback).
const FIRST_BYTE_TOKEN: u32 = 3;
/// SentencePiece's word boundary: a word's first token carries it.
const SPACE: char = '\u{2581}';

impl Model {
    fn parse(data: &'static [u8]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!(&data[..8], b"VMCPEMB1", "embeddings file");
        let tokens = u32_at(8) as usize;
        let dimensions = u32_at(12) as usize;
        let mut at = 16;
        let mut vocabulary = HashMap::with_capacity(tokens);
        for id in 0..tokens {
            let len = data[at] as usize;
            let text = std::str::from_utf8(&data[at + 1..at + 1 + len]).expect("UTF-8 token");
            vocabulary.insert(text, u32::try_from(id).expect("32,000 tokens"));
            at += 1 + len;
        }
        let scales = data[at..at + 4 * tokens]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        at += 4 * tokens;
        let vectors = &data[at..at + tokens * dimensions];
        Self {
            vocabulary,
            scales,
            vectors,
            dimensions,
        }
    }

    /// The tokens of one word (with its leading boundary mark). Symbols are byte ranges of the
    /// word: merging two is widening one, and looking a pair up is slicing the word.
    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<(usize, usize)> = word
            .char_indices()
            .map(|(i, c)| (i, i + c.len_utf8()))
            .collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for (i, pair) in symbols.windows(2).enumerate() {
                if let Some(&id) = self.vocabulary.get(&word[pair[0].0..pair[1].1])
                    && best.is_none_or(|(b, _)| id < b)
                {
                    best = Some((id, i));
                }
            }
            let Some((_, i)) = best else { break };
            symbols[i].1 = symbols[i + 1].1;
            symbols.remove(i + 1);
        }
        for &(start, end) in &symbols {
            let s = &word[start..end];
            match self.vocabulary.get(s) {
                Some(&id) => out.push(id),
                None => out.extend(s.bytes().map(|b| FIRST_BYTE_TOKEN + u32::from(b))),
            }
        }
    }

    /// The unit-length mean of the tokens' vectors of `text` (None for a text without tokens).
    /// `cache` keeps the tokens of words seen before (tool texts repeat theirs).
    pub(crate) fn embed(
        &self,
        text: &str,
        cache: &mut HashMap<String, Vec<u32>>,
    ) -> Option<Vec<f32>> {
        let mut sum = vec![0f32; self.dimensions];
        let mut count = 0usize;
        let mut word = String::new();
        for w in text.split_whitespace() {
            let w = match w.char_indices().nth(LONGEST_WORD) {
                Some((end, _)) => &w[..end],
                None => w,
            };
            word.clear();
            word.push(SPACE);
            word.push_str(w);
            if !cache.contains_key(&word) {
                let mut ids = Vec::new();
                self.encode_word(&word, &mut ids);
                cache.insert(word.clone(), ids);
            }
            for &id in &cache[&word] {
                let id = id as usize;
                let scale = self.scales[id];
                let row = &self.vectors[id * self.dimensions..(id + 1) * self.dimensions];
                for (s, &v) in sum.iter_mut().zip(row) {
                    *s += f32::from(v as i8) * scale;
                }
                count += 1;
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
        (count > 0 && norm > 0.0).then(|| sum.into_iter().map(|v| v / norm).collect())
    }
}

/// The dot product, in eight independent sums (a single running sum of floats cannot be
/// vectorized, and the search computes one per tool).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_rest) = b.split_at(a8.len().min(b.len()));
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for w in text.split_whitespace() {
            MODEL.encode_word(&format!("{SPACE}{w}"), &mut out);
        }
        out
    }

    #[test]
    fn tokenizes_as_the_llama_2_tokenizer() {
        // Reference ids from the `tokenizers` library with the model's tokenizer file.
        assert_eq!(tokens("Get the current time"), vec![3617, 278, 1857, 931]);
        // A word the vocabulary lacks whole (`▁screens`, `h`, `ots`), and a character it
        // lacks: its bytes.
        assert_eq!(tokens("screenshots"), vec![11844, 29882, 1862]);
        assert_eq!(tokens("☃"), vec![29871, 3 + 0xE2, 3 + 0x98, 3 + 0x83]);
    }

    #[test]
    fn a_long_run_without_spaces_costs_its_first_characters_only() {
        let mut cache = HashMap::new();
        let long = "x".repeat(100_000);
        assert!(MODEL.embed(&long, &mut cache).is_some());
        // The word tokenized is its boundary mark and its first characters.
        assert_eq!(cache.len(), 1);
        assert!(cache.keys().all(|w| w.chars().count() == LONGEST_WORD + 1));
    }

    #[test]
    fn texts_alike_in_meaning_are_closer_than_texts_that_share_no_meaning() {
        let mut cache = HashMap::new();
        let mut v = |t: &str| MODEL.embed(t, &mut cache).unwrap();
        // No word shared with the right answer, in each case.
        for (query, near, far) in [
            (
                "hand the money back to the buyer",
                "refund a payment",
                "create a new issue in a project",
            ),
            (
                "what is the weather tomorrow",
                "get the forecast for a location",
                "delete a file from disk",
            ),
            (
                "remove the folder",
                "delete a directory",
                "send an email message",
            ),
        ] {
            let (q, n, f) = (v(query), v(near), v(far));
            assert!(
                dot(&q, &n) > dot(&q, &f) + 0.2,
                "{query}: {} {}",
                dot(&q, &n),
                dot(&q, &f)
            );
        }
        assert!(MODEL.embed("   ", &mut cache).is_none());
    }
}
