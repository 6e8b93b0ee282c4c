#!/usr/bin/env python3
"""tools/bench_tokenizer.py: Hugging Face `tokenizers` throughput on the same text as
bench/bench_tokenizer.c, for comparison.

Usage:
  build/bench_tokenizer --write-corpus /tmp/corpus.txt       # the C benchmark, saving its text
  python3 tools/bench_tokenizer.py [TOKENIZER] /tmp/corpus.txt
TOKENIZER is a folder with tokenizer.json or the file itself (default ../shared/fixtures/hf/qwen3
relative to the repo root). Prints MB/s (1 MB = 1e6 bytes) for one encode call on the whole text
(cold, then warm: tokenizers also caches merges), for sequential 2 KiB calls cut at newlines like
the C benchmark, and for decode. All single-threaded (encode_batch, which uses several threads,
is not used).
"""
import os
import sys
import time

from tokenizers import Tokenizer


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = sys.argv[1:]
    if len(args) == 1:
        tok_path, text_path = os.path.join(os.path.dirname(root), "shared", "fixtures", "hf", "qwen3"), args[0]
    elif len(args) == 2:
        tok_path, text_path = args
    else:
        sys.exit(__doc__)
    if os.path.isdir(tok_path):
        tok_path = os.path.join(tok_path, "tokenizer.json")
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(tok_path)
    print("tokenizer %s: loaded in %.3f s" % (tok_path, time.perf_counter() - t0))
    with open(text_path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    mb = len(raw) / 1e6
    print("text: %d bytes from %s" % (len(raw), text_path))
    ids = None
    for name in ("cold", "warm"):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        dt = time.perf_counter() - t0
        print("encode, one call, %s cache: %8.2f MB/s  %10.0f tokens/s  (%d tokens)" % (name, mb / dt, len(ids) / dt, len(ids)))
    chunks, off = [], 0
    while off < len(raw):
        end = min(off + 2048, len(raw))
        while end < len(raw) and raw[end - 1:end] != b"\n":
            end += 1
        chunks.append(raw[off:end].decode("utf-8"))
        off = end
    t0 = time.perf_counter()
    total = 0
    for c in chunks:
        total += len(tok.encode(c, add_special_tokens=False).ids)
    dt = time.perf_counter() - t0
    print("encode, 2 KiB calls, warm cache: %8.2f MB/s  %10.0f tokens/s" % (mb / dt, total / dt))
    t0 = time.perf_counter()
    out = tok.decode(ids, skip_special_tokens=False)
    dt = time.perf_counter() - t0
    print("decode: %8.2f MB/s  %10.0f tokens/s  (round trip %s)" % (mb / dt, len(ids) / dt, "exact" if out == text else "differs"))


if __name__ == "__main__":
    main()
