#!/usr/bin/env python3
"""tests/tools/test_gguf_to_hf.py: tools/gguf_to_hf.py on small GGUF files written here, no download.

For each of two tiny Llama models (tied embeddings with Q8_0 token embeddings; separate output
weight), written with the gguf package's GGUFWriter the way llama.cpp's converter writes them
(q/k rows permuted, weights Q4_1, embeddings Q8_0, norms F32, a gpt2-style BPE vocabulary with the
"smollm" pre-tokenizer and control tokens):
  1. every converted tensor equals gguf.quants.dequantize of the GGUF tensor, except q/k, whose
     rows must be the inverse of llama.cpp's permutation: applying llama.cpp's formula (written out
     here, independently of the converter) to the converted q/k gives the GGUF rows back, and the
     converted q/k equal the dequantized original Hugging Face rows;
  2. config.json, generation_config.json, tokenizer_config.json and tokenizer.json carry the
     metadata (dimensions, eps, rope theta, tie, ids, chat template, vocab, merges, special tokens,
     SmolLM2's Digits + ByteLevel pre-tokenizer);
  3. the C side loads the folder: `grpo2048 tokenize` gives the ids that the BPE rules give by hand
     (digits split one by one, which only the Digits step does), and `grpo2048 generate
     --temperature 0 --logprobs` gives the tokens and log-probabilities of a float64 numpy forward
     pass with llama.cpp's semantics (interleaved rotary pairs) on the GGUF tensors: so the
     converted folder computes what the GGUF file computes.
Plus a refusal: an unknown pre-tokenizer is an error, not a silently different tokenizer.

Run by ctest (label tools) through tests/tools/run_python_test.sh with GRPO2048_BIN set; by hand:
  GRPO2048_BIN=build/grpo2048 ~/.cache/grpo2048/venv/bin/python tests/tools/test_gguf_to_hf.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gguf_to_hf  # noqa: E402

Q = gguf.GGMLQuantizationType
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")
    return cond


def llama_cpp_permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, as documented there."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<tool>"]
MERGES = [("Ġ", "t"), ("t", "h"), ("Ġt", "h"), ("t", "he"), ("h", "e"), ("th", "e"), ("Ġth", "e"), ("Ġ", "1"),
          ("i", "n"), ("Ġ", "in")]
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def make_vocab():
    tokens = list(SPECIALS) + list(USER_DEFINED)
    types = [gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.USER_DEFINED] * len(USER_DEFINED)
    tokens += [bytes_to_unicode()[b] for b in range(256)]
    types += [gguf.TokenType.NORMAL] * 256
    for a, b in MERGES:
        if a + b not in tokens:
            tokens.append(a + b)
            types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types], [f"{a} {b}" for a, b in MERGES]


def write_gguf(path, rng, tied, pre="smollm"):
    """A tiny Llama as llama.cpp's converter writes it. Returns (hparams, original HF q/k per layer)."""
    hp = dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=96, n_ctx=256, theta=50000.0, eps=1e-6)
    hd = hp["n_embd"] // hp["n_head"]
    tokens, types, merges = make_vocab()
    hp["n_vocab"] = len(tokens)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(hp["n_layer"])
    w.add_context_length(hp["n_ctx"])
    w.add_embedding_length(hp["n_embd"])
    w.add_feed_forward_length(hp["n_ff"])
    w.add_head_count(hp["n_head"])
    w.add_head_count_kv(hp["n_head_kv"])
    w.add_rope_freq_base(hp["theta"])
    w.add_layer_norm_rms_eps(hp["eps"])
    w.add_vocab_size(len(tokens))
    w.add_rope_dimension_count(hd)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def quant(name, arr, qtype):
        arr = arr.astype(np.float32)
        w.add_tensor(name, arr if qtype == Q.F32 else gguf.quants.quantize(arr, qtype), raw_dtype=qtype)

    C, F, V = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    quant("token_embd.weight", rng.normal(0, 1.0, (V, C)), Q.Q8_0)
    originals = []
    for i in range(hp["n_layer"]):
        q = rng.normal(0, 0.3, (hp["n_head"] * hd, C))
        k = rng.normal(0, 0.3, (hp["n_head_kv"] * hd, C))
        originals.append((q, k))
        quant(f"blk.{i}.attn_norm.weight", 1 + 0.1 * rng.normal(size=C), Q.F32)
        quant(f"blk.{i}.attn_q.weight", llama_cpp_permute(q, hp["n_head"]), Q.Q4_1)
        quant(f"blk.{i}.attn_k.weight", llama_cpp_permute(k, hp["n_head_kv"]), Q.Q4_1)
        quant(f"blk.{i}.attn_v.weight", rng.normal(0, 0.3, (hp["n_head_kv"] * hd, C)), Q.Q4_1)
        quant(f"blk.{i}.attn_output.weight", rng.normal(0, 0.1, (C, C)), Q.Q4_1)
        quant(f"blk.{i}.ffn_norm.weight", 1 + 0.1 * rng.normal(size=C), Q.F32)
        quant(f"blk.{i}.ffn_gate.weight", rng.normal(0, 0.2, (F, C)), Q.Q4_1)
        quant(f"blk.{i}.ffn_up.weight", rng.normal(0, 0.2, (F, C)), Q.Q4_1)
        quant(f"blk.{i}.ffn_down.weight", rng.normal(0, 0.1, (C, F)), Q.Q4_1)
    quant("output_norm.weight", 1 + 0.1 * rng.normal(size=C), Q.F32)
    if not tied:
        quant("output.weight", rng.normal(0, 0.3, (V, C)), Q.Q4_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hp, originals


def gguf_tensors(path):
    """GGUF name -> (dequantized float32 array in numpy order, type name)."""
    r = gguf.GGUFReader(path)
    return {t.name: (gguf.quants.dequantize(t.data, t.tensor_type), t.tensor_type.name) for t in r.tensors}


HF_NAME = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
LAYER_NAME = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}


def hf_name(name):
    if name in HF_NAME:
        return HF_NAME[name]
    _, i, kind, _ = name.split(".")
    return f"model.layers.{i}.{LAYER_NAME[kind]}.weight"


def check_tensors(tag, gg, hf, hp, originals):
    check(set(hf) == {hf_name(n) for n in gg}, f"{tag}: tensor names {sorted(set(hf) ^ {hf_name(n) for n in gg})}")
    types = set()
    for name, (want, ty) in gg.items():
        types.add(ty)
        got = hf.get(hf_name(name))
        if got is None:
            continue
        check(got.dtype == np.float32, f"{tag}: {name} dtype {got.dtype}")
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            nh = hp["n_head"] if "attn_q" in name else hp["n_head_kv"]
            check(np.array_equal(llama_cpp_permute(got, nh), want),
                  f"{tag}: llama.cpp's permutation of the converted {name} is not the GGUF tensor")
            layer = int(name.split(".")[1])
            orig = originals[layer][0 if "attn_q" in name else 1]
            # Quantization works on GGUF rows, so dequantizing the permuted rows and undoing the
            # permutation must equal quantizing the original rows in their own order.
            ref = gguf.quants.dequantize(gguf.quants.quantize(orig.astype(np.float32), Q.Q4_1), Q.Q4_1)
            check(np.array_equal(got, ref), f"{tag}: converted {name} is not the original HF rows (dequantized)")
            check(np.abs(got - orig).max() < 0.2, f"{tag}: converted {name} far from the original weights")
        else:
            check(got.shape == want.shape and np.array_equal(got, want),
                  f"{tag}: {name} differs from gguf.quants.dequantize")
    check(types == {"Q4_1", "Q8_0", "F32"}, f"{tag}: tensor types written {types}")


def check_metadata(tag, out, hp, tied):
    cfg = json.load(open(os.path.join(out, "config.json")))
    want = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": hp["n_vocab"],
            "hidden_size": hp["n_embd"], "intermediate_size": hp["n_ff"], "num_hidden_layers": hp["n_layer"],
            "num_attention_heads": hp["n_head"], "num_key_value_heads": hp["n_head_kv"], "rms_norm_eps": hp["eps"],
            "rope_theta": hp["theta"], "max_position_embeddings": hp["n_ctx"], "tie_word_embeddings": tied,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "torch_dtype": "float32", "hidden_act": "silu"}
    for k, v in want.items():
        check(cfg.get(k) == v, f"{tag}: config.json {k} = {cfg.get(k)!r}, expected {v!r}")
    check("head_dim" not in cfg, f"{tag}: config.json has head_dim without attention.key_length in the GGUF")
    gen = json.load(open(os.path.join(out, "generation_config.json")))
    check(gen.get("bos_token_id") == 1 and gen.get("eos_token_id") == 2, f"{tag}: generation_config.json {gen}")

    tokens, types, merges = make_vocab()
    tj = json.load(open(os.path.join(out, "tokenizer.json")))
    m = tj["model"]
    check(m["type"] == "BPE" and m["byte_fallback"] is False and m["dropout"] is None, f"{tag}: model {m['type']}")
    check(m["vocab"] == {t: i for i, t in enumerate(tokens)}, f"{tag}: vocab differs")
    check(m["merges"] == merges, f"{tag}: merges differ")
    check(tj["normalizer"] is None, f"{tag}: normalizer {tj['normalizer']}")
    check(tj["pre_tokenizer"] == {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        f"{tag}: pre_tokenizer {tj['pre_tokenizer']}")
    check(tj["decoder"]["type"] == "ByteLevel" and tj["post_processor"]["type"] == "ByteLevel",
          f"{tag}: decoder/post_processor {tj['decoder']}, {tj['post_processor']}")
    added = {a["content"]: a for a in tj["added_tokens"]}
    check(sorted(added) == sorted(SPECIALS + USER_DEFINED), f"{tag}: added tokens {sorted(added)}")
    for s in SPECIALS:
        a = added.get(s, {})
        check(a.get("special") is True and a.get("id") == tokens.index(s) and a.get("normalized") is False,
              f"{tag}: added token {s} {a}")
    check(added.get("<tool>", {}).get("special") is False, f"{tag}: user-defined token marked special")
    tc = json.load(open(os.path.join(out, "tokenizer_config.json")))
    check(tc.get("chat_template") == CHAT_TEMPLATE, f"{tag}: chat_template {tc.get('chat_template')!r}")
    check(tc.get("tokenizer_class") == "PreTrainedTokenizerFast", f"{tag}: tokenizer_class {tc.get('tokenizer_class')}")
    check((tc.get("bos_token"), tc.get("eos_token"), tc.get("pad_token"), tc.get("unk_token")) ==
          ("<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>"), f"{tag}: tokenizer_config tokens {tc}")


# --- reference forward pass with llama.cpp's semantics on the GGUF tensors ---------------------------

def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_interleaved(x, theta):
    """llama.cpp's normal rope: rotates the adjacent pairs (2i, 2i+1) of each head. x: (T, H, hd)."""
    T, _, hd = x.shape
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(T)[:, None] * inv[None, :]  # (T, hd/2)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def reference_logits(gg, hp, ids):
    W = {k: v[0].astype(np.float64) for k, v in gg.items()}
    H, Hkv = hp["n_head"], hp["n_head_kv"]
    hd = hp["n_embd"] // H
    T = len(ids)
    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = rms(x, W[p + "attn_norm.weight"], hp["eps"])
        q = rope_interleaved((h @ W[p + "attn_q.weight"].T).reshape(T, H, hd), hp["theta"])
        k = rope_interleaved((h @ W[p + "attn_k.weight"].T).reshape(T, Hkv, hd), hp["theta"])
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, Hkv, hd)
        o = np.empty((T, H, hd))
        for hh in range(H):
            kv = hh // (H // Hkv)
            a = q[:, hh] @ k[:, kv].T / np.sqrt(hd) + mask
            a = np.exp(a - a.max(-1, keepdims=True))
            o[:, hh] = (a / a.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + o.reshape(T, H * hd) @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"], hp["eps"])
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    x = rms(x, W["output_norm.weight"], hp["eps"])
    return x @ W.get("output.weight", W["token_embd.weight"]).T


def run_bin(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, timeout=300)
    if not check(r.returncode == 0, f"grpo2048 {' '.join(args[:1])} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}"):
        return None
    # A completion of random byte tokens need not be valid UTF-8 (and grpo2048 writes its bytes as
    # they are); only the ids and numbers matter here.
    return json.loads(r.stdout.decode("utf-8", errors="replace"))


def check_c_side(tag, binary, out, gg, hp):
    tokens, _, _ = make_vocab()
    # "the 123 then<|im_end|>": Digits isolates each digit, so " 123" is not "Ġ1" "2" "3";
    # merges by rank give "the" and "Ġthe" + "n"; the control token stays whole.
    text = "the 123 then<|im_end|>"
    want = ["the", "Ġ", "1", "2", "3", "Ġthe", "n", "<|im_end|>"]
    tok = run_bin(binary, "tokenize", "--model", out, text)
    if tok is not None:
        check(tok["ids"] == [tokens.index(p) for p in want], f"{tag}: tokenize {text!r}: {tok.get('pieces')}, expected {want}")

    prompt = "the cat in the hat"
    tok = run_bin(binary, "tokenize", "--model", out, prompt)
    gen = run_bin(binary, "generate", "--model", out, "--prompt", prompt, "--chat-template", "plain",
                  "--temperature", "0", "--max-new-tokens", "6", "--logprobs")
    if tok is None or gen is None:
        return
    pids, ids, lps = tok["ids"], gen["ids"], gen["logprobs"]
    check(gen["prompt_tokens"] == len(pids) and len(ids) >= 1 and len(ids) == len(lps),
          f"{tag}: generate returned {gen}")
    logits = reference_logits(gg, hp, pids + ids)
    worst = 0.0
    for j, (t, lp) in enumerate(zip(ids, lps)):
        row = logits[len(pids) - 1 + j]
        ref = row - row.max() - np.log(np.exp(row - row.max()).sum())
        worst = max(worst, abs(ref[t] - lp))
        top2 = np.sort(row)[-2:]
        check(t == int(row.argmax()) or top2[1] - top2[0] < 1e-4,
              f"{tag}: greedy token {j} is {t}, the reference argmax is {int(row.argmax())}")
    check(worst < 2e-4, f"{tag}: generate log-probabilities differ from the reference forward by {worst:.2e}")
    print(f"{tag}: C generate {len(ids)} greedy tokens = reference argmax, max |logprob diff| {worst:.1e}")


def main():
    binary = os.environ.get("GRPO2048_BIN") or (sys.argv[1] if len(sys.argv) > 1 else None)
    tmp = tempfile.mkdtemp(prefix="test_gguf_to_hf.")
    try:
        rng = np.random.default_rng(2048)
        for tied in (True, False):
            tag = "tied" if tied else "untied"
            path = os.path.join(tmp, f"{tag}.gguf")
            out = os.path.join(tmp, f"{tag}-hf")
            hp, originals = write_gguf(path, rng, tied)
            gguf_to_hf.convert(path, out, log=lambda s: None)
            gg = gguf_tensors(path)
            hf = load_file(os.path.join(out, "model.safetensors"))
            check_tensors(tag, gg, hf, hp, originals)
            check_metadata(tag, out, hp, tied)
            if binary:
                check_c_side(tag, binary, out, gg, hp)
            print(f"{tag}: {len(gg)} tensors checked")
        if not binary:
            check(False, "GRPO2048_BIN is not set: the C side was not checked")

        # Refusals: an unknown pre-tokenizer must not become a different tokenizer silently.
        path = os.path.join(tmp, "qwen.gguf")
        write_gguf(path, rng, True, pre="some-other-pre")
        try:
            gguf_to_hf.convert(path, os.path.join(tmp, "qwen-hf"), log=lambda s: None)
            check(False, "an unknown pre-tokenizer was converted")
        except gguf_to_hf.ConversionError as e:
            check("pre-tokenizer \"some-other-pre\" is not supported" in str(e), f"refusal message: {e}")
        # ... and the CLI reports it as an error exit with that message.
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gguf_to_hf.py"), path,
                            os.path.join(tmp, "qwen-hf")], capture_output=True, text=True)
        check(r.returncode != 0 and "some-other-pre" in r.stderr, f"CLI refusal: rc {r.returncode}, {r.stderr!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
