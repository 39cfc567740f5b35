"""Writes the token embeddings vMCP's tool search ranks with (crates/vmcp-search/data/).

Source: the `wordllama` package on PyPI (version 0.4.0.post1, MIT licence, by Lee Miller),
whose wheel carries its default model: 256-dimensional embeddings of the 32,000 tokens of
the Llama 2 tokenizer, trained for sentence similarity (`weights/l2_supercat_256.safetensors`,
`tokenizers/l2_supercat_tokenizer_config.json`). A text's vector is the mean of its tokens'.

Kept in the repository, generated once: nothing is fetched when vMCP runs or builds.

    pip download --no-deps wordllama==0.4.0.post1 -d /tmp/wl
    python3 xtask/python/export_embeddings.py /tmp/wl/wordllama-0.4.0.post1-*.whl DIM

The file (little-endian): b"VMCPEMB1", u32 tokens, u32 dimensions; then each token's text
(u8 length, UTF-8); then one f32 scale per token; then the int8 vectors (value = i8 * scale),
the first DIM of the 256 dimensions (the model is trained to be truncated so).
"""

import io
import json
import struct
import sys
import zipfile

import numpy as np


def main() -> None:
    wheel, dim = sys.argv[1], int(sys.argv[2])
    with zipfile.ZipFile(wheel) as z:
        tok = json.loads(z.read("wordllama/tokenizers/l2_supercat_tokenizer_config.json"))
        weights = z.read("wordllama/weights/l2_supercat_256.safetensors")
    # safetensors: u64 header length, JSON header, then the raw tensors.
    (hlen,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + hlen])
    meta = header["embedding.weight"]
    assert meta["dtype"] == "F16", meta
    rows, cols = meta["shape"]
    start, end = meta["data_offsets"]
    w = np.frombuffer(weights[8 + hlen + start : 8 + hlen + end], dtype="<f2").reshape(rows, cols)
    w = w[:, :dim].astype(np.float32)
    vocab = tok["model"]["vocab"]
    assert tok["model"]["type"] == "BPE" and tok["model"]["byte_fallback"]
    texts = [None] * rows
    for text, i in vocab.items():
        texts[i] = text
    assert all(t is not None for t in texts)
    scale = np.abs(w).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    out = io.BytesIO()
    out.write(b"VMCPEMB1")
    out.write(struct.pack("<II", rows, dim))
    for t in texts:
        b = t.encode()
        assert len(b) < 256
        out.write(struct.pack("<B", len(b)))
        out.write(b)
    out.write(scale.astype("<f4").tobytes())
    out.write(q.tobytes())
    path = f"crates/vmcp-search/data/wordllama-l2-supercat-{dim}.bin"
    with open(path, "wb") as f:
        f.write(out.getvalue())
    print(f"{path}: {rows} tokens x {dim}, {len(out.getvalue())} bytes")


if __name__ == "__main__":
    main()
