#!/usr/bin/env python3
"""tools/bench_tokenizer.py: Hugging Face `tokenizers` throughput on the same text as
bench/bench_tokenizer.c, for comparison. bench_tokenizer runs it itself (through popen, with --json)
on its corpus; by hand:

  build/bench_tokenizer --write-corpus /tmp/corpus.txt --no-python
  python3 tools/bench_tokenizer.py [--json] [TOKENIZER] /tmp/corpus.txt

TOKENIZER is a folder with tokenizer.json or the file itself (default ../shared/fixtures/hf/qwen3
relative to the repo root). Prints MB/s (1 MB = 1e6 bytes) for:
  - Tokenizer.encode(text, add_special_tokens=False) on the WHOLE text in one call, cold and then
    warm (tokenizers caches BPE results per word). One input is encoded on one thread: tokenizers
    parallelizes only across the inputs of encode_batch. This is the method the ratio uses.
  - sequential encode calls on 2 KiB pieces cut at newlines (as the C benchmark);
  - for reference, encode_batch over those pieces (rayon, all cores: RAYON_NUM_THREADS or the CPU count);
  - decode of the whole id list.
With --json a last line "JSON {...}" holds the figures, the token count and a 64-bit FNV-1a hash of
the ids (as little-endian uint32), so the caller can check both tokenizers produced the same ids;
when `tokenizers` cannot be imported that line is {"error": "..."} and the exit status is 3.
"""
import json
import os
import sys
import time


def fnv1a(ids):
    h = 1469598103934665603
    for i in ids:
        for k in range(4):
            h ^= (i >> (8 * k)) & 0xFF
            h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(args) == 1:
        tok_path, text_path = os.path.join(os.path.dirname(root), "shared", "fixtures", "hf", "qwen3"), args[0]
    elif len(args) == 2:
        tok_path, text_path = args
    else:
        sys.exit(__doc__)
    try:
        import tokenizers
        from tokenizers import Tokenizer
    except ImportError as e:
        msg = "the Python package `tokenizers` is not importable by %s (%s); pip install tokenizers" % (
            sys.executable, e)
        print("JSON " + json.dumps({"error": msg}) if as_json else msg)
        sys.exit(3)
    if os.path.isdir(tok_path):
        tok_path = os.path.join(tok_path, "tokenizer.json")
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(tok_path)
    print("Hugging Face tokenizers %s (%s):" % (tokenizers.__version__, sys.executable))
    print("  tokenizer %s: loaded in %.3f s" % (tok_path, time.perf_counter() - t0))
    with open(text_path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    mb = len(raw) / 1e6
    res = {"tokenizers_version": tokenizers.__version__, "bytes": len(raw),
           "method": "Tokenizer.encode(whole text, add_special_tokens=False), one call, one thread"}
    ids = None
    for name in ("cold", "warm"):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        dt = time.perf_counter() - t0
        res["encode_%s_mbs" % name] = mb / dt
        print("  encode, one call, %s cache: %8.2f MB/s  %10.0f tokens/s  (%d tokens)" % (name, mb / dt, len(ids) / dt,
                                                                                        len(ids)))
    res["tokens"] = len(ids)
    res["ids_fnv1a"] = fnv1a(ids)
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
    res["encode_chunks_mbs"] = mb / dt
    print("  encode, 2 KiB calls, warm cache: %8.2f MB/s  %10.0f tokens/s" % (mb / dt, total / dt))
    threads = int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count() or 1)
    t0 = time.perf_counter()
    batch = tok.encode_batch(chunks, add_special_tokens=False)
    dt = time.perf_counter() - t0
    res["encode_batch_mbs"] = mb / dt
    res["batch_threads"] = threads
    print("  encode_batch, 2 KiB pieces, %d threads: %8.2f MB/s  %10.0f tokens/s" % (
        threads, mb / dt, sum(len(e.ids) for e in batch) / dt))
    t0 = time.perf_counter()
    out = tok.decode(ids, skip_special_tokens=False)
    dt = time.perf_counter() - t0
    print("  decode: %8.2f MB/s  %10.0f tokens/s  (round trip %s)" % (mb / dt, len(ids) / dt,
                                                                    "exact" if out == text else "differs"))
    if as_json:
        print("JSON " + json.dumps(res))


if __name__ == "__main__":
    main()
