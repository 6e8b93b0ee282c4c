#!/usr/bin/env python3
"""tools/gguf_to_hf.py GGUF OUTDIR: a Llama GGUF file -> a Hugging Face model folder in fp32.

Writes, into OUTDIR (created when missing; only these files are replaced, each atomically):
  config.json             LlamaForCausalLM, from the GGUF's llama.* metadata
  model.safetensors       every tensor dequantized to float32 by the `gguf` package's own
                          dequantizers (gguf.quants.dequantize), under transformers' names
  tokenizer.json          a `tokenizers` byte-level BPE built from tokenizer.ggml.* (vocab, merges,
                          control tokens as special added tokens, the pre-tokenizer that
                          tokenizer.ggml.pre names)
  tokenizer_config.json   bos/eos/pad/unk strings, the chat template, added_tokens_decoder
  generation_config.json  bos/eos/pad ids

Two things a GGUF does differently from a Hugging Face checkpoint, and how they are undone:
  - shapes: ggml lists dimensions fastest-first, numpy slowest-first. GGUFReader already gives
    numpy-ordered arrays (for a quantized tensor: rows x bytes-per-row), and dequantize turns the
    byte axis back into columns, so a (out_features, in_features) Linear weight comes out as is.
  - rotary layout: llama.cpp's converter (LlamaModel.permute in convert_hf_to_gguf.py) reorders
    the rows of q_proj and k_proj from Hugging Face's "rotate half" layout to interleaved pairs:
        w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)
    (k with n_head_kv). unpermute() applies the inverse permutation, so the rows are exactly the
    original ones (tests/tools/test_gguf_to_hf.py checks permute(unpermute(w)) == w).

Only what a plain Llama needs is supported; anything else (other architectures, rope scaling,
SentencePiece vocabularies, unknown pre-tokenizers or tensors) is refused by name rather than
converted into something subtly wrong.

Needs the `gguf`, `numpy` and `safetensors` packages (tools/get_model.sh makes a venv with them).
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    import gguf
    from safetensors.numpy import save_file
except ImportError as e:  # pragma: no cover - message for people running it by hand
    sys.exit(f"gguf_to_hf: {e}; needs the Python packages gguf, numpy and safetensors "
             f"(e.g. tools/get_model.sh creates a venv with them)")


class ConversionError(Exception):
    pass


# GGUF tensor name (after "blk.N.") -> Hugging Face name (after "model.layers.N.").
LAYER_TENSORS = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
GLOBAL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}

# The pre-tokenizers of the tokenizer.json files that llama.cpp recognises under these
# tokenizer.ggml.pre names (llama.cpp's convert_hf_to_gguf.py get_vocab_base_pre). Only those
# checked against the original tokenizer.json are listed.
BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
PRE_TOKENIZERS = {
    # SmolLM/SmolLM2 (and StarCoder-style): each digit on its own, then GPT-2's byte-level regex.
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, BYTE_LEVEL]},
    # GPT-2 itself.
    "gpt-2": BYTE_LEVEL,
}

# llama_token_type in llama.cpp / gguf.TokenType.
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def permute(w, n_head):
    """llama.cpp's row permutation of q_proj/k_proj (Hugging Face layout -> GGUF layout)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    """The inverse of permute(): GGUF layout -> Hugging Face layout."""
    rows = w.shape[0]
    if rows % (2 * n_head) != 0:
        raise ConversionError(f"cannot undo the rotary permutation: {rows} rows are not a multiple of 2 * {n_head} heads")
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def f32_number(v):
    """A float32 metadata value as the shortest decimal that reads back to the same float32
    (1e-05 rather than 9.999999747378752e-06), so config.json looks like the original."""
    return float(str(np.float32(v)))


class Metadata:
    def __init__(self, reader, path):
        self.reader, self.path = reader, path

    def get(self, key, default=None, required=False):
        f = self.reader.fields.get(key)
        if f is None:
            if required:
                raise ConversionError(f"{self.path}: metadata key {key} is missing")
            return default
        return f.contents()


def build_config(md, arch, n_vocab, tied):
    p = arch + "."
    n_embd = int(md.get(p + "embedding_length", required=True))
    n_head = int(md.get(p + "attention.head_count", required=True))
    n_head_kv = int(md.get(p + "attention.head_count_kv", n_head))
    key_len = md.get(p + "attention.key_length")
    head_dim = int(key_len) if key_len is not None else n_embd // n_head
    rot = md.get(p + "rope.dimension_count")
    if rot is not None and int(rot) != head_dim:
        raise ConversionError(f"{md.path}: partial rotary embeddings (rope.dimension_count {rot} != head_dim "
                              f"{head_dim}) are not supported")
    scaling = md.get(p + "rope.scaling.type")
    if scaling not in (None, "none"):
        raise ConversionError(f"{md.path}: rope scaling \"{scaling}\" is not supported")
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": n_vocab,
        "hidden_size": n_embd,
        "intermediate_size": int(md.get(p + "feed_forward_length", required=True)),
        "num_hidden_layers": int(md.get(p + "block_count", required=True)),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv,
    }
    if key_len is not None:
        cfg["head_dim"] = head_dim
    cfg.update({
        "hidden_act": "silu",
        "rms_norm_eps": f32_number(md.get(p + "attention.layer_norm_rms_epsilon", required=True)),
        "rope_theta": f32_number(md.get(p + "rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "max_position_embeddings": int(md.get(p + "context_length", 2048)),
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": tied,
        "torch_dtype": "float32",
        "use_cache": True,
    })
    for key, name in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("pad_token_id", "padding")):
        v = md.get(f"tokenizer.ggml.{name}_token_id")
        cfg[key] = int(v) if v is not None else None
    return cfg, n_head, n_head_kv, head_dim


def convert_tensors(reader, md, n_layer, n_head, n_head_kv, head_dim, n_embd):
    """Returns {hf_name: float32 array}, dequantized and with the rotary permutation undone."""
    out = {}
    for t in reader.tensors:
        name = t.name
        if name in GLOBAL_TENSORS:
            hf = GLOBAL_TENSORS[name]
        elif name.startswith("blk."):
            _, idx, rest = name.split(".", 2)
            if not idx.isdigit() or int(idx) >= n_layer or rest not in LAYER_TENSORS:
                raise ConversionError(f"{md.path}: tensor {name} is not part of a plain Llama model")
            hf = f"model.layers.{idx}.{LAYER_TENSORS[rest]}"
        else:
            raise ConversionError(f"{md.path}: tensor {name} is not part of a plain Llama model "
                                  f"(e.g. rope_freqs, llama 3.1 rope scaling, is not supported)")
        try:
            w = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError as e:
            raise ConversionError(f"{md.path}: tensor {name}: cannot dequantize type {t.tensor_type.name} ({e})")
        w = np.ascontiguousarray(w, dtype=np.float32)
        want = tuple(int(d) for d in reversed(t.shape))  # ggml order -> numpy order
        if w.shape != want:
            raise ConversionError(f"{md.path}: tensor {name}: dequantized shape {w.shape}, expected {want}")
        if name.endswith("attn_q.weight"):
            if w.shape[0] != n_head * head_dim:
                raise ConversionError(f"{md.path}: {name} has {w.shape[0]} rows, expected {n_head} heads x {head_dim}")
            w = unpermute(w, n_head)
        elif name.endswith("attn_k.weight"):
            if w.shape[0] != n_head_kv * head_dim:
                raise ConversionError(f"{md.path}: {name} has {w.shape[0]} rows, expected {n_head_kv} heads x {head_dim}")
            w = unpermute(w, n_head_kv)
        out[hf] = np.ascontiguousarray(w)
    for need in ("model.embed_tokens.weight", "model.norm.weight"):
        if need not in out:
            raise ConversionError(f"{md.path}: tensor {need} (GGUF {[k for k, v in GLOBAL_TENSORS.items() if v == need][0]}) is missing")
    for i in range(n_layer):
        for hf in LAYER_TENSORS.values():
            if f"model.layers.{i}.{hf}" not in out:
                raise ConversionError(f"{md.path}: layer {i} has no {hf}")
    if out["model.embed_tokens.weight"].shape[1] != n_embd:
        raise ConversionError(f"{md.path}: token_embd.weight has width {out['model.embed_tokens.weight'].shape[1]}, "
                              f"expected embedding_length {n_embd}")
    return out


def build_tokenizer(md):
    """Returns (tokenizer.json dict, tokenizer_config.json dict)."""
    model = md.get("tokenizer.ggml.model", required=True)
    if model != "gpt2":
        raise ConversionError(f"{md.path}: tokenizer.ggml.model \"{model}\" is not supported (expected \"gpt2\", "
                              f"a byte-level BPE)")
    pre = md.get("tokenizer.ggml.pre", "default")
    if pre == "default":
        pre = "gpt-2"
    if pre not in PRE_TOKENIZERS:
        raise ConversionError(f"{md.path}: pre-tokenizer \"{pre}\" is not supported (known: "
                              f"{', '.join(sorted(PRE_TOKENIZERS))})")
    tokens = list(md.get("tokenizer.ggml.tokens", required=True))
    types = list(md.get("tokenizer.ggml.token_type", [TOKEN_NORMAL] * len(tokens)))
    merges = list(md.get("tokenizer.ggml.merges", required=True))
    if len(types) != len(tokens):
        raise ConversionError(f"{md.path}: {len(tokens)} tokens but {len(types)} token types")
    vocab = {}
    for i, tok in enumerate(tokens):
        if tok in vocab:
            raise ConversionError(f"{md.path}: token {tok!r} appears twice (ids {vocab[tok]} and {i})")
        vocab[tok] = i
    for k, m in enumerate(merges):
        parts = m.split(" ")
        if len(parts) != 2 or parts[0] not in vocab or parts[1] not in vocab or parts[0] + parts[1] not in vocab:
            raise ConversionError(f"{md.path}: merge {k} {m!r} is not two vocabulary tokens whose join is one")

    # Control tokens (<|im_start|>, ...) are special added tokens; user-defined ones are added but
    # not special (tokenizers then also keeps them whole, and decode does not skip them).
    added = []
    for i, (tok, ty) in enumerate(zip(tokens, types)):
        if ty in (TOKEN_CONTROL, TOKEN_USER_DEFINED):
            added.append({"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": ty == TOKEN_CONTROL})

    def tok_str(key):
        v = md.get(f"tokenizer.ggml.{key}_token_id")
        if v is None:
            return None
        if not 0 <= int(v) < len(tokens):
            raise ConversionError(f"{md.path}: tokenizer.ggml.{key}_token_id {v} is out of range")
        return tokens[int(v)]

    unk = tok_str("unknown")
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre],
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": unk,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    tc = {
        "add_bos_token": bool(md.get("tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(md.get("tokenizer.ggml.add_eos_token", False)),
        "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                   "single_word", "special")} for a in added},
        "bos_token": tok_str("bos"),
        "eos_token": tok_str("eos"),
        "pad_token": tok_str("padding"),
        "unk_token": unk,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(md.get(md.get("general.architecture") + ".context_length", 2048)),
        # Not GPT2Tokenizer (SmolLM2's own choice): transformers 5 builds that class's pre-tokenizer
        # itself (ByteLevel alone), dropping the Digits step; PreTrainedTokenizerFast takes
        # tokenizer.json as written, in transformers 4 and 5.
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    ct = md.get("tokenizer.chat_template")
    if ct is not None:
        tc["chat_template"] = ct
    return tj, tc


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def convert(gguf_path, outdir, log=print):
    try:
        reader = gguf.GGUFReader(gguf_path)
    except (OSError, ValueError) as e:
        raise ConversionError(f"{gguf_path}: cannot read as GGUF ({e})")
    md = Metadata(reader, gguf_path)
    arch = md.get("general.architecture", required=True)
    if arch != "llama":
        raise ConversionError(f"{gguf_path}: architecture \"{arch}\" is not supported (expected \"llama\")")
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    tokens = md.get("tokenizer.ggml.tokens", required=True)
    n_vocab = int(md.get("llama.vocab_size", len(tokens)))
    if n_vocab != len(tokens):
        raise ConversionError(f"{gguf_path}: llama.vocab_size {n_vocab} but {len(tokens)} tokens")
    cfg, n_head, n_head_kv, head_dim = build_config(md, arch, n_vocab, tied)
    tensors = convert_tensors(reader, md, cfg["num_hidden_layers"], n_head, n_head_kv, head_dim, cfg["hidden_size"])
    emb = tensors["model.embed_tokens.weight"]
    if emb.shape[0] != n_vocab:
        raise ConversionError(f"{gguf_path}: token_embd.weight has {emb.shape[0]} rows, vocab has {n_vocab} tokens")
    tj, tc = build_tokenizer(md)
    gen = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
    if cfg["pad_token_id"] is not None:
        gen["pad_token_id"] = cfg["pad_token_id"]

    os.makedirs(outdir, exist_ok=True)
    st = os.path.join(outdir, "model.safetensors")
    save_file(tensors, st + ".tmp", metadata={"format": "pt", "source": os.path.basename(gguf_path)})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(st + ".tmp", 0o666 & ~umask)  # safetensors creates it 0600; make it like the json files
    os.replace(st + ".tmp", st)
    write_json(os.path.join(outdir, "config.json"), cfg)
    write_json(os.path.join(outdir, "tokenizer.json"), tj)
    write_json(os.path.join(outdir, "tokenizer_config.json"), tc)
    write_json(os.path.join(outdir, "generation_config.json"), gen)
    n_params = sum(int(v.size) for v in tensors.values())
    types = sorted({t.tensor_type.name for t in reader.tensors})
    log(f"gguf_to_hf: {gguf_path} ({', '.join(types)}) -> {outdir}: {len(tensors)} tensors, "
        f"{n_params / 1e6:.1f}M parameters in fp32, {cfg['num_hidden_layers']} layers, vocab {n_vocab}, "
        f"{'tied' if tied else 'separate'} embeddings")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a Llama GGUF file into a Hugging Face model folder (fp32).")
    ap.add_argument("gguf", help="the .gguf file")
    ap.add_argument("outdir", help="the output folder (created when missing)")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.gguf):
        sys.exit(f"gguf_to_hf: {a.gguf}: no such file")
    try:
        convert(a.gguf, a.outdir)
    except ConversionError as e:
        sys.exit(f"gguf_to_hf: {e}")


if __name__ == "__main__":
    main()
